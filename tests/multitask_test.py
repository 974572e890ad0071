import keras
import numpy as np
import pytest

from conftest import run_main
from vb_keras.models import multitask
from vb_keras.schema import HUME_VB

SCHEMA = HUME_VB.with_classes(["0", "1", "2", "3"])


def inputs(batch=2, samples=24000):
    rng = np.random.default_rng(0)
    return {"waveform": rng.uniform(-0.5, 0.5, (batch, samples)).astype(np.float32),
            "num_samples": np.array([samples, samples // 2][:batch], np.int32)}


def test_multitask_model_has_named_outputs_and_biases(tmp_path):
    model = multitask.build_model("resnet18", SCHEMA, initial_biases={
        "emotion": np.full(10, 0.3), "age": [26.0]})
    outputs = model(inputs())
    assert set(outputs) == {"emotion", "country", "age"}
    assert outputs["emotion"].shape == (2, 10) and outputs["age"].shape == (2, 1)
    np.testing.assert_allclose(outputs["country"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("age").bias.numpy()[0] == 26.0
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    for task, value in reloaded(inputs()).items():
        np.testing.assert_allclose(value, outputs[task], atol=1e-5)


@pytest.mark.parametrize("tasks", [("emotion",), ("country",), ("age",), ("age", "emotion")])
def test_single_task_models_have_only_their_outputs(tasks):
    model = multitask.build_model("resnet18", SCHEMA, tasks)
    assert set(model(inputs(1))) == set(tasks)


def test_mixed_bfloat16_keeps_front_end_and_outputs_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = multitask.build_model("resnet18", SCHEMA)
        outputs = model(inputs(1))
    finally:
        keras.config.set_dtype_policy("float32")
    assert all(value.dtype == "float32" for value in outputs.values())
    assert model.get_layer("log_mel").compute_dtype == "float32"
    assert model.get_layer("resnet18_stem_conv").compute_dtype == "bfloat16"


def test_registry_and_task_errors_list_the_valid_names():
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        multitask.build_model("resnet101", SCHEMA)
    with pytest.raises(ValueError, match="emotion, country, age"):
        multitask.build_model("resnet18", SCHEMA, tasks=["emotion", "valence"])


def test_a_clip_gives_the_same_outputs_alone_and_in_any_padded_batch():
    """Exact padding: a server or evaluation batch mixes clips of any length (0.6 to 3.1 s here)."""
    schema = HUME_VB.with_classes(["a", "b", "c"])
    model = multitask.build_model("resnet18", schema)
    rng = np.random.default_rng(0)
    clips = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (9600, 23999, 49600, 17000)]
    longest = max(len(c) for c in clips)
    batch = {"waveform": np.stack([np.pad(c, (0, longest - len(c))) for c in clips]),
             "num_samples": np.array([len(c) for c in clips], np.int32)}
    together = model(batch, training=False)
    for row, clip in enumerate(clips):
        alone = model({"waveform": clip[None], "num_samples": np.array([len(clip)], np.int32)},
                      training=False)
        for task in ("emotion", "country", "age"):
            np.testing.assert_allclose(together[task][row], alone[task][0], atol=2e-4, rtol=1e-4)


if __name__ == "__main__":
    run_main()
