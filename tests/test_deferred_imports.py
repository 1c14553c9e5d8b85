"""Great Expectations imported with scipy.stats and altair deferred: neither loads for the gate, both work when used."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from armsledger.deferred_imports import DeferredModule, defer


def run_python(code: str) -> dict:
    """`code` in a fresh interpreter (this one has imported Great Expectations already); its last printed line."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_great_expectations_imports_without_scipy_stats_and_altair() -> None:
    seen = run_python("""
        import json, sys
        from armsledger.deferred_imports import import_great_expectations
        gx = import_great_expectations()
        print(json.dumps({"gx": hasattr(gx, "get_context"),
                          "stats": "scipy.stats._stats_py" in sys.modules, "altair": "altair.vegalite" in sys.modules}))
    """)
    assert seen == {"gx": True, "stats": False, "altair": False}


def test_the_gate_leaves_them_deferred_and_an_expectation_that_needs_scipy_stats_still_works() -> None:
    seen = run_python("""
        import json, sys
        import pandas as pd
        from armsledger.deferred_imports import import_great_expectations
        gx = import_great_expectations()
        context = gx.get_context(mode="ephemeral")
        batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
        frame = pd.DataFrame({"x": ["a", "b", "a", "b"]})
        plain = batch.get_batch(batch_parameters={"dataframe": frame}).validate(
            gx.expectations.ExpectColumnValuesToNotBeNull(column="x"))
        before = "scipy.stats._stats_py" in sys.modules
        kl = batch.get_batch(batch_parameters={"dataframe": frame}).validate(
            gx.expectations.ExpectColumnKLDivergenceToBeLessThan(
                column="x", partition_object={"values": ["a", "b"], "weights": [0.5, 0.5]}, threshold=0.1))
        print(json.dumps({"plain": plain.success, "before": before, "kl": kl.success,
                          "after": type(sys.modules["scipy.stats"]).__name__}))
    """)
    assert seen == {"plain": True, "before": False, "kl": True, "after": "module"}


def test_a_deferred_module_imports_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "json.tool", raising=False)
    assert defer(("json.tool", "no_such_module_here")) == ["json.tool"]
    stand_in = sys.modules["json.tool"]
    assert isinstance(stand_in, DeferredModule)
    assert callable(stand_in.main)  # the first use imports it
    assert sys.modules["json.tool"] is not stand_in and sys.modules["json.tool"].main is stand_in.main
    assert defer(("json.tool",)) == []  # imported already: left alone
