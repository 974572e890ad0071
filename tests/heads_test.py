import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.models import heads
from vb_keras.schema import HUME_VB, TASKS

SCHEMA = HUME_VB.with_classes(["0", "1", "2", "3"])
DIM = 6           # a small embedding size keeps the models tiny
LENGTHS = (1, 3, 4)


def embeddings(lengths=LENGTHS, dim=DIM, seed=0):
    """Unpadded clips: one [n, dim] array per clip."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, dim)).astype(np.float32) for n in lengths]


def batch(clips, windows, padding="zeros", seed=1):
    """Pads clips to `windows` windows with zeros, random garbage or non-finite values."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(clips), windows, clips[0].shape[1]), np.float32)
    if padding == "garbage":
        x[:] = rng.normal(scale=10.0, size=x.shape)
    elif padding == "nonfinite":
        x[:] = rng.choice([np.inf, -np.inf, np.nan, 1e30], size=x.shape)
    for row, clip in enumerate(clips):
        x[row, :len(clip)] = clip
    return {"embeddings": x, "num_windows": np.array([len(c) for c in clips], np.int32)}


def numpy_outputs(outputs):
    return {task: np.asarray(value) for task, value in outputs.items()}


def perturb_weights(model, seed=2):
    """Non-trivial AutoPool alphas and NetVLAD biases, so padding tests do not pass by symmetry."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, heads.AutoPool):
            layer.alpha.assign(rng.uniform(-3, 3, layer.alpha.shape).astype(np.float32))
        if isinstance(layer, heads.NetVLAD):
            layer.bias.assign(rng.normal(size=layer.bias.shape).astype(np.float32))


@pytest.mark.parametrize("tasks", [TASKS, ("country",)], ids=["multitask", "country"])
@pytest.mark.parametrize("head", sorted(heads.HEADS))
def test_padding_windows_never_change_outputs(head, tasks):
    model = heads.build_head_model(head, DIM, SCHEMA, tasks)
    perturb_weights(model)
    clips = embeddings()
    alone = [numpy_outputs(model(batch([clip], len(clip)), training=False)) for clip in clips]
    for padding in ("zeros", "garbage", "nonfinite"):
        padded = numpy_outputs(model(batch(clips, 7, padding), training=False))
        assert set(padded) == set(tasks)
        for row, expected in enumerate(alone):
            for task, value in expected.items():
                np.testing.assert_allclose(padded[task][row], value[0], atol=1e-5,
                                           err_msg=f"{head} {task} row {row} {padding}")
                assert np.all(np.isfinite(padded[task][row]))


def separated_clips():
    """Per clip and dimension, windows are a permutation of 0, 0.5, 1, ...: the max and min are
    0.5 apart from the runner-up, so exp(-50 * 0.5) makes AutoPool(+-50) the max/min to ~1e-11."""
    rng = np.random.default_rng(3)
    clips = []
    for n in (2, 4, 6):
        values = np.stack([rng.permutation(n) for _ in range(DIM)], axis=1) * 0.5 - 1.0
        clips.append(values.astype(np.float32))
    return batch(clips, 8, "garbage")


def test_autopool_spans_mean_max_and_min():
    inputs = separated_clips()
    x, n = inputs["embeddings"], inputs["num_windows"]
    valid = [x[row, :count] for row, count in enumerate(n)]
    mean = heads.MaskedMean()(x, n).numpy()
    np.testing.assert_allclose(mean, [v.mean(axis=0) for v in valid], atol=1e-6)
    np.testing.assert_allclose(heads.AutoPool()(x, n).numpy(), mean, atol=1e-6)
    np.testing.assert_allclose(heads.AutoPool(50.0)(x, n).numpy(),
                               [v.max(axis=0) for v in valid], atol=1e-5)
    np.testing.assert_allclose(heads.AutoPool(-50.0)(x, n).numpy(),
                               [v.min(axis=0) for v in valid], atol=1e-5)


def test_num_windows_below_one_counts_as_one_window():
    x = np.random.default_rng(4).normal(size=(2, 3, DIM)).astype(np.float32)
    for layer in (heads.MaskedMean(), heads.AutoPool(2.0)):
        out = layer(x, np.array([0, 1], np.int32)).numpy()
        np.testing.assert_allclose(out, x[:, 0], atol=1e-6)


def netvlad_reference(layer, x, n):
    kernel, bias, centroids = (w.numpy() for w in (layer.kernel, layer.bias, layer.centroids))
    rows = []
    for clip in (x[row, :count] for row, count in enumerate(n)):
        logits = clip @ kernel + bias
        a = np.exp(logits - logits.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)                                   # [T, K]
        v = np.einsum("tk,tkd->kd", a, clip[:, None, :] - centroids[None])  # [K, D]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v = v.reshape(-1)
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows)


def test_netvlad_is_intra_and_globally_normalised():
    inputs = batch(embeddings(), 5, "garbage")
    layer = heads.NetVLAD(num_clusters=5)
    out = layer(inputs["embeddings"], inputs["num_windows"]).numpy()
    assert out.shape == (3, 5 * DIM)
    assert layer.compute_output_shape((None, None, DIM)) == (None, 5 * DIM)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # Intra-normalisation makes every cluster block (residual sum) a unit vector before the global
    # norm, so after it each block has norm 1 / sqrt(K).
    blocks = out.reshape(3, 5, DIM)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=2), 5 ** -0.5, atol=1e-6)
    reference = netvlad_reference(layer, inputs["embeddings"], inputs["num_windows"])
    np.testing.assert_allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize("head", sorted(heads.HEADS))
def test_extra_inputs_are_inputs_and_change_outputs(head):
    model = heads.build_head_model(head, DIM, SCHEMA, extra_dim=3)
    assert {t.name for t in model.inputs} == {"embeddings", "num_windows", "extra"}
    assert {t.name for t in heads.build_head_model(head, DIM, SCHEMA).inputs} == {
        "embeddings", "num_windows"}
    inputs = batch(embeddings(), 4)
    zeros = model(inputs | {"extra": np.zeros((3, 3), np.float32)})
    ones = model(inputs | {"extra": np.ones((3, 3), np.float32)})
    for task in TASKS:
        assert not np.allclose(zeros[task], ones[task]), task
    if head == "conformer_fc":   # the extras join the mean before the shared FC layer
        assert model.get_layer("fc").kernel.shape == (DIM + 3, heads.HIDDEN_UNITS)


@pytest.mark.parametrize("layer", [
    heads.WindowMask(name="m"), heads.MaskedMean(name="mean"), heads.AutoPool(0.7, name="pool"),
    heads.NetVLAD(num_clusters=3, name="vlad")], ids=lambda layer: type(layer).__name__)
def test_layer_config_round_trip(layer):
    inputs = batch(embeddings(), 5, "garbage")
    args = (inputs["embeddings"], inputs["num_windows"])
    expected = layer(*args)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(*args)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(*args), expected)
    if isinstance(layer, heads.AutoPool):
        np.testing.assert_allclose(layer.alpha.numpy(), 0.7)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)


@pytest.mark.parametrize("head", sorted(heads.HEADS))
def test_saved_head_model_gives_identical_outputs(head, tmp_path):
    model = heads.build_head_model(head, DIM, SCHEMA, extra_dim=2, initial_biases={"age": [26.0]})
    perturb_weights(model)
    inputs = batch(embeddings(), 5, "garbage") | {
        "extra": np.random.default_rng(5).normal(size=(3, 2)).astype(np.float32)}
    expected = numpy_outputs(model(inputs))
    assert model.get_layer("age").bias.numpy()[0] == 26.0
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.name == f"{head}_emotion_country_age"
    for task, value in numpy_outputs(reloaded(inputs)).items():
        np.testing.assert_allclose(value, expected[task], atol=1e-6)


def test_parameter_counts_of_the_paper_heads():
    dim, hidden, clusters = 1024, heads.HIDDEN_UNITS, heads.NETVLAD_CLUSTERS
    outputs = SCHEMA.num_emotions + SCHEMA.num_classes + 1            # 10 + 4 + 1 task units

    def task_layers(width):
        return (width + 1) * outputs

    expected = {
        "conformer": task_layers(dim),
        "conformer_fc": (dim + 1) * hidden + task_layers(hidden),
        "conformer_lstm": 4 * ((dim + hidden + 1) * hidden) + task_layers(hidden),
        "conformer_netvlad": 2 * clusters * dim + clusters + task_layers(clusters * dim),
        "conformer_autopool": dim + task_layers(dim),
    }
    assert expected == {"conformer": 15375, "conformer_fc": 133135, "conformer_lstm": 592271,
                        "conformer_netvlad": 87060, "conformer_autopool": 16399}
    for head, count in expected.items():
        assert heads.build_head_model(head, dim, SCHEMA).count_params() == count, head


def test_autopool_head_trains_and_alpha_gets_a_gradient():
    rng = np.random.default_rng(6)
    model = heads.build_head_model("conformer_autopool", DIM, SCHEMA)
    clips = [rng.normal(size=(n, DIM)).astype(np.float32) for n in rng.integers(1, 5, 16)]
    x = batch(clips, 4, "garbage")
    y = {"emotion": rng.uniform(size=(16, 10)).astype(np.float32),
         "country": np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)],
         "age": rng.uniform(20, 40, (16, 1)).astype(np.float32)}
    alpha = model.get_layer("autopool").alpha
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x)["emotion"] - y["emotion"]))
    assert np.any(tape.gradient(loss, alpha).numpy() != 0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss={"emotion": "mse", "country": "categorical_crossentropy", "age": "mse"})
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert np.any(alpha.numpy() != 0)


def test_heads_stay_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        models = [heads.build_head_model(head, DIM, SCHEMA) for head in heads.HEADS]
    finally:
        keras.config.set_dtype_policy("float32")
    inputs = batch(embeddings(), 4)
    for model in models:
        assert all(value.dtype == "float32" for value in model(inputs).values()), model.name
        assert all(layer.compute_dtype == "float32" for layer in model.layers
                   if not isinstance(layer, keras.layers.InputLayer)), model.name


def test_registry_errors_and_names():
    with pytest.raises(ValueError, match="conformer, conformer_autopool, conformer_fc, "
                                         "conformer_lstm, conformer_netvlad"):
        heads.build_head_model("conformer_gru", DIM, SCHEMA)
    assert heads.check_head_name("conformer_fc") == "conformer_fc"
    with pytest.raises(ValueError, match="emotion, country, age"):
        heads.build_head_model("conformer", DIM, SCHEMA, ["valence"])
    model = heads.build_head_model("conformer", DIM, SCHEMA, ["age", "emotion"])
    assert model.name == "conformer_emotion_age" and list(model.output) == ["emotion", "age"]


if __name__ == "__main__":
    run_main()
