"""Great Expectations, imported without the modules it loads only for features the project does not use.

`import great_expectations` imports every expectation the package defines, and
with them scipy.stats (for expect_column_kl_divergence_to_be_less_than and two
distribution metrics) and altair (for the charts its renderers draw): 1.0 s of
the 2.6 s the import takes, on every run. The suites use neither. Here both
stand as a DeferredModule in sys.modules while Great Expectations is imported:
the names it binds to them work as the modules do, and the real module is
imported the first time anything of it is asked for.

Why not importlib.util.LazyLoader: in Python 3.11 the import system reads a
module's __spec__ on every later `import` of it, which makes a lazily loaded
module load at once.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

# What Great Expectations imports for features the suites do not use.
UNUSED_BY_THE_SUITES = ("scipy.stats", "altair")
# Names that tools look for on any object (inspect.unwrap, doctest) without using the module: not a use.
_PROBED = frozenset({"__wrapped__", "__test__"})


class DeferredModule(types.ModuleType):
    """Stands for the module `name` until an attribute is asked for, then imports it and hands its attributes on."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self.__file__ = spec.origin
        if spec.submodule_search_locations is not None:
            self.__path__ = list(spec.submodule_search_locations)
        self.__dict__["_deferred_lock"] = threading.Lock()
        self.__dict__["_deferred_module"] = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute in _PROBED:
            raise AttributeError(attribute)
        return getattr(self._imported(), attribute)

    def _imported(self) -> types.ModuleType:
        with self.__dict__["_deferred_lock"]:
            module = self.__dict__["_deferred_module"]
            if module is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                module = self.__dict__["_deferred_module"] = importlib.import_module(self.__name__)
            return module


def defer(names: tuple[str, ...]) -> list[str]:
    """Puts a DeferredModule in sys.modules for each of `names` not imported yet (and installed); returns
    the names deferred."""
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        sys.modules[name] = DeferredModule(name, spec)
        deferred.append(name)
    return deferred


def import_great_expectations() -> types.ModuleType:
    """great_expectations, imported with UNUSED_BY_THE_SUITES deferred (see the module's docstring)."""
    if "great_expectations" not in sys.modules:
        defer(UNUSED_BY_THE_SUITES)
    import great_expectations

    return great_expectations
