"""Figure 1 of section 3.1 (figure)."""

import os

from conftest import run_main
from permutation_fixtures import synthetic_trials
from vb_keras.analysis.permutation import figure


def test_density_plot_is_a_png_also_for_degenerate_conditions(tmp_path):
    path = figure.write_density_plot(synthetic_trials(), str(tmp_path / "figure.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    degenerate = [{"condition": "true", "trial": k, "val_mean_ccc": 0.5} for k in range(3)]
    degenerate.append({"condition": "incorrect", "trial": 0, "val_mean_ccc": 0.45})
    path = figure.write_density_plot(degenerate, str(tmp_path / "sub" / "degenerate.png"))
    assert os.path.getsize(path) > 1000


if __name__ == "__main__":
    run_main()
