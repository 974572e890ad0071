"""The values the programs' flags offer and default to, as plain Python.

`--help` must not import TensorFlow (seconds, and start-up lines on stderr), but the library
modules that own these values do. So the flag definitions read them here, and
`tests/bin_test.py::test_the_flag_choices_are_the_librarys` checks every one against its owner:
a value changed there (a new split scheme, say) fails that test until it is changed here too.
The programs still ask the library at run time. The model families' flags are not copied: the
training programs read them from `vb_keras.families` (bin/training_flags.py), importing TensorFlow
quietly for their --help.
"""

# vb_keras.data.exvo
SPLITS = ("Train", "Val", "Test")
SPLIT_SCHEMES = ("official", "paper")
SPLIT_DEFAULTS = {"split_scheme": "official", "moved_val_speakers": 250, "split_seed": 0}
# vb_keras.data.avb
AVB_TASKS = ("high", "two", "culture", "type")
# vb_keras.models.heads.HEADS, vb_keras.models.conformer.CONFORMER_CONFIGS
HEADS = ("conformer", "conformer_autopool", "conformer_fc", "conformer_lstm", "conformer_netvlad")
CONFORMER_CONFIGS = ("cap12", "small")
# vb_keras.training.distribute
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# vb_keras.training.pretraining.PretrainingParams and its wav2vec2.Wav2Vec2Params (the fields
# bin/pretrain has flags for)
PRETRAINING_METHODS = ("auto", "wav2vec2", "distillation", "both")
PRETRAINING_DEFAULTS = {"config": "small", "steps": 5000, "batch_size": 16, "learning_rate": 5e-4,
                        "warmup_share": 0.08, "max_minutes": 0.0, "seed": 0, "method": "auto",
                        "distillation_weight": 1.0}
WAV2VEC2_DEFAULTS = {"mask_prob": 0.065, "mask_length": 10, "num_distractors": 100,
                     "num_groups": 2, "num_entries": 320, "quantizer_logit_std": 1.2,
                     "diversity_weight": 0.1, "feature_penalty_weight": 0.0}
# vb_keras.analysis.experiment, vb_keras.analysis.permutation
TABLE1_MODELS = ("resnet18", "resnet34", "resnet50", "conformer", "conformer_fc",
                 "conformer_lstm", "conformer_netvlad", "conformer_autopool")
FORMS = ("multitask", "single_task")
PERMUTATION_CONDITIONS = ("true", "shuffled", "incorrect")
