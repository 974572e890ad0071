"""wav2vec 2.0 pre-training of the Conformer (vb_keras.training.wav2vec2; Baevski et al., 2020)."""

import dataclasses

import numpy as np
import keras
import pytest

from conftest import run_main
import tensorflow as tf

from vb_keras.models import conformer
from vb_keras.training import wav2vec2


def test_the_gumbel_temperature_is_annealed_from_2_to_half():
    objective = wav2vec2.Wav2Vec2Params()   # the paper's: 0.999995 per update
    assert float(objective.temperature(0)) == 2.0
    assert float(objective.temperature(100000)) == pytest.approx(2.0 * 0.999995 ** 100000)
    assert float(objective.temperature(10 ** 7)) == pytest.approx(0.5)
    short = wav2vec2.Wav2Vec2Params(anneal_steps=100)
    assert float(short.temperature(50)) == pytest.approx(1.0)
    assert float(short.temperature(100)) == pytest.approx(0.5)


def test_span_masks_cover_only_valid_steps_and_every_clip_gets_some():
    lengths = tf.constant([200, 37, 3, 1])
    mask = wav2vec2.span_mask(lengths, 200, 0.065, 10, [7, 0]).numpy()
    for row, length in enumerate(lengths.numpy()):
        assert mask[row, :length].any() and not mask[row, length:].any()
    # About 1 - (1 - p) ** M of a long clip's steps are masked (0.49 for the paper's values).
    shares = [wav2vec2.span_mask(tf.constant([2000]), 2000, 0.065, 10, [s, 1]).numpy().mean()
              for s in range(5)]
    assert 0.40 < np.mean(shares) < 0.56
    again = wav2vec2.span_mask(lengths, 200, 0.065, 10, [7, 0]).numpy()
    np.testing.assert_array_equal(mask, again)   # stateless: the same seed, the same masks
    # Masks come in spans: a masked run is at least M steps long unless the clip ends first.
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, mask[0, :190].astype(int), 0])))[::2]
    assert runs.min() >= 10


def test_distractors_are_masked_steps_of_the_same_clip():
    mask = tf.constant([[True, False, True, True, False], [False, True, False, False, False]])
    drawn = wav2vec2.sample_distractors(mask, 50, [1, 2]).numpy()
    assert drawn.shape == (2, 5, 50)
    assert set(drawn[0].ravel()) == {0, 2, 3} and set(drawn[1].ravel()) == {1}


def test_the_contrastive_loss_is_the_softmax_over_cosine_similarities():
    rng = np.random.default_rng(0)
    context = rng.normal(size=(1, 4, 3)).astype(np.float32)
    targets = rng.normal(size=(1, 4, 3)).astype(np.float32)
    mask = np.array([[True, True, False, True]])
    distractors = np.array([[[1, 3], [0, 3], [0, 1], [0, 0]]], np.int32)
    loss, accuracy = wav2vec2.contrastive_loss(context, targets, mask, distractors, 0.5)

    def cos(a, b):
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    expected, correct = [], []
    for t in (0, 1, 3):
        logits = np.array([cos(context[0, t], targets[0, t])] +
                          [cos(context[0, t], targets[0, s]) for s in distractors[0, t]]) / 0.5
        expected.append(np.log(np.exp(logits).sum()) - logits[0])
        correct.append(logits[0] > logits[1:].max())
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-5)
    assert float(accuracy) == pytest.approx(np.mean(correct))


def test_only_the_positives_own_step_is_left_out_so_a_collapsed_codebook_scores_badly():
    context = np.ones((1, 3, 2), np.float32)
    mask = np.ones((1, 3), bool)
    distractors = np.array([[[0, 1, 2], [0, 1, 2], [0, 1, 2]]], np.int32)
    distinct = np.array([[[1, 0], [0, 1], [-1, 0]]], np.float32)
    loss, _ = wav2vec2.contrastive_loss(distinct, distinct, mask, distractors, 0.1)
    assert float(loss) < 0.01            # each step's own target stands out
    collapsed = np.ones((1, 3, 2), np.float32)   # every step quantised alike
    loss, accuracy = wav2vec2.contrastive_loss(context, collapsed, mask, distractors, 0.1)
    assert float(loss) == pytest.approx(np.log(3.0), rel=1e-5) and float(accuracy) == 0.0


TINY = conformer.ConformerConfig(name="tiny", num_layers=2, model_dim=32, num_heads=2,
                                 feed_forward_multiplier=2, conv_kernel_size=5,
                                 feature_encoder_channels=32, feature_encoder_kernel=3,
                                 embedding_layer=2, dropout=0.0)


def _batch(seconds=(1.2, 0.7), seed=0):
    """Clips of 50 ms noise bursts, each with its own spectral tilt: steps that differ."""
    rng = np.random.default_rng(seed)
    lengths = [int(s * 16000) for s in seconds]
    waveform = np.zeros((len(lengths), max(lengths)), np.float32)
    for row, length in enumerate(lengths):
        for start in range(0, length, 800):
            noise = rng.normal(0, 0.2, min(800, length - start))
            waveform[row, start:start + len(noise)] = np.cumsum(noise) * rng.uniform(0, 0.2) + noise
    return {"waveform": np.clip(waveform, -1, 1), "num_samples": np.array(lengths, np.int32)}


def test_pretraining_lowers_the_loss_and_the_weights_transfer_to_an_encoder():
    keras.utils.set_random_seed(0)
    objective = wav2vec2.Wav2Vec2Params(num_entries=16, num_distractors=8, final_dim=16,
                                        anneal_steps=30)
    model = wav2vec2.Wav2Vec2Pretrainer(TINY, objective, seed=1)
    batch = _batch()
    model.build_from_batch(batch)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=3, steps_per_epoch=10,
                        verbose=0).history
    assert set(history) == set(wav2vec2.LOG_NAMES)
    assert min(history["code_perplexity"]) > 2   # more than one code per group in use
    assert history["loss"][-1] < history["loss"][0]
    assert history["contrastive_loss"][-1] < history["contrastive_loss"][0]
    assert history["temperature"][0] > history["temperature"][-1] >= 0.5   # annealed
    # The pre-trained layers load into an encoder of the same configuration.
    encoder = conformer.build_conformer_encoder(TINY, output_layer=TINY.num_layers)
    wav2vec2.encoder_weights(model, encoder, TINY.num_layers)
    log_mel = model.log_mel(model.normalize(batch["waveform"], batch["num_samples"]))
    frames = model.frames(batch["num_samples"])
    encoded = encoder({"log_mel": log_mel, "num_frames": frames})["sequence"]
    np.testing.assert_allclose(encoded.numpy(), model(batch).numpy(), atol=1e-4)
    clone = wav2vec2.Wav2Vec2Pretrainer.from_config(model.get_config())
    assert clone.config == TINY and clone.objective == objective


def test_distillation_alone_or_beside_wav2vec2_learns_the_teachers_targets_from_its_layer():
    """The student's loss is the mean square error of the projected mean of the embedding layer
    (here block 1 of 2) against the targets; it falls on a fixed batch."""
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(TINY, embedding_layer=1)
    batch = {**_batch(), "teacher": np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]], np.float32)}
    model = wav2vec2.Wav2Vec2Pretrainer(config, seed=1, teacher_dim=3, contrastive=False)
    model.build_from_batch(batch)
    assert not any("quantizer" in w.path for w in model.weights)   # nothing of wav2vec 2.0
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    values = model.objective_values(batch, 0)
    z, lengths, _ = model._features(batch)
    sequence = model._context(z, lengths, False)[1]
    pooled = tf.reduce_sum(sequence, 1) / tf.cast(lengths, tf.float32)[:, None]
    expected = np.mean((model.distill_proj(pooled).numpy() - batch["teacher"]) ** 2)
    assert float(values["distillation_loss"]) == pytest.approx(expected, rel=1e-5)
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=2, steps_per_epoch=10,
                        verbose=0).history
    assert set(history) == {"loss", "distillation_loss"}
    assert history["distillation_loss"][-1] < 0.5 * history["distillation_loss"][0]
    both = wav2vec2.Wav2Vec2Pretrainer(
        config, wav2vec2.Wav2Vec2Params(num_entries=16, num_distractors=8, final_dim=16), seed=1,
        teacher_dim=3, distillation_weight=2.0)
    values = both.objective_values(batch, 0)
    assert float(values["loss"]) == pytest.approx(float(
        values["contrastive_loss"] + 0.1 * values["diversity_loss"]
        + 2.0 * values["distillation_loss"]), rel=1e-5)
    with pytest.raises(ValueError, match="nothing to learn"):
        wav2vec2.Wav2Vec2Pretrainer(config, contrastive=False)


if __name__ == "__main__":
    run_main()
