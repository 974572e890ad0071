"""The permutation test's statistics (per condition, and Welch's t-tests between conditions) and
the Markdown summary bin/permutation_test prints."""

import itertools
import math
from typing import Sequence

import numpy as np

from vb_keras.analysis.permutation.conditions import CONDITION_LABELS, CONDITIONS

# Welch's test: the conditions need not share a variance (incorrect labels may make runs more or
# less variable than true ones), and a resumed or partial run may have unequal counts. With equal
# counts Welch's t equals Student's t; only the degrees of freedom (hence p) can differ.
T_TEST = "Welch's two-sample t-test (scipy.stats.ttest_ind, equal_var=False), two-sided"


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def scores_by_condition(trials, conditions) -> dict:
    """{condition: float64 array of its trials' Val mean CCC}."""
    return {condition: np.array([t["val_mean_ccc"] for t in trials
                                 if t["condition"] == condition], np.float64)
            for condition in conditions}


def summarize(trials: Sequence[dict], conditions: Sequence[str] = CONDITIONS) -> dict:
    """Per condition n, mean and std (ddof=1) of the Val mean CCC; for every pair of conditions
    Welch's two-sample t-test (t > 0: the first condition scored higher; None where a side has
    fewer than 2 trials or neither varies); the mean shares of correct labels after shuffling."""
    from scipy import stats
    scores = scores_by_condition(trials, conditions)
    per_condition = {}
    for condition, values in scores.items():
        per_condition[condition] = {
            "n": int(len(values)),
            "mean": _finite_or_none(values.mean()) if len(values) else None,
            "std": _finite_or_none(values.std(ddof=1)) if len(values) > 1 else None,
            "min": _finite_or_none(values.min()) if len(values) else None,
            "max": _finite_or_none(values.max()) if len(values) else None}
    t_tests = {}
    for first, second in itertools.combinations(conditions, 2):
        a, b = scores[first], scores[second]
        t = p = df = None
        if len(a) > 1 and len(b) > 1:
            with np.errstate(all="ignore"):
                result = stats.ttest_ind(a, b, equal_var=False)
            t, p = _finite_or_none(result.statistic), _finite_or_none(result.pvalue)
            df = _finite_or_none(result.df)
        t_tests[f"{first}_vs_{second}"] = {"first": first, "second": second, "t": t, "p": p,
                                           "df": df}
    shuffled = [t for t in trials if t["condition"] == "shuffled"]
    shares = {
        "trials": len(shuffled),
        "class": float(np.mean([t["share_class_correct"] for t in shuffled])) if shuffled else None,
        "age": float(np.mean([t["share_age_correct"] for t in shuffled])) if shuffled else None}
    return {"conditions": per_condition, "t_test": T_TEST, "t_tests": t_tests,
            "shuffled_share_correct": shares}


def _number(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def summary_text(summary: dict) -> str:
    """Markdown tables of the conditions and the t-tests, and the shares kept by shuffling."""
    lines = ["| Condition | n | Val mean CCC (mean ± std) | min | max |", "|---|---|---|---|---|"]
    for condition, row in summary["conditions"].items():
        lines.append(f"| {CONDITION_LABELS.get(condition, condition)} | {row['n']} | "
                     f"{_number(row['mean'])} ± {_number(row['std'])} | {_number(row['min'])} | "
                     f"{_number(row['max'])} |")
    lines += ["", f"{summary['t_test']}:", "", "| Comparison | t | df | p |", "|---|---|---|---|"]
    for test in summary["t_tests"].values():
        p = test["p"]
        lines.append(f"| {test['first']} vs {test['second']} | {_number(test['t'], 2)} | "
                     f"{_number(test['df'], 1)} | {'—' if p is None else f'{p:.3g}'} |")
    shares = summary["shuffled_share_correct"]
    if shares["trials"]:
        lines += ["", f"After shuffling, on average {100 * shares['class']:.1f}% of the training "
                      f"clips kept a correct class and {100 * shares['age']:.1f}% a correct age "
                      f"({shares['trials']} trials)."]
    return "\n".join(lines)
