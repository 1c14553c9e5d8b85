"""The project's data files read by libyaml's loader give what PyYAML's pure-Python safe loader gives."""
from __future__ import annotations

import pytest
import yaml

from armsledger.config import DATA_DIR
from armsledger.yaml_files import SAFE_LOADER, load_yaml


@pytest.mark.parametrize("name", sorted(p.name for p in DATA_DIR.glob("*.yaml")))
def test_data_files_read_the_same_with_either_loader(name: str) -> None:
    content = (DATA_DIR / name).read_bytes()
    assert load_yaml(content) == yaml.load(content, Loader=yaml.SafeLoader)


def test_the_loader_is_safe() -> None:
    assert issubclass(SAFE_LOADER, (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    with pytest.raises(yaml.constructor.ConstructorError):
        load_yaml("!!python/object/apply:os.system ['true']")
