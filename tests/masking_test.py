import numpy as np

from conftest import run_main
from vb_keras.models import masking


def test_valid_steps_round_up_and_keep_one_step():
    frames = np.array([0, 1, 31, 32, 33, 64])
    np.testing.assert_array_equal(masking.valid_steps(frames, 32).numpy(), [1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(masking.valid_steps(frames).numpy(), [1, 1, 31, 32, 33, 64])


def test_step_mask_marks_the_first_steps_of_each_row():
    mask = masking.step_mask([1, 3, 0], 4, "float32").numpy()
    np.testing.assert_array_equal(mask, [[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    assert masking.step_mask([2], 3).dtype == bool


if __name__ == "__main__":
    run_main()
