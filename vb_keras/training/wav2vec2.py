"""wav2vec 2.0 self-supervised pre-training of the section 2.2 Conformer (Baevski et al., 2020).

Section 2.2's CAP12 encoder was "pre-trained using the Wav2Vec 2.0 contrastive loss". The objective,
on the Conformer of `models/conformer.py`:
  z = feature encoder + subsampling of the log-mel (the "feature-encoder output", one step per 40 ms);
  spans of z are masked: each valid start step is drawn with probability p and masks the M steps
    from it (p = 0.065, M = 10: Baevski et al., section 4.2; about half the steps end up masked);
    masked steps are replaced by one learnt vector;
  c = the Conformer blocks over the masked z, projected to `final_dim`;
  q = the Gumbel-softmax product quantiser of the UNMASKED z (`models/quantizer.py`), projected;
  contrastive loss: at each masked step t, -log softmax over cosine similarities / kappa of c_t with
    q_t against K distractors, the q of other masked steps of the same clip (K = 100, kappa = 0.1);
  diversity loss: (G V - perplexity) / (G V), the perplexity of the batch's average code
    probabilities (alpha = 0.1), so that all codebook entries get used;
  feature penalty: the mean square of z (off by default here, see `Wav2Vec2Params`);
The Gumbel temperature is annealed from 2 to 0.5 (section 4.2: by 0.999995 per update, which takes
69% of the paper's 400,000 updates; here over the same share of the run, see `Wav2Vec2Params`).

Everything is padding-aware: masks, distractors and statistics cover only each clip's valid steps.
Masks and distractors are drawn with stateless ops seeded by (seed, optimiser step), so a resumed run
draws what the uninterrupted one would have.
"""

import dataclasses

import keras
import tensorflow as tf

from vb_keras import params as vb_params
from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.models import conformer, features, heads, masking, quantizer
from vb_keras.training import distillation

# Updates the paper's temperature decay (0.999995 per update) takes from 2 to 0.5: ln(1/4) / ln(0.999995).
PAPER_ANNEAL_STEPS = 277258
LOG_NAMES = ("loss", "contrastive_loss", "diversity_loss", "feature_penalty", "accuracy",
             "perplexity", "code_perplexity", "temperature")
DISTILLATION_LOG_NAMES = ("distillation_loss",)


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Params:
    """The objective's settings; defaults from Baevski et al. (2020), section 4.2 (BASE), except
    where said.

    Attributes:
      mask_prob, mask_length: span masking (p = 0.065 of the steps start a span of M = 10 steps).
      num_groups, num_entries: the quantiser's G = 2 codebooks of V = 320 entries.
      quantizer_logit_std: the spread of the quantiser's logits at initialisation (1.2; this
        project's choice, measured: `quantizer.GumbelVectorQuantizer`). fairseq's N(0, 1) weights
        give about 12 on the small Conformer's features, and collapsed its codebook on EmoDB.
      final_dim: width of the projected context and targets (256 in BASE).
      num_distractors: K = 100 distractors per masked step.
      logit_temperature: kappa = 0.1 of the contrastive softmax.
      diversity_weight: alpha = 0.1.
      feature_penalty_weight: 0 (off). fairseq's wav2vec 2.0 recipe uses 10 on features it then
        layer-normalises; here the features enter the Conformer blocks as they are (so that the
        blocks hand over to the embedder unchanged), and a weight of 10 shrank them to a mean square
        of 4e-7 within 150 updates on EmoDB, the codebook collapsing with them.
      max_temperature, min_temperature, anneal_steps: the Gumbel temperature, annealed
        geometrically from 2 to 0.5 over `anneal_steps` updates, then kept at 0.5. The paper's
        factor of 0.999995 per update takes 277,258 of its 400,000 updates (69%) to get there; a
        run of another length should anneal over the same share of it
        (`pretraining.PretrainingParams` sets that).
    """
    mask_prob: float = 0.065
    mask_length: int = 10
    num_groups: int = 2
    num_entries: int = 320
    quantizer_logit_std: float = 1.2
    final_dim: int = 256
    num_distractors: int = 100
    logit_temperature: float = 0.1
    diversity_weight: float = 0.1
    feature_penalty_weight: float = 0.0
    max_temperature: float = 2.0
    min_temperature: float = 0.5
    anneal_steps: int = PAPER_ANNEAL_STEPS

    def __post_init__(self):
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must lie in (0, 1), got {self.mask_prob}")
        for name in ("mask_length", "num_groups", "num_entries", "final_dim", "num_distractors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.quantizer_logit_std <= 0:
            raise ValueError(f"quantizer_logit_std must be positive, got {self.quantizer_logit_std}")
        if not 0 < self.min_temperature <= self.max_temperature:
            raise ValueError("temperatures must satisfy 0 < min_temperature <= max_temperature")
        if self.anneal_steps < 1:
            raise ValueError(f"anneal_steps must be positive, got {self.anneal_steps}")

    def temperature(self, step):
        """The Gumbel temperature after `step` updates."""
        share = tf.minimum(tf.cast(step, tf.float32) / self.anneal_steps, 1.0)
        ratio = self.min_temperature / self.max_temperature
        return self.max_temperature * tf.pow(ratio, share)


def span_mask(lengths, max_steps, mask_prob: float, mask_length: int, seed):
    """bool [batch, max_steps]: the masked steps (section 3.1 of Baevski et al.).

    Each step that can start a whole span inside the clip (t <= length - M; t = 0 for a clip
    shorter than a span) starts one with probability `mask_prob`, independently (the paper samples
    that proportion without replacement); a clip that drew none gets one start, uniformly, so every
    clip has masked steps to learn from. A span covers M steps, cut at the clip's end.
    """
    lengths = tf.cast(lengths, tf.int32)
    seed = tf.convert_to_tensor(seed, tf.int64)
    batch = tf.shape(lengths)[0]
    steps = tf.range(max_steps)[tf.newaxis]
    num_starts = tf.maximum(lengths - mask_length, 0) + 1                     # [batch]
    allowed = steps < num_starts[:, tf.newaxis]
    draws = tf.random.stateless_uniform([batch, max_steps], seed)
    starts = allowed & (draws < mask_prob)
    fallback = tf.random.stateless_uniform([batch], seed + tf.constant([0, 1], seed.dtype))
    forced = tf.cast(fallback * tf.cast(num_starts, tf.float32), tf.int32)
    none = ~tf.reduce_any(starts, axis=1, keepdims=True)
    starts |= none & (steps == forced[:, tf.newaxis])
    # Step t is masked when a span starts in (t - M, t]: a difference of running counts.
    count = tf.cumsum(tf.cast(starts, tf.int32), axis=1)
    before = tf.pad(count, [[0, 0], [mask_length, 0]])[:, :max_steps]
    return ((count - before) > 0) & (steps < lengths[:, tf.newaxis])


def sample_distractors(mask, num_distractors: int, seed):
    """int32 [batch, steps, K]: for every step, K steps drawn uniformly (with replacement) from the
    masked steps of the same clip (the positive's own step may be drawn: `contrastive_loss` drops
    it)."""
    batch, steps = tf.shape(mask)[0], tf.shape(mask)[1]
    seed = tf.convert_to_tensor(seed, tf.int64)
    logits = tf.where(mask, 0.0, -1e9)
    drawn = tf.random.stateless_categorical(logits, steps * num_distractors, seed,
                                            dtype=tf.int32)
    return tf.reshape(drawn, [batch, steps, num_distractors])


def contrastive_loss(context, targets, mask, distractors, logit_temperature: float):
    """(loss, accuracy) over the masked steps (Baevski et al., equation 3).

    A distractor drawn at the positive's own step is left out. Unlike fairseq, distractors whose
    codes equal the positive's are not: leaving them out rewards a collapsed codebook (all of them
    leave, and the loss falls to 0 with nothing learnt; on EmoDB the codebook perplexity fell to 2.3
    of 640 within 50 updates), while keeping them makes a collapsed codebook score log(K + 1).

    Args:
      context: float [batch, steps, D], the projected context vectors c.
      targets: float [batch, steps, D], the projected quantised vectors q.
      mask: bool [batch, steps], the masked steps.
      distractors: int [batch, steps, K] from `sample_distractors`.
      logit_temperature: kappa.

    Returns:
      the mean over masked steps of -log softmax(sim / kappa) at the positive, and the share of
      masked steps whose positive scores above every distractor.
    """
    context = tf.math.l2_normalize(tf.cast(context, tf.float32), axis=-1)
    targets = tf.math.l2_normalize(tf.cast(targets, tf.float32), axis=-1)
    similarity = tf.einsum("btd,bsd->bts", context, targets)           # cos(c_t, q_s)
    positive = tf.linalg.diag_part(similarity)                           # [batch, steps]
    negative = tf.gather(similarity, distractors, batch_dims=2)          # [batch, steps, K]
    own_step = distractors == tf.range(tf.shape(distractors)[1])[tf.newaxis, :, tf.newaxis]
    negative = tf.where(own_step, -1e9, negative)
    logits = tf.concat([positive[..., tf.newaxis], negative], axis=-1) / logit_temperature
    per_step = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.zeros(tf.shape(positive), tf.int32), logits)
    weights = tf.cast(mask, tf.float32)
    count = tf.maximum(tf.reduce_sum(weights), 1.0)
    correct = tf.cast(tf.reduce_all(positive[..., tf.newaxis] > negative, axis=-1), tf.float32)
    return (tf.reduce_sum(per_step * weights) / count, tf.reduce_sum(correct * weights) / count)


@keras.saving.register_keras_serializable(package="vb_keras")
class Wav2Vec2Pretrainer(keras.Model):
    """The section 2.2 Conformer under the wav2vec 2.0 objective (see the module docstring), the
    distillation objective of `distillation` (a teacher's chunk embeddings), or both added.

    Its feature encoder, subsampling and blocks carry the names of `conformer.build_conformer_encoder`'s
    layers, so `encoder_weights` hands them to an encoder or embedder of the same configuration,
    truncated at any layer.

    Args:
      config: a `conformer.ConformerConfig`, or the name of a shipped one ("small", "cap12").
      objective: a `Wav2Vec2Params`.
      seed: seeds the masks, distractors and Gumbel noise (with the optimiser step).
      teacher_dim: the teacher's embedding width D; 0 (the default): no distillation. The mean of
        the embedding layer's output goes through a linear projection `distill_proj` to D.
      contrastive: whether the wav2vec 2.0 objective is on (at least one of the two must be);
        without it only the blocks up to the embedding layer are built. With both on, the distillation reads the embedding layer of the masked pass (one pass per batch;
        the masking then acts as an augmentation of the student's input).
      distillation_weight: the distillation loss's weight in the sum.

    Fit on {"waveform": float32 [batch, samples], "num_samples": int32 [batch]} batches, with
    "teacher": float32 [batch, D] (standardised targets) when distilling; labels, if any, are
    ignored. The logs are `LOG_NAMES` (wav2vec 2.0) and `DISTILLATION_LOG_NAMES`.
    """

    def __init__(self, config="small", objective=None, seed=0, teacher_dim=0, contrastive=True,
                 distillation_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        if not contrastive and not teacher_dim:
            raise ValueError("nothing to learn: the wav2vec 2.0 objective is off and there is no "
                             "teacher (teacher_dim=0)")
        self.teacher_dim, self.contrastive = int(teacher_dim), bool(contrastive)
        self.distillation_weight = float(distillation_weight)
        if isinstance(config, str):
            config = conformer.CONFORMER_CONFIGS[config]
        elif isinstance(config, dict):
            config = conformer.ConformerConfig(**config)
        self.config = config
        self.objective = objective if isinstance(objective, Wav2Vec2Params) else \
            Wav2Vec2Params(**(objective or {}))
        self.seed = int(seed)
        config, frontend = self.config, vb_params.CONFORMER_FRONTEND
        self.normalize = features.WaveformNormalization(frontend.normalization, name="normalize")
        self.log_mel = features.LogMelSpectrogram.from_params(frontend, name="log_mel")
        self.frames = features.FrameCounts.from_params(frontend, name="frames")
        self.feature_encoder = conformer.FeatureEncoder(
            config.feature_encoder_channels, config.feature_encoder_kernel, name="feature_encoder")
        self.subsampling = conformer.ConvSubsampling(config.model_dim, name="subsampling")
        self.positions = conformer.SinusoidalPositionalEncoding(name="positions")
        self.positions_dropout = keras.layers.Dropout(config.dropout, name="positions_dropout")
        # Distillation alone trains the blocks up to the embedding layer: later ones could not
        # change the student's embedding (nor get a gradient).
        num_blocks = config.num_layers if self.contrastive else config.embedding_layer
        self.blocks = [conformer.ConformerBlock(config.model_dim, config.num_heads,
                                                config.feed_forward_multiplier,
                                                config.conv_kernel_size, config.dropout,
                                                name=f"block{index + 1}")
                       for index in range(num_blocks)]
        names = ("loss",)
        if self.contrastive:
            self.feature_norm = keras.layers.LayerNormalization(center=False, scale=False,
                                                                name="feature_norm")
            self.quantizer = quantizer.GumbelVectorQuantizer(
                self.objective.num_groups, self.objective.num_entries, self.objective.final_dim,
                seed=self.seed, logit_std=self.objective.quantizer_logit_std, name="quantizer")
            self.project_q = keras.layers.Dense(self.objective.final_dim, name="project_q")
            self.final_proj = keras.layers.Dense(self.objective.final_dim, name="final_proj")
            self.mask_embedding = self.add_weight(
                name="mask_embedding", shape=(config.model_dim,),
                initializer=keras.initializers.RandomUniform(0.0, 1.0))
            names = LOG_NAMES
        if self.teacher_dim:
            self.pool = heads.MaskedMean(dtype="float32", name="pool")
            self.distill_proj = keras.layers.Dense(self.teacher_dim, dtype="float32",
                                                   name="distill_proj")
            # The training targets' standardisation, kept with the weights for the export.
            self.teacher_mean = self.add_weight(name="teacher_mean", shape=(self.teacher_dim,),
                                                initializer="zeros", trainable=False)
            self.teacher_scale = self.add_weight(name="teacher_scale", shape=(self.teacher_dim,),
                                                 initializer="ones", trainable=False)
            names += DISTILLATION_LOG_NAMES
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _features(self, inputs):
        """z, the valid steps and their counts of a waveform batch."""
        waveform = tf.convert_to_tensor(inputs[WAVEFORM], tf.float32)
        num_samples = tf.cast(inputs[NUM_SAMPLES], tf.int32)
        log_mel = self.log_mel(self.normalize(waveform, num_samples))
        frames = self.frames(num_samples)
        z = self.subsampling(self.feature_encoder(log_mel, frames), frames)
        lengths = conformer.subsampled_lengths(frames)
        return z, lengths, masking.step_mask(lengths, tf.shape(z)[1])

    def _context(self, z, lengths, training):
        """(the last block's output, the embedding layer's output), zero on padded steps."""
        x = self.positions_dropout(self.positions(z), training=training)
        embedding_sequence = None
        for index, block in enumerate(self.blocks):
            x = block(x, lengths, training=training)
            if index + 1 == self.config.embedding_layer:
                embedding_sequence = x
        return x, embedding_sequence

    def call(self, inputs, training=None):
        """The unmasked context sequence (the last block built), zero on padded steps."""
        z, lengths, _ = self._features(inputs)
        return self._context(z, lengths, training)[0]

    def objective_values(self, inputs, step, training=False) -> dict:
        """Every logged value (see the class docstring) for one batch, after `step` updates."""
        z, lengths, valid = self._features(inputs)
        if self.contrastive:
            values, embedding_sequence = self._wav2vec2_values(z, lengths, valid, step, training)
        else:
            values, embedding_sequence = {"loss": 0.0}, self._context(z, lengths, training)[1]
        if self.teacher_dim:
            # The embedder's mean over the valid steps, as the exported embedder pools.
            pooled = self.pool(tf.cast(embedding_sequence, tf.float32), lengths)
            loss = distillation.distillation_loss(self.distill_proj(pooled),
                                                  inputs[distillation.TEACHER])
            values["distillation_loss"] = loss
            values["loss"] = values["loss"] + self.distillation_weight * loss
        return values

    def _wav2vec2_values(self, z, lengths, valid, step, training) -> tuple:
        """(every value of `LOG_NAMES`, the masked pass's embedding-layer output)."""
        objective = self.objective
        steps = tf.shape(z)[1]
        valid_weights = tf.cast(valid, z.dtype)[..., tf.newaxis]
        penalty = tf.reduce_sum(tf.square(tf.cast(z * valid_weights, tf.float32))) / (
            tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0) * z.shape[-1])
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        masked = span_mask(lengths, steps, objective.mask_prob, objective.mask_length, seed)
        mask_vector = tf.cast(self.mask_embedding, z.dtype)[tf.newaxis, tf.newaxis]
        context, embedding_sequence = self._context(
            tf.where(masked[..., tf.newaxis], mask_vector, z), lengths, training)
        temperature = objective.temperature(step)
        # The quantiser sees each step normalised (fairseq normalises the features before it too),
        # so shrinking z cannot make every code equally likely; the blocks see z as the
        # embedder will.
        quantized = self.quantizer(self.feature_norm(z), valid, temperature=temperature,
                                   training=training)
        distractors = sample_distractors(masked, objective.num_distractors,
                                         seed + tf.constant([0, 2], tf.int64))
        contrastive, accuracy = contrastive_loss(
            self.final_proj(context), self.project_q(quantized["quantized"]), masked, distractors,
            objective.logit_temperature)
        entries = float(objective.num_groups * objective.num_entries)
        diversity = (entries - quantized["perplexity"]) / entries
        loss = (contrastive + objective.diversity_weight * diversity
                + objective.feature_penalty_weight * penalty)
        return {"loss": loss, "contrastive_loss": contrastive, "diversity_loss": diversity,
                "feature_penalty": penalty, "accuracy": accuracy,
                "perplexity": quantized["perplexity"],
                "code_perplexity": quantized["code_perplexity"], "temperature": temperature
                }, embedding_sequence

    def set_teacher_standardization(self, mean, scale):
        """Records the per-dimension (mean, scale) the teacher's targets were standardised by."""
        self.teacher_mean.assign(mean)
        self.teacher_scale.assign(scale)

    @property
    def teacher_standardization(self) -> tuple:
        """(mean, scale) of `set_teacher_standardization`."""
        return self.teacher_mean.numpy(), self.teacher_scale.numpy()

    def _log(self, values) -> dict:
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        inputs = data[0] if isinstance(data, (tuple, list)) else data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            values = self.objective_values(inputs, self.optimizer.iterations, training=True)
            # Gradients are summed over replicas: each replica's mean loss counts 1 / replicas.
            loss = self.optimizer.scale_loss(values["loss"] / replicas)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._log(values)

    def test_step(self, data):
        inputs = data[0] if isinstance(data, (tuple, list)) else data
        return self._log(self.objective_values(inputs, 0, training=False))   # the same masks

    def build_from_batch(self, inputs):
        """Creates the weights from one batch (a subclassed model is built by calling it)."""
        self.objective_values(inputs, 0, training=False)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "config": dataclasses.asdict(self.config),
                "objective": dataclasses.asdict(self.objective), "seed": self.seed,
                "teacher_dim": self.teacher_dim, "contrastive": self.contrastive,
                "distillation_weight": self.distillation_weight}


ENCODER_LAYERS = ("feature_encoder", "subsampling")


def encoder_weights(pretrainer: Wav2Vec2Pretrainer, encoder: keras.Model, output_layer: int):
    """Copies the pre-trained feature encoder, subsampling and blocks 1..`output_layer` into
    `encoder`, a model holding layers of the same names (`conformer.build_conformer_encoder`)."""
    names = ENCODER_LAYERS + tuple(f"block{index + 1}" for index in range(output_layer))
    layers = {layer.name: layer for layer in pretrainer.layers}
    for name in names:
        encoder.get_layer(name).set_weights(layers[name].get_weights())
