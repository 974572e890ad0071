import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.evaluation import metrics
from vb_keras.models import losses


def test_loss_is_negative_batch_mean_ccc():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.random((64, 10)), rng.random((64, 10))
    loss = losses.NegativeMeanCCC()(y_true, y_pred)
    assert float(loss) == pytest.approx(-metrics.mean_ccc(y_true, y_pred), abs=1e-4)
    assert float(losses.NegativeMeanCCC()(y_true, y_true)) == pytest.approx(-1.0, abs=1e-4)


def test_constant_predictions_give_a_finite_loss_and_a_useful_gradient():
    y_true = tf.constant(np.random.default_rng(1).random((32, 3)), tf.float32)
    y_pred = tf.Variable(tf.fill([32, 3], 0.5))
    with tf.GradientTape() as tape:
        loss = losses.NegativeMeanCCC()(y_true, y_pred)
    gradient = tape.gradient(loss, y_pred).numpy()
    assert np.isfinite(float(loss)) and float(loss) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 1e-3
    # In every column the gradient points along the labels' deviations (a descent step raises CCC).
    deviations = y_true.numpy() - y_true.numpy().mean(axis=0)
    for column in range(3):
        assert np.corrcoef(-gradient[:, column], deviations[:, column])[0, 1] > 0.999


def test_constant_equal_labels_and_predictions_stay_finite():
    y = tf.fill([8, 2], 0.2)
    assert np.isfinite(float(losses.NegativeMeanCCC()(y, y)))


def test_config_round_trip():
    loss = losses.NegativeMeanCCC()
    assert losses.NegativeMeanCCC.from_config(loss.get_config()).name == "negative_mean_ccc"


def test_balanced_class_weights_give_every_class_the_same_total():
    counts = [177, 101, 0]
    weights = losses.balanced_class_weights(counts)
    assert weights[2] == 0.0
    np.testing.assert_allclose([weights[0] * 177, weights[1] * 101], [139.0, 139.0])
    assert np.dot(weights, counts) == pytest.approx(sum(counts))   # mean weight 1 over the clips


def test_balanced_cross_entropy_weights_each_clip_by_its_class():
    y_true = np.eye(2, dtype=np.float32)[[0, 0, 0, 1]]
    y_pred = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]], np.float32)
    plain = -np.log([0.9, 0.8, 0.6, 0.7])
    weights = np.array([2 / 3, 2 / 3, 2 / 3, 2.0])   # balanced_class_weights([3, 1])
    loss = losses.BalancedCategoricalCrossentropy(losses.balanced_class_weights([3, 1]))
    assert float(loss(y_true, y_pred)) == pytest.approx(float(np.mean(weights * plain)), rel=1e-5)
    assert float(losses.BalancedCategoricalCrossentropy([1.0, 1.0])(y_true, y_pred)) == \
        pytest.approx(float(np.mean(plain)), rel=1e-5)
    restored = losses.BalancedCategoricalCrossentropy.from_config(loss.get_config())
    assert restored.class_weights == loss.class_weights


def _two_task_model():
    import keras   # pylint: disable=import-outside-toplevel
    features = keras.Input((4,), name="features")
    return keras.Model(features, {
        "emotion": keras.layers.Dense(2, name="emotion")(features),
        "country": keras.layers.Dense(3, activation="softmax", name="country")(features)})


def test_uncertainty_weighting_starts_at_each_tasks_optimum_and_learns_the_weights(tmp_path):
    import keras   # pylint: disable=import-outside-toplevel
    from vb_keras.training import compiling   # pylint: disable=import-outside-toplevel
    model = losses.with_uncertainty_weighting(_two_task_model(),
                                              {"emotion": 1.0, "country": np.log(3.0)})
    layer = model.get_layer(losses.UNCERTAINTY_LAYER)
    # s = log L for a regression task, log 2L for the class (where the weighted loss is lowest).
    np.testing.assert_allclose(layer.log_variances.numpy(), [0.0, np.log(2 * np.log(3.0))],
                               rtol=1e-6)
    compiling.compile_for_tasks(model, ("emotion", "country"), keras.optimizers.Adam(0.05),
                                task_weighting="uncertainty")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = {"emotion": rng.random((32, 2)).astype(np.float32),
         "country": np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]}
    predicted = model(x)
    s_emotion, s_class = layer.log_variances.numpy()
    emotion = 1.0 + float(losses.NegativeMeanCCC()(y["emotion"], predicted["emotion"]))
    cross_entropy = float(tf.keras.losses.categorical_crossentropy(
        y["country"], predicted["country"]).numpy().mean())
    expected = (0.5 * np.exp(-s_emotion) * emotion + 0.5 * s_emotion
                + np.exp(-s_class) * cross_entropy + 0.5 * s_class)
    assert model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["loss"] == (
        pytest.approx(expected, rel=1e-4))
    before = layer.log_variances.numpy().copy()
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    assert not np.allclose(layer.log_variances.numpy(), before)   # the weights are learnt
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(reloaded(x)["emotion"], model(x)["emotion"], atol=1e-6)


if __name__ == "__main__":
    run_main()
