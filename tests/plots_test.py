import importlib
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from vb_keras.evaluation import plots, scoring
from vb_keras.schema import LabelSchema

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCHEMA = LabelSchema(emotion_columns=("A", "B"), class_column="C").with_classes(["x", "y", "z"])


def _is_png(path):
    with open(path, "rb") as stream:
        return stream.read(8) == PNG_MAGIC


def _predictions(seed, clips=30):
    rng = np.random.default_rng(seed)
    y_true = {"emotion": rng.random((clips, 2)), "country": rng.integers(0, 3, clips),
              "age": rng.uniform(20, 40, clips)}
    y_pred = {"emotion": rng.random((clips, 2)), "country": rng.random((clips, 3)),
              "age": rng.uniform(20, 40, clips)}
    return y_true, y_pred


def _history(epochs=4, repeat=None, drop=()):
    """A history.csv-like frame; `repeat` logs that epoch twice (a resumed run), the second row
    with a val_hmean of 0.99 so the test can tell which one was kept."""
    rng = np.random.default_rng(epochs)
    rows = [{"epoch": e, "age_loss": 20.0 - e, "country_loss": 1.0 / (e + 1),
             "emotion_loss": -0.1 * e, "loss": 2.0 - 0.3 * e, "val_ccc_A": rng.random(),
             "val_hmean": 0.1 * e, "val_mae": 5.0 - 0.2 * e, "val_mean_ccc": 0.1 * e,
             "val_uar": 0.3 + 0.05 * e} for e in range(epochs)]
    if repeat is not None:
        rows.insert(repeat + 1, {**rows[repeat], "val_hmean": 0.99})
    return pd.DataFrame(rows).drop(columns=list(drop))


def test_writes_three_pngs(tmp_path):
    y_true, y_pred = _predictions(0)
    result = scoring.evaluate(y_true, y_pred, SCHEMA, "Val")
    paths = plots.write_evaluation_plots(result, y_true, y_pred, SCHEMA.classes, str(tmp_path), "test")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["ccc_per_emotion_Val.png", "confusion_Val.png",
                                                    "age_Val.png"]
    for path in paths:
        assert _is_png(path)


@pytest.mark.parametrize("drop", [(), ("age_loss", "country_loss", "emotion_loss", "val_mae"),
                                  ("loss", "val_uar", "val_hmean")])
def test_training_curves_from_a_resumed_history_with_missing_columns(tmp_path, drop):
    history = _history(repeat=1, drop=drop)
    path = plots.write_training_curves(history, str(tmp_path / "sub" / "curves.png"), "r18",
                                       best_epoch=2)
    assert path == str(tmp_path / "sub" / "curves.png") and _is_png(path)


def test_training_curves_refuse_a_history_without_figures(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.write_training_curves(pd.DataFrame({"epoch": [0, 1]}), str(tmp_path / "c.png"))


def test_read_history(tmp_path):
    assert plots.read_history(str(tmp_path)) is None
    path = tmp_path / "history.csv"
    path.write_text("")                     # created, killed before the first epoch ended
    assert plots.read_history(str(tmp_path)) is None
    path.write_text("epoch,loss,val_hmean\n")
    assert plots.read_history(str(tmp_path)) is None
    # CSVLogger(append=True) after a resume: epoch 1 logged again, then the run goes on.
    path.write_text("epoch,loss,val_hmean\n0,2.0,0.1\n1,1.5,0.2\n1,1.4,0.25\n2,1.0,0.3\n")
    history = plots.read_history(str(tmp_path))
    assert history["epoch"].tolist() == [0, 1, 2]
    assert history["val_hmean"].tolist() == [0.1, 0.25, 0.3]   # the last row of a repeated epoch
    assert list(history.columns) == ["epoch", "loss", "val_hmean"]


def test_curves_number_epochs_from_1_as_history_csv_does_and_as_older_files_did_not():
    # pylint: disable=protected-access
    assert plots._epochs(pd.DataFrame({"epoch": [1, 2, 3]})).tolist() == [1, 2, 3]
    assert plots._epochs(pd.DataFrame({"epoch": [0, 1, 2]})).tolist() == [1, 2, 3]   # from 0
    assert plots._epochs(pd.DataFrame({"loss": [0.5, 0.4]})).tolist() == [1, 2]


def _entries(count, with_history):
    entries = []
    for i in range(count):
        y_true, y_pred = _predictions(i)
        if i % 2:
            y_pred["country"] = y_pred["country"].argmax(axis=-1)   # indices, as ensembles give
        history = _history(epochs=3 + i, repeat=0) if with_history and i != 1 else None
        entries.append(plots.PlotEntry(f"model {i} with a rather long ensemble name (MTL)",
                                       scoring.evaluate(y_true, y_pred, SCHEMA, "Val"),
                                       y_true, y_pred, history))
    return entries


@pytest.mark.parametrize("count, with_history", [(1, True), (5, True), (1, False)])
def test_side_by_side(tmp_path, count, with_history):
    paths = plots.write_side_by_side(_entries(count, with_history), SCHEMA.classes, str(tmp_path),
                                     "Val")
    names = ["side_by_side_ccc_per_emotion_Val.png", "side_by_side_confusion_Val.png",
             "side_by_side_age_Val.png"] + (["side_by_side_training_curves.png"] if with_history else [])
    assert [os.path.basename(p) for p in paths] == names
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    assert all(_is_png(path) for path in paths)


def test_densities_draw_spread_and_degenerate_groups(tmp_path):
    style = {"color": "tab:green", "linestyle": "--"}
    groups = [("spread", np.array([0.1, 0.2, 0.25, 0.4]), style),
              ("one value", np.array([0.3]), {"color": "tab:blue"}),
              ("no spread", np.array([0.5, 0.5]), {"color": "tab:orange"})]
    path = plots.write_densities(groups, str(tmp_path / "sub" / "d.png"), "title", "score")
    assert _is_png(path)
    assert _is_png(plots.write_densities([], str(tmp_path / "empty.png"), "nothing", "score"))


def test_importing_and_drawing_leave_the_matplotlib_backend_alone(tmp_path):
    """A notebook that imports vb_keras keeps its backend (plots once forced Agg at import)."""
    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        importlib.reload(plots)
        y_true, y_pred = _predictions(0)
        result = scoring.evaluate(y_true, y_pred, SCHEMA, "Val")
        plots.write_evaluation_plots(result, y_true, y_pred, SCHEMA.classes, str(tmp_path), "t")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)


if __name__ == "__main__":
    run_main()
