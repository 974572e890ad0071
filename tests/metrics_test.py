import numpy as np
import pytest

from conftest import run_main
from vb_keras.evaluation import metrics

# Table 1 of Belanich et al. (2022): (model, MTL, mean CCC, UAR, MAE, harmonic mean).
TABLE_1 = [
    ("ResNet50", "YES", 0.569, 0.513, 4.093, 0.385),
    ("ResNet50", "NO", 0.620, 0.540, 3.818, 0.412),
    ("ResNet34", "YES", 0.587, 0.483, 4.140, 0.379),
    ("ResNet34", "NO", 0.645, 0.528, 3.799, 0.414),
    ("ResNet18", "YES", 0.583, 0.495, 4.220, 0.377),
    ("ResNet18", "NO", 0.642, 0.539, 3.806, 0.416),
    ("Conformer", "YES", 0.647, 0.572, 3.780, 0.424),
    ("Conformer", "NO", 0.648, 0.596, 3.722, 0.432),
    ("Conformer + FC (128)", "YES", 0.647, 0.586, 3.874, 0.421),
    ("Conformer + LSTM", "YES", 0.601, 0.536, 4.121, 0.392),
    ("Conformer + NetVLAD", "YES", 0.640, 0.594, 3.910, 0.419),
    ("Conformer + AutoPool", "YES", 0.652, 0.587, 3.954, 0.417),
]


@pytest.mark.parametrize("model, mtl, ccc, uar, mae, hmean", TABLE_1,
                         ids=[f"{row[0]}-{row[1]}" for row in TABLE_1])
def test_challenge_score_reproduces_table_1(model, mtl, ccc, uar, mae, hmean):
    assert metrics.challenge_score(ccc, uar, mae) == pytest.approx(hmean, abs=0.001)


def test_table_1_baseline_row_does_not_reproduce_as_printed():
    # The BASELINE row (Baird et al., 2022) prints MAE 4.422 and harmonic mean 0.349. With 4.422 the
    # formula gives 0.341; with 4.222 it gives 0.349, so the printed MAE looks like a transposition.
    assert metrics.challenge_score(0.416, 0.506, 4.422) == pytest.approx(0.341, abs=0.001)
    assert metrics.challenge_score(0.416, 0.506, 4.222) == pytest.approx(0.349, abs=0.001)


def test_challenge_score_is_zero_without_positive_ccc_or_uar():
    assert metrics.challenge_score(0.0, 0.25, 3.778) == 0.0   # the NAIVE row's "—"
    assert metrics.challenge_score(-0.1, 0.5, 4.0) == 0.0
    assert metrics.challenge_score(0.5, 0.0, 4.0) == 0.0


def test_challenge_score_is_taken_over_the_tasks_present():
    """A task the data has no labels for (None) is left out of the harmonic mean."""
    assert metrics.challenge_score(0.5, 0.25, None) == pytest.approx(2 / (2 + 4))
    assert metrics.challenge_score(None, 0.5, 4.0) == pytest.approx(2 / (2 + 4))
    assert metrics.challenge_score(0.5, None, None) == pytest.approx(0.5)
    assert metrics.challenge_score(None, None, 4.0) == pytest.approx(0.25)
    assert metrics.challenge_score(-0.1, None, 4.0) == 0.0
    with pytest.raises(ValueError):
        metrics.challenge_score(None, None, None)
    figures = metrics.challenge_figures([0.1, 0.5, 0.9], [0.2, 0.5, 0.8], None, None, None, None)
    assert figures["uar"] is None and figures["mae"] is None
    assert figures["hmean"] == pytest.approx(figures["mean_ccc"])


def test_ccc_limiting_cases():
    x = np.array([0.1, 0.4, 0.2, 0.9])
    assert metrics.concordance_cc(x, x) == pytest.approx(1.0)
    assert metrics.concordance_cc(x, -x + 1.0) < 0
    assert metrics.concordance_cc(x, np.full(4, x.mean())) == 0.0       # constant prediction
    assert metrics.concordance_cc(x, x + 0.5) < metrics.concordance_cc(x, x)  # bias is penalised
    columns = metrics.concordance_cc(np.stack([x, x], 1), np.stack([x, 2 * x], 1))
    assert columns.shape == (2,) and columns[0] == pytest.approx(1.0) and columns[1] < 1.0


def test_ccc_of_equal_constants_is_one_even_when_their_float_variance_is_not_zero():
    constant = np.full(3, 0.1)
    assert constant.var() > 0          # float rounding: the reason for the exact-zero rule
    assert metrics.concordance_cc(constant, constant) == 1.0


def test_ccc_against_the_formula():
    rng = np.random.default_rng(0)
    t, p = rng.random(200), rng.random(200)
    expected = 2 * np.cov(t, p, bias=True)[0, 1] / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
    assert metrics.concordance_cc(t, p) == pytest.approx(expected)


def test_uar_is_mean_recall_over_present_classes():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    assert metrics.unweighted_average_recall(y_true, y_pred) == pytest.approx((0.75 + 0.5 + 1) / 3)
    scores = np.eye(4)[y_pred]                # scores or one-hot rows: argmax is taken
    assert metrics.unweighted_average_recall(np.eye(4)[y_true], scores) == pytest.approx(0.75)
    assert metrics.unweighted_average_recall(y_true, np.zeros(8)) == pytest.approx(1 / 3)


def test_class_indices_from_indices_or_score_rows():
    np.testing.assert_array_equal(metrics.class_indices([2, 0, 1]), [2, 0, 1])
    np.testing.assert_array_equal(metrics.class_indices([[0.1, 0.9], [0.7, 0.3]]), [1, 0])


def test_challenge_figures_combine_the_three_tasks():
    emotion = np.array([[0.1, 0.5], [0.4, 0.2], [0.8, 0.9]])
    figures = metrics.challenge_figures(emotion, emotion[::-1], [0, 1, 1], [[1, 0], [0, 1], [1, 0]],
                                        [20.0, 30.0, 40.0], [22.0, 30.0, 37.0])
    np.testing.assert_allclose(figures["ccc_per_emotion"],
                               metrics.concordance_cc(emotion, emotion[::-1]))
    assert figures["mean_ccc"] == pytest.approx(np.mean(figures["ccc_per_emotion"]))
    assert (figures["uar"], figures["mae"]) == (pytest.approx(0.75), pytest.approx(5 / 3))
    assert figures["hmean"] == metrics.challenge_score(figures["mean_ccc"], 0.75, 5 / 3)


def test_streaming_metrics_equal_the_reference_on_the_whole_set_not_batch_averages():
    rng = np.random.default_rng(0)
    n, emotions, classes = 1000, 10, 4
    y_true = rng.random((n, emotions))
    # Batch-dependent bias: per-batch CCCs would average to something else.
    y_pred = 0.6 * y_true + 0.3 * rng.random((n, emotions)) + np.repeat(rng.random(16), 63)[:n, None]
    labels, scores = rng.integers(0, classes, n), rng.random((n, classes))
    ages, age_pred = rng.uniform(18, 60, n), rng.uniform(18, 60, n)
    ccc = metrics.ConcordanceCorrelation(emotions)
    one = metrics.ConcordanceCorrelation(emotions, column=3, name="ccc_3")
    uar = metrics.UnweightedAverageRecall(classes)
    mae = metrics.MeanAbsoluteError()
    batch_cccs = []
    for start in range(0, n, 64):
        batch = slice(start, start + 64)
        ccc.update_state(y_true[batch], y_pred[batch])
        one.update_state(y_true[batch], y_pred[batch])
        uar.update_state(np.eye(classes)[labels[batch]], scores[batch])
        mae.update_state(ages[batch], age_pred[batch])
        batch_cccs.append(metrics.mean_ccc(y_true[batch], y_pred[batch]))
    expected = metrics.mean_ccc(y_true, y_pred)
    assert float(ccc.result()) == pytest.approx(expected, abs=1e-6)
    assert abs(np.mean(batch_cccs) - expected) > 1e-3   # the trap the streaming metric avoids
    np.testing.assert_allclose(ccc.per_column().numpy(), metrics.concordance_cc(y_true, y_pred),
                               atol=1e-9)
    assert float(one.result()) == pytest.approx(metrics.concordance_cc(y_true[:, 3], y_pred[:, 3]),
                                                abs=1e-6)
    assert float(uar.result()) == pytest.approx(metrics.unweighted_average_recall(labels, scores))
    assert float(mae.result()) == pytest.approx(metrics.mean_absolute_error(ages, age_pred), abs=1e-5)
    ccc.reset_state()
    uar.reset_state()
    ccc.update_state(y_true[:10], y_true[:10])
    assert float(ccc.result()) == pytest.approx(1.0)
    uar.update_state(labels[:10], np.eye(classes)[labels[:10]])   # integer labels work too
    assert float(uar.result()) == pytest.approx(1.0)


def test_streaming_ccc_of_constant_prediction_is_zero_and_finite():
    metric = metrics.ConcordanceCorrelation(2)
    metric.update_state(np.random.default_rng(1).random((50, 2)), np.full((50, 2), 0.3))
    assert float(metric.result()) == pytest.approx(0.0, abs=1e-9)


def test_streaming_metrics_work_compiled_into_a_keras_model():
    # compile/fit run result() inside a tf.function, where the eager tests above do not.
    import keras
    rng = np.random.default_rng(2)
    x, emotion = rng.random((64, 3)).astype("float32"), rng.random((64, 2)).astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"emotion": keras.layers.Dense(2, name="emotion")(inputs)})
    model.compile(loss={"emotion": "mse"},
                  metrics={"emotion": [metrics.ConcordanceCorrelation(2)]})
    logs = model.evaluate(x, {"emotion": emotion}, batch_size=16, verbose=0, return_dict=True)
    prediction = model.predict(x, verbose=0)["emotion"]
    assert logs["mean_ccc"] == pytest.approx(metrics.mean_ccc(emotion, prediction), abs=1e-5)


def test_metrics_round_trip_through_config():
    metric = metrics.ConcordanceCorrelation(7, column=2, name="ccc_fear")
    clone = metrics.ConcordanceCorrelation.from_config(metric.get_config())
    assert (clone.num_outputs, clone.column, clone.name) == (7, 2, "ccc_fear")
    assert metrics.UnweightedAverageRecall.from_config(
        metrics.UnweightedAverageRecall(3).get_config()).num_classes == 3


if __name__ == "__main__":
    run_main()
