"""The permutation test's data: padded splits, the extra inputs, the labels it needs (arrays)."""

import numpy as np
import pytest

from conftest import run_main
from permutation_fixtures import DIM, permutation_data
from vb_keras.analysis.permutation import arrays
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema


@pytest.fixture(scope="module")
def data():
    return permutation_data()


def test_data_pads_once_and_standardises_age_on_train(data):
    assert data.train.embeddings.shape == (40, 3, DIM) and data.val.embeddings.shape[0] == 16
    assert data.extra_dim == 4
    extra = data.extra(data.train.classes, data.train.ages)
    assert extra.shape == (40, 4) and extra.dtype == np.float32
    np.testing.assert_array_equal(extra[:, :3].argmax(axis=1), data.train.classes)
    assert extra[:, 3].mean() == pytest.approx(0, abs=1e-5)
    assert extra[:, 3].std() == pytest.approx(1, abs=1e-4)


def test_the_test_refuses_data_without_class_or_age_labels_in_one_line():
    arrays.check_schema(LabelSchema())
    with pytest.raises(UserInputError, match=r"^the permutation test needs emotion, class and age "
                                             r"labels .*; the data has no age labels "
                                             r"\(--age_column empty\)$"):
        arrays.check_schema(LabelSchema(age_column=""))
    with pytest.raises(UserInputError, match=r"no class or age labels \(--class_column, "
                                             r"--age_column empty\)$"):
        arrays.check_schema(LabelSchema(class_column="", age_column=""))


if __name__ == "__main__":
    run_main()
