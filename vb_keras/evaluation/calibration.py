"""Post-hoc calibration of the emotion intensities: each output rescaled so that its Val
predictions take the Train labels' mean and spread.

Why: for predictions p of labels y with correlation r, CCC(y, a p + b) is highest when the
prediction's mean is the label's and its spread a sd(p) equals sd(y), whatever r (the derivative
of 2 a cov / (var_y + a^2 var_p) vanishes at a = sd(y) / sd(p)). A network trained with a
regression loss, and even with the CCC loss on mini-batches, tends to shrink its outputs' spread
when its correlation is weak, which CCC punishes. The rescaling uses no Val labels: only the Val
predictions' mean and spread, and the Train labels'.

Whether it helps is checked on Val before it is applied: Val's speakers are split into two halves;
each half's predictions are rescaled with the statistics of the other half's, and the rescaling is
kept only if the mean CCC of those cross-fitted predictions beats the raw ones'. It is then folded
into the emotion layer's weights (an affine map after a linear layer is linear), so model.keras,
the evaluations and the exported SavedModel all carry it.
"""

import dataclasses

import numpy as np

from vb_keras.evaluation import metrics

# A prediction column with no spread carries no ranking to rescale; the scale is bounded so that
# a near-constant column is not blown up into noise.
MIN_SPREAD = 1e-6
MAX_SCALE = 10.0


@dataclasses.dataclass
class Calibration:
    """An affine rescaling of the emotion outputs: calibrated = scale * raw + shift, per column.

    Attributes:
      scale, shift: [emotions].
      applied: whether it held up on Val (and so was folded into the model).
      val_mean_ccc_raw: Val mean CCC of the raw predictions.
      val_mean_ccc_cross_fitted: Val mean CCC of the speaker-cross-fitted rescaled predictions
        (None where Val has fewer than two speakers).
      reason: why it was or was not applied, in words.
    """
    scale: np.ndarray
    shift: np.ndarray
    applied: bool
    val_mean_ccc_raw: float
    val_mean_ccc_cross_fitted: float | None
    reason: str

    def apply(self, predictions) -> np.ndarray:
        return np.asarray(predictions, np.float64) * self.scale + self.shift

    def to_dict(self) -> dict:
        return {"applied": self.applied, "scale": [float(v) for v in self.scale],
                "shift": [float(v) for v in self.shift],
                "val_mean_ccc_raw": self.val_mean_ccc_raw,
                "val_mean_ccc_cross_fitted": self.val_mean_ccc_cross_fitted,
                "reason": self.reason}

    def summary(self) -> str:
        return f"{'applied' if self.applied else 'not applied'}: {self.reason}"


def rescaling(predictions, label_mean, label_spread) -> tuple:
    """(scale, shift) that give `predictions` [clips, emotions] the labels' mean and spread."""
    predictions = np.asarray(predictions, np.float64)
    spread = predictions.std(axis=0)
    scale = np.where(spread > MIN_SPREAD,
                     np.minimum(np.asarray(label_spread) / np.maximum(spread, MIN_SPREAD),
                                MAX_SCALE), 1.0)
    return scale, np.asarray(label_mean) - scale * predictions.mean(axis=0)


def speaker_halves(speakers) -> tuple:
    """Two boolean masks over the clips: every other speaker (in sorted order) in each."""
    speakers = np.asarray(speakers, str)
    names = np.unique(speakers)
    first = np.isin(speakers, names[::2])
    return first, ~first


def fit_on_val(val_true, val_pred, val_speakers, train_labels) -> Calibration:
    """The rescaling of the Val predictions to the Train labels' mean and spread, and whether it
    holds up on Val (see the module docstring).

    Args:
      val_true, val_pred: Val labels and predictions [clips, emotions].
      val_speakers: [clips] the speaker of each Val clip.
      train_labels: the Train clips' emotion labels [clips, emotions].
    """
    val_pred = np.asarray(val_pred, np.float64)
    train_labels = np.asarray(train_labels, np.float64)
    label_mean, label_spread = train_labels.mean(axis=0), train_labels.std(axis=0)
    scale, shift = rescaling(val_pred, label_mean, label_spread)
    raw = metrics.mean_ccc(val_true, val_pred)
    first, second = speaker_halves(val_speakers)
    if not first.any() or not second.any():
        return Calibration(scale, shift, False, raw, None,
                           "Val has fewer than two speakers, so it cannot be checked")
    cross = np.empty_like(val_pred)
    for held, fitted in ((first, second), (second, first)):
        half_scale, half_shift = rescaling(val_pred[fitted], label_mean, label_spread)
        cross[held] = val_pred[held] * half_scale + half_shift
    cross_fitted = metrics.mean_ccc(val_true, cross)
    applied = cross_fitted > raw
    reason = (f"Val mean CCC {raw:.4f} raw, {cross_fitted:.4f} rescaled with the other half of "
              "the speakers' statistics")
    return Calibration(scale, shift, bool(applied), raw, cross_fitted, reason)


def fold_into_layer(dense, calibration: Calibration) -> None:
    """Folds the rescaling into a linear Dense layer's kernel and bias (in place)."""
    kernel, bias = dense.get_weights()
    scale = calibration.scale.astype(kernel.dtype)
    dense.set_weights([kernel * scale[np.newaxis, :],
                       (bias * scale + calibration.shift).astype(bias.dtype)])
