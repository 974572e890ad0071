"""The permutation test package: its public names, re-exported from the modules that hold them."""

from conftest import run_main
from vb_keras.analysis import permutation
from vb_keras.analysis.permutation import arrays, figure, resumable, summary, training


def test_the_package_re_exports_the_api_of_its_modules():
    assert len(set(permutation.__all__)) == len(permutation.__all__)
    for name in permutation.__all__:
        assert hasattr(permutation, name), name
    # What bin/permutation_test uses, defined once, in its module.
    assert permutation.run is resumable.run and permutation.RESULT_FILE is resumable.RESULT_FILE
    assert permutation.data_from_sequences is arrays.data_from_sequences
    assert permutation.train_and_score is training.train_and_score
    assert permutation.summary_text is summary.summary_text
    assert permutation.write_density_plot is figure.write_density_plot


if __name__ == "__main__":
    run_main()
