"""Figure 1 of section 3.1: the density of the Val mean CCC of each condition."""

from typing import Sequence

import numpy as np

from vb_keras.analysis.permutation.conditions import CONDITION_LABELS, CONDITIONS
from vb_keras.analysis.permutation.summary import scores_by_condition
from vb_keras.evaluation import plots

# Figure 1's line styles.
CONDITION_STYLES = {"true": {"color": "tab:green", "linestyle": "--"},
                    "shuffled": {"color": "tab:blue", "linestyle": ":"},
                    "incorrect": {"color": "tab:orange", "linestyle": "-"}}


def write_density_plot(trials: Sequence[dict], path, title: str = "") -> str:
    """Figure 1: a Gaussian KDE of the Val mean CCC of each condition (true: green dashed,
    shuffled: blue dotted, incorrect: orange solid), with a rug of the single trials."""
    groups = []
    for condition, values in scores_by_condition(trials, CONDITIONS).items():
        values = values[np.isfinite(values)]
        if len(values):
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            groups.append((f"{CONDITION_LABELS[condition]}: {values.mean():.3f} ± {std:.3f} "
                           f"(n={len(values)})", values, CONDITION_STYLES[condition]))
    return plots.write_densities(
        groups, path, title or "Permutation test: class and age as inputs (section 3.1)",
        xlabel="emotion mean CCC (Val)")
