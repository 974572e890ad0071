"""The permutation test's statistics and Markdown summary (summary)."""

import json

import numpy as np
import pytest
from scipy import stats

from conftest import run_main
from permutation_fixtures import synthetic_trials
from vb_keras.analysis.permutation import conditions, summary as summary_module


def test_summary_has_ddof1_stds_welch_t_tests_and_shares():
    trials = synthetic_trials()
    summary = summary_module.summarize(trials)
    scores = {c: np.array([t["val_mean_ccc"] for t in trials if t["condition"] == c])
              for c in conditions.CONDITIONS}
    for condition, values in scores.items():
        row = summary["conditions"][condition]
        assert row["n"] == 50 and row["mean"] == pytest.approx(values.mean())
        assert row["std"] == pytest.approx(values.std(ddof=1))
    assert set(summary["t_tests"]) == {"true_vs_shuffled", "true_vs_incorrect",
                                       "shuffled_vs_incorrect"}
    welch = stats.ttest_ind(scores["true"], scores["incorrect"], equal_var=False)
    test = summary["t_tests"]["true_vs_incorrect"]
    assert test["t"] == pytest.approx(welch.statistic) and test["p"] == pytest.approx(welch.pvalue)
    assert test["t"] > 5 and test["p"] < 0.01
    assert summary["t_tests"]["true_vs_shuffled"]["p"] > 0.01
    assert "equal_var=False" in summary["t_test"]
    assert summary["shuffled_share_correct"] == {"trials": 50, "class": pytest.approx(0.25),
                                                 "age": pytest.approx(0.05)}
    text = summary_module.summary_text(summary)
    assert "| true distribution | 50 |" in text and "| true vs incorrect |" in text
    assert "25.0% of the training clips kept a correct class and 5.0% a correct age" in text
    json.dumps(summary, allow_nan=False)


def test_summary_of_too_few_or_constant_trials_has_no_t():
    trials = [{"condition": "true", "trial": k, "val_mean_ccc": 0.5, "share_class_correct": 1.0,
               "share_age_correct": 1.0} for k in range(3)]
    trials.append({"condition": "incorrect", "trial": 0, "val_mean_ccc": 0.4,
                   "share_class_correct": 0.0, "share_age_correct": 0.0})
    summary = summary_module.summarize(trials)
    assert summary["conditions"]["true"]["std"] == 0.0
    assert summary["conditions"]["incorrect"]["std"] is None
    assert summary["conditions"]["shuffled"]["n"] == 0
    assert all(test["t"] is None for test in summary["t_tests"].values())
    assert "| true vs incorrect | — |" in summary_module.summary_text(summary)
    json.dumps(summary, allow_nan=False)


if __name__ == "__main__":
    run_main()
