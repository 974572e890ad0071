"""Which stored settings differ from the current ones (vb_keras.utils.resume)."""

import pytest

from conftest import run_main
from vb_keras.errors import UserInputError
from vb_keras.utils import resume


def test_differing_keys_of_either_side_sorted():
    stored = {"epochs": 2, "head": "conformer", "seed": 0, "old": 1}
    current = {"seed": 0, "head": "conformer_mean", "epochs": 3, "new": [1, 2]}
    assert resume.differing_keys(stored, current) == ["epochs", "head", "new", "old"]
    assert resume.differing_keys(stored, dict(stored)) == []
    # A missing key equals None: a setting added with None as its value binds no older run.
    assert resume.differing_keys({"a": 1}, {"a": 1, "b": None}) == []


def test_only_the_given_keys_are_compared():
    stored, current = {"trials": 2, "epochs": 2, "old": 1}, {"trials": 5, "epochs": 3}
    assert resume.differing_keys(stored, current, ["epochs"]) == ["epochs"]
    assert resume.differing_keys(stored, current, current) == ["epochs", "trials"]
    assert resume.differing_keys(stored, current, []) == []


def test_a_rerun_with_other_settings_is_refused_in_one_line_naming_them():
    resume.refuse_other_settings("--model_dir", "runs/x", [])   # the same settings: goes on
    with pytest.raises(UserInputError, match=r"^--model_dir: runs/x holds an unfinished run with "
                       r"other settings \(epochs, seed\); resume it with the same flags or pick "
                       r"another --model_dir$"):
        resume.refuse_other_settings("--model_dir", "runs/x", ["epochs", "seed"])


if __name__ == "__main__":
    run_main()
