"""vb_keras.families.base: a family's settings carry their flags' help and say whether they bind a
resumed run; a config records its family's type."""

import dataclasses

from conftest import run_main
from vb_keras.families import base
from vb_keras.families.base import FamilyConfig, setting


@dataclasses.dataclass(frozen=True)
class _Config(FamilyConfig):
    TYPE = "example"
    depth: int = setting(3, "How deep.", lower_bound=1)
    cache: str | None = setting(None, "Where caches live.", binding=False)


def test_a_setting_carries_its_flags_help_bound_and_binding():
    fields = {field.name: field for field in dataclasses.fields(_Config)}
    assert fields["depth"].default == 3
    assert fields["depth"].metadata == {"help": "How deep.", "binding": True, "lower_bound": 1}
    assert fields["cache"].metadata["binding"] is False


def test_only_binding_settings_are_compared_on_resume():
    assert base.binding_fields(_Config(depth=5, cache="/elsewhere")) == {"depth": 5}


def test_a_config_records_its_family_type():
    assert _Config(depth=4).to_dict() == {"type": "example", "depth": 4, "cache": None}


if __name__ == "__main__":
    run_main()
