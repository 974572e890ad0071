#!/usr/bin/env python3
r"""Pre-trains the section 2.2 Conformer on unlabelled audio: with wav2vec 2.0 (Baevski et al.,
2020), by distillation from a teacher embedder (TRILLsson's recipe, Shor & Venugopalan, 2022), or both.

  bin/pretrain --data_dir=../shared/data/emogator --output_dir=runs/pretrain_small
  bin/pretrain --audio=/recordings/bursts,/more/bursts --config=small --steps=20000 \
      --output_dir=runs/pretrain_bursts --max_minutes=60
  bin/pretrain --data_dir=../shared/data/emogator --teacher=../shared/models/yamnet_hub \
      --output_dir=runs/distil_yamnet
  bin/export_embedder --weights=runs/pretrain_small --output_dir=/models/bursts_small
  bin/train --model=conformer_autopool --embedder=/models/bursts_small --data_dir=...

Every clip of --data_dir (all splits; labels are never read) or of a prepared TFRecord directory,
and of the --audio files and folders, is used. Started again with the same flags, an interrupted run
(a kill, or --max_minutes) goes on from its last finished epoch.
"""

import dataclasses
import os
import types

from absl import flags

if __package__:  # installed: vb_pretrain
    from . import choices, common_flags
else:            # a checkout: bin/pretrain
    import choices
    import common_flags

from vb_keras.errors import UserInputError

_DEFAULTS = types.SimpleNamespace(**choices.PRETRAINING_DEFAULTS)
_OBJECTIVE = types.SimpleNamespace(**choices.WAV2VEC2_DEFAULTS)

# Audio.
flags.DEFINE_string("data_dir", None, "A HUME-VB- or A-VB-layout data directory (every split's "
                    "audio; labels unused) or a directory written by bin/prepare_data.")
common_flags.define_path_list("audio", "Audio files and folders (searched recursively), with or "
                              "instead of --data_dir.")
common_flags.define_on_bad_audio_flag()
# Model and objective (wav2vec 2.0 BASE defaults, Baevski et al., 2020, section 4.2).
flags.DEFINE_enum("config", _DEFAULTS.config, choices.CONFORMER_CONFIGS,
                  "Conformer configuration (small: 4 x 144, CPU-sized; cap12: section 2.2's 24 x 1024).")
flags.DEFINE_float("mask_prob", _OBJECTIVE.mask_prob, "Share of steps that start a masked span.")
flags.DEFINE_integer("mask_length", _OBJECTIVE.mask_length, "Steps (40 ms each) per masked span.",
                     lower_bound=1)
flags.DEFINE_integer("num_distractors", _OBJECTIVE.num_distractors,
                     "Distractors per masked step, from the same clip.", lower_bound=1)
flags.DEFINE_integer("codebook_groups", _OBJECTIVE.num_groups, "Quantiser codebooks (G).",
                     lower_bound=1)
flags.DEFINE_integer("codebook_entries", _OBJECTIVE.num_entries, "Entries per codebook (V).",
                     lower_bound=1)
flags.DEFINE_float("codebook_logit_std", _OBJECTIVE.quantizer_logit_std, "Spread (standard "
                   "deviation) of the quantiser's logits at initialisation; fairseq's weights give "
                   "about 12 on the small Conformer, which collapsed the codebook on EmoDB.",
                   lower_bound=0.001)
flags.DEFINE_float("diversity_weight", _OBJECTIVE.diversity_weight, "Weight of the codebook "
                   "diversity loss.", lower_bound=0)
flags.DEFINE_float("feature_penalty_weight", _OBJECTIVE.feature_penalty_weight, "Weight of the "
                   "feature penalty.", lower_bound=0)
# Optimisation.
flags.DEFINE_integer("steps", _DEFAULTS.steps, "Optimiser updates in all.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Crops per update (global).",
                     lower_bound=1)
flags.DEFINE_float("clip_seconds", None, "Crop length in seconds. Default: 4, or with --teacher "
                   "2.5 (the windows the conformer heads read).")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate (AdamW).",
                   lower_bound=0)
flags.DEFINE_float("warmup_share", _DEFAULTS.warmup_share, "Share of the steps warming up the "
                   "learning rate linearly; cosine decay follows.")
flags.DEFINE_float("max_minutes", _DEFAULTS.max_minutes, "Stop after the first epoch that ends "
                   "past this many minutes (0: no limit); run again to go on.", lower_bound=0)
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seeds weights, crops, masks and distractors.",
                     lower_bound=0)
flags.DEFINE_bool("mixed_bfloat16", False, "Compute in bfloat16 (CPUs with AVX512_BF16, TPUs).")
# Distillation (Shor & Venugopalan, 2022).
flags.DEFINE_string("teacher", "", "A TF-Hub-style embedder to distil (a SavedModel directory, a TF "
                    "Hub / Kaggle handle or URL): the Conformer learns to reproduce its embedding "
                    "of each --clip_seconds window of the audio.")
flags.DEFINE_enum("method", _DEFAULTS.method, choices.PRETRAINING_METHODS, "wav2vec2, distillation "
                  "(needs --teacher), both (the losses added), or auto: distillation with "
                  "--teacher, wav2vec2 without.")
flags.DEFINE_float("distillation_weight", _DEFAULTS.distillation_weight, "Weight of the "
                   "distillation loss beside wav2vec 2.0's (--method=both).", lower_bound=0)
# Distribution, output and extensions.
flags.DEFINE_enum("strategy", "auto", choices.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu (or auto).")
flags.DEFINE_string("output_dir", None, "Output directory. Default: runs/<data>_pretrain_<config>, "
                    "<data> the name of --data_dir's directory (or of the first --audio).")
flags.DEFINE_list("callbacks", [], "Extra Keras callbacks, as importable module.Class names "
                  "constructed with no arguments.")
common_flags.define_trust_flag()   # (for --teacher)
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def _params():
    """PretrainingParams from the flags."""
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.training import pretraining, wav2vec2
    objective = dataclasses.replace(
        wav2vec2.Wav2Vec2Params(), mask_prob=FLAGS.mask_prob, mask_length=FLAGS.mask_length,
        num_distractors=FLAGS.num_distractors, num_groups=FLAGS.codebook_groups,
        num_entries=FLAGS.codebook_entries, quantizer_logit_std=FLAGS.codebook_logit_std,
        diversity_weight=FLAGS.diversity_weight,
        feature_penalty_weight=FLAGS.feature_penalty_weight)
    return pretraining.PretrainingParams(
        config=FLAGS.config, objective=objective, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
        clip_seconds=FLAGS.clip_seconds, learning_rate=FLAGS.learning_rate,
        warmup_share=FLAGS.warmup_share, max_minutes=FLAGS.max_minutes, seed=FLAGS.seed,
        mixed_bfloat16=FLAGS.mixed_bfloat16, teacher=FLAGS.teacher, method=FLAGS.method,
        distillation_weight=FLAGS.distillation_weight)


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.training import distribute, pretraining, trainer
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)  # first: multi-worker needs it
    try:
        params = _params()
    except ValueError as error:   # its message starts with the setting's name, the flag's
        raise UserInputError(f"--{error}") from None
    data = FLAGS.data_dir or (FLAGS.audio[0] if FLAGS.audio else None)
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", f"{common_flags.data_name(data)}_pretrain_{FLAGS.config}")
    history = pretraining.pretrain(
        output_dir, params, data_dir=FLAGS.data_dir, audio=FLAGS.audio, strategy=strategy,
        callbacks=[trainer.load_callback(spec) for spec in FLAGS.callbacks],
        on_bad_audio=FLAGS.on_bad_audio, settings={"flags": FLAGS.flags_into_string()})
    if distribute.is_chief():
        done = os.path.isfile(os.path.join(output_dir, pretraining.WEIGHTS_FILE))
        last = {name: values[-1] for name, values in history.items() if values}
        figures = ", ".join(f"{name} {last[name]:.3f}" for name in
                            ("contrastive_loss", "accuracy", "perplexity", "distillation_loss",
                             "val_distillation_loss") if name in last)
        print(f"{'pre-trained' if done else 'stopped early (run again to go on)'}: {output_dir}"
              + (f" ({figures})" if figures else ""))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
