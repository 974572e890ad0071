"""Shared by the permutation test's test modules: a small synthetic data set and trial records."""

import numpy as np
import pandas as pd

from vb_keras.analysis.permutation import arrays, conditions
from vb_keras.data import exvo
from vb_keras.schema import LabelSchema

EMOTIONS = ("Joy", "Fear")
SCHEMA = LabelSchema(emotion_columns=EMOTIONS, class_column="Country", age_column="Age")
DIM = 8


def synthetic_data(num_train=40, num_val=16, seed=0):
    """A table and window embeddings (1-3 windows of DIM) where emotions follow the embeddings."""
    rng = np.random.default_rng(seed)
    rows, sequences = [], {}
    for index in range(num_train + num_val):
        file_id = f"clip{index:03d}"
        sequence = rng.normal(size=(int(rng.integers(1, 4)), DIM)).astype(np.float32)
        sequences[file_id] = sequence
        joy = 1 / (1 + np.exp(-sequence.mean(axis=0)[0] * 3))
        rows.append({"File_ID": file_id, "Split": "Train" if index < num_train else "Val",
                     "Subject_ID": f"s{index % 7}", "Joy": joy, "Fear": 1 - joy,
                     "Country": str(index % 3), "Age": float(20 + index % 9),
                     exvo.LABELLED: True})
    table = pd.DataFrame(rows)
    return table, SCHEMA.with_classes(["0", "1", "2"]), sequences


def permutation_data() -> arrays.PermutationData:
    table, schema, sequences = synthetic_data()
    return arrays.data_from_sequences(table, schema, sequences)


def synthetic_trials(seed=0):
    rng = np.random.default_rng(seed)
    means = {"true": 0.60, "shuffled": 0.60, "incorrect": 0.58}
    return [{"condition": c, "trial": k, "val_mean_ccc": float(rng.normal(means[c], 0.01)),
             "share_class_correct": 0.25 if c == "shuffled" else 1.0,
             "share_age_correct": 0.05 if c == "shuffled" else 1.0}
            for c in conditions.CONDITIONS for k in range(50)]
