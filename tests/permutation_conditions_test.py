"""The label conditions of section 3.1: shuffled and incorrect labels, trial seeds (conditions)."""

import numpy as np
import pytest

from conftest import run_main
from vb_keras.analysis.permutation import conditions
from vb_keras.errors import UserInputError


def test_shuffled_labels_keep_the_distributions_with_separate_seeds():
    classes = np.arange(200) % 4
    ages = (20 + np.arange(200) % 11).astype(np.float32)
    new_classes, new_ages, share_class, share_age = conditions.shuffled_labels(classes, ages, 5)
    np.testing.assert_array_equal(np.sort(new_classes), np.sort(classes))
    np.testing.assert_array_equal(np.sort(new_ages), np.sort(ages))
    assert share_class == pytest.approx(np.mean(new_classes == classes))
    assert share_age == pytest.approx(np.mean(new_ages == ages))
    assert 0.1 < share_class < 0.4 and 0.02 < share_age < 0.2   # about 1/4 and 1/11
    # The same permutation would move unique values identically: the two seeds differ.
    unique = np.arange(200)
    moved_classes, moved_ages, _, _ = conditions.shuffled_labels(unique, unique, 5)
    assert not np.array_equal(moved_classes, moved_ages)
    again = conditions.shuffled_labels(classes, ages, 5)
    np.testing.assert_array_equal(again[0], new_classes)
    assert not np.array_equal(conditions.shuffled_labels(classes, ages, 6)[0], new_classes)


def test_incorrect_labels_are_always_wrong_and_integer_years_within_the_range():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, 500)
    ages = rng.choice([21.0, 25.0, 26.4, 30.0, 34.0], 500).astype(np.float32)
    new_classes, new_ages = conditions.incorrect_labels(classes, ages, 4, seed=3)
    assert np.all(new_classes != classes) and set(new_classes) <= {0, 1, 2, 3}
    assert np.all(new_ages != ages) and np.all(new_ages != np.rint(ages))
    assert np.all(new_ages == np.round(new_ages))
    assert new_ages.min() >= 21 and new_ages.max() <= 34
    # Uniform over the years, not the original distribution: years nobody has appear.
    assert len(set(new_ages)) > 10
    two = conditions.incorrect_labels(np.array([0, 1, 1]), np.array([20.0, 21.0, 21.0]), 2, 0)
    np.testing.assert_array_equal(two[0], [1, 0, 0])
    np.testing.assert_array_equal(two[1], [21.0, 20.0, 20.0])


@pytest.mark.parametrize("classes, ages, num_classes, fragment", [
    ([0, 0], [20.0, 30.0], 1, "--class_column"),
    ([0, 1], [25.0, 25.2], 2, "--age_column"),
])
def test_incorrect_labels_need_two_classes_and_two_ages(classes, ages, num_classes, fragment):
    with pytest.raises(UserInputError, match=fragment):
        conditions.incorrect_labels(np.array(classes), np.array(ages), num_classes, 0)


def test_trial_seeds_differ_per_condition_and_trial_and_are_reproducible():
    seeds = {(c, k): conditions.trial_seed(7, c, k) for c in conditions.CONDITIONS
             for k in range(20)}
    assert len(set(seeds.values())) == len(seeds)
    assert conditions.trial_seed(7, "shuffled", 3) == seeds["shuffled", 3]
    assert conditions.trial_seed(8, "shuffled", 3) != seeds["shuffled", 3]


if __name__ == "__main__":
    run_main()
