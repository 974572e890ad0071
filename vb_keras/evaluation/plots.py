"""PNG figures a person would rather look at than JSON or CSV.

One model on one split (`write_evaluation_plots`): per-emotion CCC bars, the class confusion matrix,
and predicted against true age. One model's training (`write_training_curves`, from the model
directory's history.csv via `read_history`). Several models on the same split, e.g. the rows of a
Table-1 run (`write_side_by_side` with one `PlotEntry` per model). Overlaid densities of scores
(`write_densities`, the permutation test's Figure 1).
"""

import contextlib
import dataclasses
import math
import os
import textwrap
from typing import Optional

import matplotlib
import numpy as np
import pandas as pd
# Figures are made with matplotlib.figure.Figure, never pyplot: drawing files then needs no
# backend and changes no global state (a notebook that imports vb_keras keeps its own backend).
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vb_keras.evaluation import metrics, scoring
from vb_keras.utils import atomic
from vb_keras.utils.run_directory import RunDirectory
from vb_keras.schema import AGE, COUNTRY, TASKS

# The three validation scores in [0, 1] (harmonic mean first: it picks the best epoch).
_SCORES = (("val_hmean", "harmonic mean"), ("val_mean_ccc", "mean CCC"), ("val_uar", "UAR"))


def write_evaluation_plots(result: scoring.EvaluationResult, y_true: dict, y_pred: dict,
                           classes, output_dir, title: str = "") -> list:
    """Writes ccc_per_emotion_<split>.png, confusion_<split>.png, age_<split>.png (each only when
    the data has the task's labels: its figure in `result` is not None); returns paths."""
    os.makedirs(output_dir, exist_ok=True)
    split = result.split
    paths = []

    if result.mean_ccc is not None:
        paths.append(_write_emotion_bars(result, output_dir, title))

    if result.uar is not None:
        count = len(classes)
        with _figure(figsize=(1.2 * count + 3, 1.2 * count + 2)) as (figure, axis):
            image = _draw_confusion(axis, _confusion(y_true, y_pred, count), classes,
                                    f"{title} classes on {split}: UAR {result.uar:.3f}".strip())
            figure.colorbar(image, ax=axis, label="recall")
            paths.append(_save(figure, os.path.join(output_dir, f"confusion_{split}.png")))

    if result.mae is not None:
        with _figure(figsize=(5, 5)) as (figure, axis):
            _draw_age(axis, y_true, y_pred, f"{title} age on {split}: MAE {result.mae:.2f}".strip())
            axis.legend()
            paths.append(_save(figure, os.path.join(output_dir, f"age_{split}.png")))
    return paths


def _write_emotion_bars(result, output_dir, title):
    split = result.split
    with _figure(figsize=(8, 4)) as (figure, axis):
        names, values = list(result.ccc_per_emotion), list(result.ccc_per_emotion.values())
        axis.bar(names, values, color="tab:blue")
        axis.axhline(result.mean_ccc, color="tab:red", linestyle="--",
                     label=f"mean {result.mean_ccc:.3f}")
        axis.set_ylabel("CCC")
        axis.set_ylim(min(0.0, min(values) - 0.05), 1.0)
        axis.set_title(f"{title} emotion CCC on {split}".strip())
        axis.tick_params(axis="x", rotation=45)
        axis.legend()
        return _save(figure, os.path.join(output_dir, f"ccc_per_emotion_{split}.png"))


# ----------------------------------------------------------------------------- training curves


def read_history(model_dir) -> Optional[pd.DataFrame]:
    """The model directory's history.csv, one row per epoch; None when absent or without rows."""
    path = RunDirectory(model_dir).history_file
    if not os.path.isfile(path):
        return None
    try:
        # A kill mid-write can leave a cut line that the resumed run's first row is glued onto.
        history = pd.read_csv(path, on_bad_lines="skip")
    except pd.errors.EmptyDataError:   # created, but killed before the first epoch ended
        return None
    history = _clean_history(history)
    return history if len(history) else None


def write_training_curves(history: pd.DataFrame, path, title: str = "",
                          best_epoch: Optional[int] = None) -> str:
    """Writes one PNG of a run's per-epoch figures to `path`; returns `path`.

    Panels, each only if its columns are present: total loss; the validation harmonic mean, mean
    CCC and UAR (0..1); the validation MAE; one panel per task loss (`<task>_loss`; each on its own
    linear axis, as the scales differ by orders of magnitude and the emotion loss, a negative CCC,
    is below zero). A `val_<name>` column beside a loss is drawn dashed on the same panel.

    Args:
      history: as from `read_history` or a raw history.csv (repeated epochs keep their last row).
      path: the PNG file to write.
      title: figure title, e.g. the model's name.
      best_epoch: 1-based, as `callbacks.BestWeights.best_epoch` and config.json's "best_epoch"
        record it (epoch index + 1); drawn as a vertical line. The x axis is 1-based too.
    """
    history = _clean_history(history)
    epochs = _epochs(history)
    panels = _curve_panels(history)
    if not panels:
        raise ValueError(f"the history has nothing to plot (columns: {list(history.columns)})")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _figure(rows, columns, figsize=(4.6 * columns, 3.4 * rows + 0.5), squeeze=False,
                 layout="constrained") as (figure, axes):
        for axis, (panel_title, lines, limits) in zip(axes.ravel(), panels):
            for column, label, style in lines:
                _line(axis, epochs, history[column].to_numpy(np.float64), label=label,
                      linestyle=style)
            if limits == "scores":
                _score_limits(axis, history[[line[0] for line in lines]].to_numpy(np.float64))
            if best_epoch is not None:
                axis.axvline(best_epoch, color="grey", linestyle=":",
                             label=f"best epoch {best_epoch}")
            axis.set_title(panel_title)
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            if len(lines) > 1 or best_epoch is not None:
                axis.legend(fontsize=8)
        for axis in axes.ravel()[len(panels):]:
            axis.set_axis_off()
        if title:
            figure.suptitle(title)
        return _save(figure, path)


def write_densities(groups, path, title: str, xlabel: str) -> str:
    """Overlaid Gaussian kernel densities, one per (label, values, line style) group, each with a
    rug of its values; a group of fewer than 2 values or no spread gets a vertical line at its
    mean instead (a density needs a spread). The permutation test's Figure 1."""
    from scipy import stats   # only this figure needs scipy

    everything = np.concatenate([values for _, values, _ in groups]) if groups else np.zeros(1)
    low, high = float(everything.min()), float(everything.max())
    margin = max(0.25 * (high - low), 0.01)
    grid = np.linspace(low - margin, high + margin, 400)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _figure(figsize=(7, 4)) as (figure, axis):
        for label, values, style in groups:
            density = None
            if len(values) > 1 and np.ptp(values) > 0:
                try:
                    density = stats.gaussian_kde(values)(grid)
                except (np.linalg.LinAlgError, ValueError):   # near-singular spread
                    density = None
            if density is not None:
                axis.plot(grid, density, linewidth=2, label=label, **style)
            else:
                axis.axvline(values.mean(), linewidth=2, label=label, **style)
            axis.plot(values, np.zeros_like(values), "|", color=style["color"], markersize=12,
                      alpha=0.7)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("density")
        axis.set_title(title)
        if groups:
            axis.legend(fontsize=8)
        return _save(figure, path)


def _clean_history(history: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch, sorted, numeric: a resumed run's CSVLogger appends the epoch that was cut
    short again, and the later row is the one the run went on from."""
    history = history.apply(pd.to_numeric, errors="coerce")
    if "epoch" in history:
        history = history.dropna(subset=["epoch"])
        history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
    return history.reset_index(drop=True)


def _epochs(history):
    """1-based epoch numbers (row order when `epoch` is missing). history.csv numbers epochs from 1;
    files written before that numbered them from 0, as Keras's CSVLogger does, and start at 0."""
    if "epoch" in history:
        epochs = history["epoch"].to_numpy(np.float64)
        return epochs + 1 if len(epochs) and epochs.min() == 0 else epochs
    return np.arange(1, len(history) + 1, dtype=np.float64)


def _curve_panels(history):
    """[(title, [(column, label, linestyle)], limits)] of the columns present in `history`."""
    present = set(history.columns)

    def loss_panel(column, title):
        lines = [(column, "train", "-")]
        if "val_" + column in present:
            lines.append(("val_" + column, "val", "--"))
        return title, lines, None

    panels = []
    if "loss" in present:
        panels.append(loss_panel("loss", "training loss"))
    scores = [(column, label, "-") for column, label in _SCORES if column in present]
    if scores:
        panels.append(("validation scores", scores, "scores"))
    if "val_mae" in present:
        panels.append(("validation age MAE", [("val_mae", "MAE", "-")], None))
    task_losses = [f"{task}_loss" for task in TASKS if f"{task}_loss" in present]
    task_losses += sorted(column for column in present if column.endswith("_loss")
                          and column != "loss" and not column.startswith("val_")
                          and column not in task_losses)
    panels.extend(loss_panel(column, column.replace("_", " ")) for column in task_losses)
    # Self-supervised pre-training (training/wav2vec2.py): what shows that it learns.
    for column, title in _PRETRAINING_PANELS:
        if column in present:
            panels.append(loss_panel(column, title))
    return panels


_PRETRAINING_PANELS = (("accuracy", "contrastive accuracy"), ("perplexity", "codebook perplexity"),
                       ("code_perplexity", "codebook perplexity (hard codes)"),
                       ("temperature", "Gumbel temperature"))


def _line(axis, x, y, **kwargs):
    # Markers show single epochs (and a 1-epoch run at all) but clutter long runs.
    axis.plot(x, y, marker="o" if len(x) <= 30 else None, markersize=3, **kwargs)


# ----------------------------------------------------------------------------- side by side


@dataclasses.dataclass
class PlotEntry:
    """One model (row of a Table-1 run) in the side-by-side figures."""
    label: str                                  # e.g. "resnet18 (MTL)"
    result: scoring.EvaluationResult
    y_true: dict                                # as scoring.labels_from_table
    y_pred: dict                                # country as scores [N, C] or indices [N]
    history: Optional[pd.DataFrame] = None      # None for rows without training curves


def write_side_by_side(entries, classes, output_dir, split) -> list:
    """Writes figures comparing several models evaluated on `split`; returns the paths.

    side_by_side_ccc_per_emotion_<split>.png, side_by_side_confusion_<split>.png and
    side_by_side_age_<split>.png for each task the data has labels for; side_by_side_training_curves.png (validation harmonic mean
    and mean CCC per epoch) when at least one entry has a history with those columns. Each entry
    keeps its colour across the figures.
    """
    entries = list(entries)
    if not entries:
        raise ValueError("write_side_by_side needs at least one entry")
    os.makedirs(output_dir, exist_ok=True)
    colours = _colours(len(entries))
    first = entries[0].result   # (a task the data lacks has no figure: None)
    paths = ([_side_by_side_ccc(entries, colours, output_dir, split)]
             if first.mean_ccc is not None else [])
    if first.uar is not None:
        paths.append(_side_by_side_confusion(entries, classes, output_dir, split))
    if first.mae is not None:
        paths.append(_side_by_side_age(entries, output_dir, split))
    curves = _side_by_side_curves(entries, colours, output_dir)
    return paths + ([curves] if curves else [])


def _side_by_side_ccc(entries, colours, output_dir, split):
    emotions = list(dict.fromkeys(name for entry in entries for name in entry.result.ccc_per_emotion))
    count = len(entries)
    width = 0.8 / count
    values = np.array([[entry.result.ccc_per_emotion.get(name, np.nan) for name in emotions]
                       for entry in entries], np.float64)
    positions = np.arange(len(emotions))
    # Wider with more bars per group, within what a screen can still show.
    size = (min(28.0, 4 + len(emotions) * max(0.8, 0.13 * count)), min(7.0, 4.0 + 0.15 * count))
    with _figure(figsize=size, layout="constrained") as (figure, axis):
        for i, entry in enumerate(entries):
            axis.bar(positions + (i - (count - 1) / 2) * width, values[i], width, color=colours[i],
                     label=f"{entry.label} (mean {entry.result.mean_ccc:.3f})")
        axis.set_xticks(positions, emotions, rotation=45, ha="right")
        axis.set_ylabel("CCC")
        _score_limits(axis, values)
        axis.grid(axis="y", alpha=0.3)
        axis.set_title(f"emotion CCC on {split}")
        # Beside the bars, not over them: with many entries the legend is as tall as the plot.
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                    ncol=1 if count <= 12 else 2)
        return _save(figure, os.path.join(output_dir, f"side_by_side_ccc_per_emotion_{split}.png"))


def _side_by_side_confusion(entries, classes, output_dir, split):
    count = len(classes)
    panel = max(3.5, 0.55 * count + 2.2)
    with _grid(len(entries), panel, panel) as (figure, axes):
        for axis, entry in zip(axes, entries):
            image = _draw_confusion(axis, _confusion(entry.y_true, entry.y_pred, count), classes,
                                    f"{_wrap(entry.label)}\nUAR {entry.result.uar:.3f}",
                                    counts=False)   # recall is what compares across models
        # Every panel uses vmin=0, vmax=1, so one colour bar is true of all of them.
        figure.colorbar(image, ax=axes, label="recall", shrink=0.6)
        figure.suptitle(f"classes on {split} (rows normalised: recall per true class)")
        return _save(figure, os.path.join(output_dir, f"side_by_side_confusion_{split}.png"))


def _side_by_side_age(entries, output_dir, split):
    values = np.concatenate([np.ravel(entry.y_true[AGE]) for entry in entries]
                            + [np.ravel(entry.y_pred[AGE]) for entry in entries]).astype(np.float64)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    margin = 0.03 * (high - low) or 1.0
    limits = (low - margin, high + margin)   # shared, so panels compare at a glance
    with _grid(len(entries), 3.8, 3.8) as (figure, axes):
        for axis, entry in zip(axes, entries):
            _draw_age(axis, entry.y_true, entry.y_pred,
                      f"{_wrap(entry.label)}\nMAE {entry.result.mae:.2f}", limits=limits, size=4,
                      alpha=0.3)
        figure.suptitle(f"predicted against true age on {split} (dashed: perfect)")
        return _save(figure, os.path.join(output_dir, f"side_by_side_age_{split}.png"))


def _side_by_side_curves(entries, colours, output_dir):
    """The training-curves figure, or None when no entry has the validation scores per epoch."""
    columns = (("val_hmean", "validation harmonic mean"), ("val_mean_ccc", "validation mean CCC"))
    curves = []
    for entry, colour in zip(entries, colours):
        if entry.history is None:
            continue
        history = _clean_history(entry.history)
        if len(history) and any(column in history for column, _ in columns):
            curves.append((entry.label, colour, history))
    if not curves:
        return None
    size = (12, 4.5 + 0.25 * math.ceil(len(curves) / 3))   # room for the legend rows
    with _figure(1, 2, figsize=size, layout="constrained") as (figure, axes):
        for axis, (column, title) in zip(axes, columns):
            for label, colour, history in curves:
                if column in history:
                    _line(axis, _epochs(history), history[column].to_numpy(np.float64),
                          color=colour, label=label)
            axis.set_title(title)
            axis.set_xlabel("epoch")
            values = [history[column].to_numpy(np.float64) for _, _, history in curves
                      if column in history]
            if values:   # (no val_mean_ccc without emotion labels)
                _score_limits(axis, np.concatenate(values))
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
        handles, labels = [], []
        for axis in axes:   # an entry may have only one of the two columns
            for handle, label in zip(*axis.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        figure.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)),
                      fontsize=8)
        return _save(figure, os.path.join(output_dir, "side_by_side_training_curves.png"))


# ----------------------------------------------------------------------------- shared drawing


def _score_limits(axis, values):
    """A 0..1 y axis for scores, extended below 0 when a CCC is negative."""
    values = np.asarray(values, np.float64)
    low = np.nanmin(values) if np.isfinite(values).any() else 0.0
    axis.set_ylim(min(0.0, low - 0.05), 1.0)


def _confusion(y_true, y_pred, count):
    """Counts [true, predicted] of the class task; predictions as scores [N, C] or indices [N]."""
    truth = np.asarray(y_true[COUNTRY]).astype(np.int64)
    predicted = metrics.class_indices(y_pred[COUNTRY])
    confusion = np.zeros((count, count), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    return confusion


def _draw_confusion(axis, confusion, classes, title, counts=True):
    """Row-normalised confusion matrix (colour: recall, 0..1); returns the image for a colour bar."""
    count = len(classes)
    recall = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    image = axis.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(count):
        for j in range(count):
            text = f"{confusion[i, j]}\n{recall[i, j]:.2f}" if counts else f"{recall[i, j]:.2f}"
            axis.text(j, i, text, ha="center", va="center",
                      color="white" if recall[i, j] > 0.5 else "black", fontsize=8)
    axis.set_xticks(range(count), classes, rotation=45)
    axis.set_yticks(range(count), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    return image


def _draw_age(axis, y_true, y_pred, title, limits=None, size=8, alpha=0.5):
    """Predicted against true age with the identity line, over `limits` (default: the data's)."""
    ages, predicted = np.ravel(y_true[AGE]), np.ravel(y_pred[AGE])
    axis.scatter(ages, predicted, s=size, alpha=alpha)
    if limits is None:
        limits = (float(min(ages.min(), predicted.min())), float(max(ages.max(), predicted.max())))
    else:
        axis.set_xlim(limits)
        axis.set_ylim(limits)
    axis.plot(limits, limits, color="tab:red", linestyle="--", label="perfect")
    axis.set_xlabel("true age")
    axis.set_ylabel("predicted age")
    axis.set_title(title)


@contextlib.contextmanager
def _figure(rows=1, columns=1, *, figsize, layout=None, squeeze=True):
    """(figure, axes) of a new pyplot-free Figure; a context, like `_grid`, so that each figure's
    drawing reads as one block (nothing needs closing: it is garbage once the block ends)."""
    figure = Figure(figsize=figsize, layout=layout)
    yield figure, figure.subplots(rows, columns, squeeze=squeeze)


@contextlib.contextmanager
def _grid(count, panel_width, panel_height):
    """(figure, the `count` used axes) of a grid in ceil(sqrt(count)) columns, closed on leaving."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    with _figure(rows, columns, figsize=(panel_width * columns, panel_height * rows + 0.6),
                 squeeze=False, layout="constrained") as (figure, axes):
        axes = axes.ravel()
        for axis in axes[count:]:
            axis.set_axis_off()
        yield figure, list(axes[:count])


def _colours(count):
    """`count` distinguishable colours: tab10, then tab20's lighter shades, then a sampled map."""
    if count <= 20:
        table = matplotlib.colormaps["tab20"].colors
        return [table[i] for i in (*range(0, 20, 2), *range(1, 20, 2))][:count]
    return [matplotlib.colormaps["turbo"](value) for value in np.linspace(0.05, 0.95, count)]


def _wrap(label, width=38):
    # Long ensemble names would run into the neighbouring panel.
    return textwrap.fill(label, width)


def _save(figure, path):
    if figure.get_layout_engine() is None:   # figures made with layout="constrained" lay out alone
        figure.tight_layout()
    # Through a scratch file (a kill or a full disk leaves no half image); the format is named,
    # as the scratch name does not end in it.
    atomic.write_with(path, lambda scratch: figure.savefig(
        scratch, dpi=110, format=os.path.splitext(path)[1][1:] or "png"))
    return path
