"""PNG figures of an evaluation a person would rather look at than JSON: per-emotion CCC bars, the
class confusion matrix, and predicted against true age."""

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vb_keras import evaluation  # noqa: E402
from vb_keras.schema import AGE, COUNTRY  # noqa: E402


def write_evaluation_plots(result: evaluation.EvaluationResult, y_true: dict, y_pred: dict,
                           classes, output_dir, title: str = "") -> list:
    """Writes ccc_per_emotion_<split>.png, confusion_<split>.png, age_<split>.png; returns paths."""
    os.makedirs(output_dir, exist_ok=True)
    split = result.split
    paths = []

    figure, axis = plt.subplots(figsize=(8, 4))
    names, values = list(result.ccc_per_emotion), list(result.ccc_per_emotion.values())
    axis.bar(names, values, color="tab:blue")
    axis.axhline(result.mean_ccc, color="tab:red", linestyle="--", label=f"mean {result.mean_ccc:.3f}")
    axis.set_ylabel("CCC")
    axis.set_ylim(min(0.0, min(values) - 0.05), 1.0)
    axis.set_title(f"{title} emotion CCC on {split}".strip())
    axis.tick_params(axis="x", rotation=45)
    axis.legend()
    paths.append(_save(figure, os.path.join(output_dir, f"ccc_per_emotion_{split}.png")))

    truth = np.asarray(y_true[COUNTRY])
    predicted = np.asarray(y_pred[COUNTRY])
    predicted = predicted.argmax(axis=-1) if predicted.ndim == 2 else predicted
    count = len(classes)
    confusion = np.zeros((count, count), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    recall = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(1.2 * count + 3, 1.2 * count + 2))
    image = axis.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(count):
        for j in range(count):
            axis.text(j, i, f"{confusion[i, j]}\n{recall[i, j]:.2f}", ha="center", va="center",
                      color="white" if recall[i, j] > 0.5 else "black", fontsize=8)
    axis.set_xticks(range(count), classes, rotation=45)
    axis.set_yticks(range(count), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title} classes on {split}: UAR {result.uar:.3f}".strip())
    figure.colorbar(image, ax=axis, label="recall")
    paths.append(_save(figure, os.path.join(output_dir, f"confusion_{split}.png")))

    figure, axis = plt.subplots(figsize=(5, 5))
    ages, predicted_ages = np.ravel(y_true[AGE]), np.ravel(y_pred[AGE])
    axis.scatter(ages, predicted_ages, s=8, alpha=0.5)
    low, high = float(min(ages.min(), predicted_ages.min())), float(max(ages.max(), predicted_ages.max()))
    axis.plot([low, high], [low, high], color="tab:red", linestyle="--", label="perfect")
    axis.set_xlabel("true age")
    axis.set_ylabel("predicted age")
    axis.set_title(f"{title} age on {split}: MAE {result.mae:.2f}".strip())
    axis.legend()
    paths.append(_save(figure, os.path.join(output_dir, f"age_{split}.png")))
    return paths


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
