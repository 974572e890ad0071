"""Post-hoc rescaling of the emotion outputs: CCC-optimal, checked on Val before it is kept, and
folded into the emotion layer."""

import keras
import numpy as np

from conftest import run_main
from vb_keras.evaluation import calibration, metrics


def _shrunk(seed=0, clips=400, spread=0.2):
    """Labels, and predictions that correlate with them but with a shrunk spread."""
    rng = np.random.default_rng(seed)
    labels = rng.random((clips, 3))
    predictions = 0.5 + spread * (labels - 0.5) + rng.normal(0, 0.05, (clips, 3))
    speakers = np.repeat([f"s{k}" for k in range(8)], clips // 8)
    return labels, predictions, speakers


def test_the_rescaling_gives_the_labels_mean_and_spread():
    labels, predictions, _ = _shrunk()
    scale, shift = calibration.rescaling(predictions, labels.mean(0), labels.std(0))
    rescaled = predictions * scale + shift
    np.testing.assert_allclose(rescaled.mean(0), labels.mean(0), atol=1e-9)
    np.testing.assert_allclose(rescaled.std(0), labels.std(0), atol=1e-9)
    # For a fixed correlation, CCC is highest at the labels' spread.
    assert metrics.mean_ccc(labels, rescaled) > metrics.mean_ccc(labels, predictions) + 0.2
    constant = np.full((10, 3), 0.3)
    scale, _ = calibration.rescaling(constant, np.zeros(3), np.ones(3))
    np.testing.assert_array_equal(scale, 1.0)   # nothing to rescale


def test_it_is_applied_only_where_it_holds_up_across_val_speakers():
    labels, predictions, speakers = _shrunk()
    fitted = calibration.fit_on_val(labels, predictions, speakers, labels)
    assert fitted.applied and fitted.val_mean_ccc_cross_fitted > fitted.val_mean_ccc_raw
    # Predictions already at the labels' scale gain nothing.
    exact = labels + np.random.default_rng(1).normal(0, 0.01, labels.shape)
    assert not calibration.fit_on_val(labels, exact, speakers, labels).applied
    alone = calibration.fit_on_val(labels, predictions, np.full(len(labels), "s"), labels)
    assert not alone.applied and "fewer than two speakers" in alone.reason
    assert set(fitted.to_dict()) == {"applied", "scale", "shift", "val_mean_ccc_raw",
                                     "val_mean_ccc_cross_fitted", "reason"}


def test_folding_into_the_layer_gives_the_rescaled_outputs():
    labels, predictions, speakers = _shrunk()
    fitted = calibration.fit_on_val(labels, predictions, speakers, labels)
    inputs = keras.Input((5,))
    dense = keras.layers.Dense(3, name="emotion")
    model = keras.Model(inputs, dense(inputs))
    x = np.random.default_rng(2).random((7, 5)).astype(np.float32)
    raw = model(x).numpy()
    calibration.fold_into_layer(dense, fitted)
    np.testing.assert_allclose(model(x).numpy(), fitted.apply(raw), atol=1e-5)


if __name__ == "__main__":
    run_main()
