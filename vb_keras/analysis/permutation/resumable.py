"""The resumable run of the permutation test: every trial of every condition, each written at once
to <output_dir>/permutation_test.json, so a killed run resumes where it stopped."""

import dataclasses
import json
import logging
import os
from typing import Callable, Sequence

from vb_keras.analysis.permutation import training
from vb_keras.analysis.permutation.arrays import PermutationData
from vb_keras.analysis.permutation.conditions import CONDITIONS, check_conditions, trial_seed
from vb_keras.analysis.permutation.summary import summarize
from vb_keras.errors import UserInputError
from vb_keras.models import heads
from vb_keras.utils import atomic, resume

RESULT_FILE = "permutation_test.json"
PLOT_FILE = "permutation_test.png"
# Settings that may change between a run and its resumption: more trials or other conditions only
# add trials; everything else must match for finished trials to be comparable.
_RESUMABLE_SETTINGS = ("trials", "conditions")


def _load_previous(path, settings: dict, output_dir) -> list:
    """The finished trials of a previous run in `path` with the same settings, or []."""
    if not os.path.isfile(path):
        return []
    try:
        with open(path) as stream:
            previous = json.load(stream)
    except (OSError, ValueError) as error:
        raise UserInputError(f"{path}: not a readable permutation test ({error}); pick another "
                             "--output_dir") from None
    old = previous.get("settings", {})
    compared = (set(old) | set(settings)) - set(_RESUMABLE_SETTINGS)
    differing = resume.differing_keys(old, settings, compared)
    if differing:
        raise UserInputError(f"--output_dir: {output_dir} holds a permutation test with other "
                             f"settings ({', '.join(differing)}); pick another --output_dir")
    return list(previous.get("trials", []))


def run(output_dir, data: PermutationData, head: str = "conformer", trials: int = 50,
        conditions: Sequence[str] = CONDITIONS, epochs: int = 30, batch_size: int = 128,
        learning_rate: float = 3e-4, seed: int = 0, settings: dict | None = None,
        on_trial: Callable[[dict, int, int], None] | None = None) -> dict:
    """Runs `trials` trials of each condition (section 3.1), resuming a previous run.

    Every finished trial is written at once to `<output_dir>/permutation_test.json` (atomically), so
    a killed run started again reuses its finished trials; trials run interleaved across conditions
    (trial 0 of each, then trial 1, ...) so a stopped run still has comparable groups.

    Args:
      output_dir: where permutation_test.json goes.
      data: `data_from_sequences`.
      head: a conformer head (`heads.HEADS`); the paper used "a Conformer-based model".
      trials: per condition (the paper: 50).
      conditions: some of CONDITIONS.
      epochs, batch_size, learning_rate: training of each trial (Adam, epsilon 1e-8, section 2.2).
      seed: base seed; each trial's seed is `trial_seed(seed, condition, trial)`.
      settings: what identifies the data (data dir, embedder, window, ...), recorded and, with the
        training settings, compared on resumption (a mismatch is refused). More trials or other
        conditions may be asked for when resuming.
      on_trial: called with (trial record, trials done, trials requested) after every new trial.

    Returns:
      The JSON document: {"settings", "trials" (all finished, also beyond `trials`), "summary" (of
      the requested conditions' first `trials` trials)}.
    """
    heads.check_head_name(head)
    conditions = check_conditions(conditions)
    if trials < 1 or epochs < 1 or batch_size < 1:
        raise UserInputError(f"--trials, --epochs and --batch_size must be >= 1, got {trials}, "
                             f"{epochs}, {batch_size}")
    settings = {**(settings or {}), "head": head, "epochs": int(epochs),
                "batch_size": int(batch_size), "learning_rate": float(learning_rate),
                "adam_epsilon": training.ADAM_EPSILON, "seed": int(seed), "trials": int(trials),
                "conditions": list(conditions),
                "schema": dataclasses.asdict(data.schema),
                "train_clips": len(data.train), "val_clips": len(data.val),
                "embedding_dim": data.embedding_dim,
                "extra_inputs": f"one-hot {data.schema.class_column} ({data.num_classes}) + "
                                f"{data.schema.age_column} standardised by the Train mean and std",
                "age_mean": data.age_mean, "age_std": data.age_std,
                "score": "Val mean CCC after the final epoch (true class and age on Val)"}
    # As the JSON file holds them (tuples become lists), so a resumption compares like with like.
    settings = json.loads(json.dumps(settings, default=atomic.jsonable))
    with atomic.owned_directory(output_dir, "--output_dir"):   # one writer at a time
        path = os.path.join(output_dir, RESULT_FILE)
        finished = _load_previous(path, settings, output_dir)
        done = {(t["condition"], t["trial"]) for t in finished}
        reused = sum((c, k) in done for c in conditions for k in range(trials))
        if reused:
            logging.info("%s: reusing %d finished trial(s)", path, reused)

        def document():
            wanted = requested_trials(finished, conditions, trials)
            order = {c: i for i, c in enumerate(CONDITIONS)}
            finished.sort(key=lambda t: (order[t["condition"]], t["trial"]))
            return {"settings": settings, "trials": finished,
                    "summary": summarize(wanted, conditions)}

        total, count = trials * len(conditions), reused
        result = document()
        for trial in range(trials):
            for condition in conditions:
                if (condition, trial) in done:
                    continue
                record = training.train_and_score(data, condition,
                                                  trial_seed(seed, condition, trial), head,
                                                  epochs, batch_size, learning_rate)
                record = {"condition": condition, "trial": trial, **record}
                finished.append(record)
                done.add((condition, trial))
                result = document()
                # After every trial: a killed run loses one at most.
                atomic.write_json(path, result)
                count += 1
                if on_trial is not None:
                    on_trial(record, count, total)
        if count == reused:   # nothing ran: still write, as fewer trials change the summary
            atomic.write_json(path, result)
        return result


def requested_trials(trials: Sequence[dict], conditions: Sequence[str], num_trials: int) -> list:
    """The trials of a run's JSON that a call asked for (the file may hold more, from a larger
    earlier call)."""
    return [t for t in trials if t["condition"] in conditions and t["trial"] < num_trials]
