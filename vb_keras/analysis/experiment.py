"""The Table 1 runner: a grid of models, multitask and single-task, scored with confidence intervals.

Belanich et al. (2022), Table 1, compares ResNets and conformer heads, each trained multitask (MTL
"Yes": one model, three outputs) and single-task (MTL "No": one model per task, each task scored from
its own model). `run_grid` trains every run the grid needs under `<output_dir>/runs/`, predicts the
evaluation split once per run (`predictions_<split>.npz`), and writes

  table1_<split>.md / .csv / .json   the naive row first, then one row per model and form, every figure
                                     with a 95% speaker-bootstrap interval (the paper reports none);
                                     with several seeds, mean and standard deviation over the seeds;
  side_by_side_*.png                 per-emotion CCC bars, confusion matrices, age scatters and training
                                     curves of all rows (`plots.write_side_by_side`).

A killed grid resumes: finished runs are reused, an interrupted run continues from its last epoch
(`trainer.train`), and predictions are only computed for runs that have none.
"""

import dataclasses
import datetime
import logging
import os
import time
from typing import Sequence

import numpy as np
import pandas as pd

from vb_keras import tasks as vb_tasks
from vb_keras.evaluation import baseline, bootstrap, plots, scoring
from vb_keras.families import registry
from vb_keras.families.base import DataSource
from vb_keras.training import runs, trainer
from vb_keras.utils import atomic, progress
from vb_keras.utils.run_directory import RunDirectory
from vb_keras.evaluation.inference import predict_batches
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.keys import FILE_ID
from vb_keras.params import TrainingParams
from vb_keras.schema import TASKS, LabelSchema

# Table 1's models, in its order.
TABLE1_MODELS = ("resnet18", "resnet34", "resnet50", "conformer", "conformer_fc", "conformer_lstm",
                 "conformer_netvlad", "conformer_autopool")
MULTITASK, SINGLE_TASK = "multitask", "single_task"
FORMS = (MULTITASK, SINGLE_TASK)
NAIVE = "naive"


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the table: a model in one form."""
    model: str
    form: str

    @property
    def label(self) -> str:
        return f"{self.model} ({'MTL' if self.form == MULTITASK else 'single-task'})"

    @property
    def mtl(self) -> str:
        return "YES" if self.form == MULTITASK else "NO"

    def task_sets(self, tasks=TASKS) -> list:
        """The runs behind the row: one multitask model, or one single-task model per task, of
        `tasks` (the tasks the data has labels for, `LabelSchema.tasks`)."""
        tasks = tuple(tasks)
        return [tasks] if self.form == MULTITASK else [(task,) for task in tasks]


def grid_rows(models: Sequence[str], forms: Sequence[str]) -> list:
    """The table's rows: every model in every form, in the order given."""
    for model in models:
        registry.family_for(model, flag="--models")
    for form in forms:
        if form not in FORMS:
            raise UserInputError(f"--forms: {form!r} is not one of {', '.join(FORMS)}")
    if not models or not forms:
        raise UserInputError("--models/--forms: the grid is empty")
    return [Row(model, form) for model in models for form in forms]


def run_directory(output_dir, model: str, tasks, seed: int) -> str:
    return os.path.join(output_dir, "runs", f"{model}_{'_'.join(tasks)}_seed{seed}")


def recorded_run(output_dir) -> runs.TrainedRun | None:
    """A run the grid in `output_dir` has started (its config.json), or None: what data, schema
    and split a rerun of the grid continues with."""
    runs_dir = os.path.join(output_dir, "runs")
    names = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
    for name in names:
        if RunDirectory(os.path.join(runs_dir, name)).has_config():
            return runs.TrainedRun(os.path.join(runs_dir, name))
    return None


def run_grid(data_dir, table: pd.DataFrame, schema: LabelSchema, output_dir,
             rows: Sequence[Row], params_for_model, seeds: Sequence[int], split: str = "Val",
             num_resamples: int = 1000, confidence: float = 0.95, on_bad_audio: str = "skip",
             settings: dict | None = None) -> dict:
    """Trains (or reuses) every run of the grid, scores each row and writes the table and figures.

    Args:
      data_dir, table, schema: the data set (`exvo.read_and_split`, classes fitted).
      output_dir: the grid's folder; finished runs in it are reused.
      rows: from `grid_rows`.
      params_for_model: model name -> TrainingParams (model set; tasks and seed are set per run).
      seeds: one training run per row and seed; each row uses the same seeds, so rows are paired.
      split: the labelled split the table scores (Table 1: Val).
      num_resamples, confidence: the speaker bootstrap.
      settings: extra values recorded in each run's config.json (e.g. the command line).

    Returns:
      {"rows": [...], "markdown": str, "paths": [...]} as also written to table1_<split>.json.
    """
    if not seeds:
        raise UserInputError("--seeds: at least one seed is needed")
    split_rows = exvo.select_split(table, schema, split)
    if split_rows.empty:
        raise UserInputError(f"--split: {data_dir} has no {split} clips")
    scoring.labels_from_table(split_rows, schema)   # refuses an unlabelled split up front
    with atomic.owned_directory(output_dir, "--output_dir"):   # one writer at a time
        return _run_grid_owned(data_dir, table, schema, output_dir, rows, params_for_model, seeds,
                               split, num_resamples, confidence, on_bad_audio, settings)


def _run_grid_owned(data_dir, table, schema, output_dir, rows, params_for_model, seeds, split,
                    num_resamples, confidence, on_bad_audio, settings):
    split_rows = exvo.select_split(table, schema, split)
    predictions = {}   # (model, tasks, seed) -> {file_id: ..., task: array}
    runs = []
    for row in rows:
        row_params = params_for_model(row.model)
        runs += [(row.model, dataclasses.replace(row_params, tasks=tasks, seed=seed))
                 for seed in seeds for tasks in row.task_sets(schema.tasks)]
    model_dirs = [run_directory(output_dir, model, params.tasks, params.seed)
                  for model, params in runs]
    # The ETA: the mean time of the runs trained so far, times the runs left to train (a finished
    # run is reused in seconds).
    to_train = [not RunDirectory(path).is_finished() for path in model_dirs]
    trained_seconds = []
    for index, ((model, params), model_dir) in enumerate(zip(runs, model_dirs)):
        eta = (f" (ETA {_duration(np.mean(trained_seconds) * sum(to_train[index:]))} from "
               f"{len(trained_seconds)} trained)" if trained_seconds else "")
        logging.info("run %d of %d: %s%s", index + 1, len(runs), model_dir, eta)
        started = time.monotonic()
        predictions[(model, params.tasks, params.seed)] = _finished_run_predictions(
            data_dir, table, schema, output_dir, params, split, on_bad_audio, settings)
        if to_train[index]:
            trained_seconds.append(time.monotonic() - started)

    # Every row is scored on the same clips: those every run could read (unusable audio is left out
    # by all of them alike, but a cache may lack a clip the audio pipeline decoded).
    clip_ids = set(split_rows[schema.id_column])
    for prediction in predictions.values():
        clip_ids &= set(prediction["file_id"])
    scored = split_rows[split_rows[schema.id_column].isin(clip_ids)].sort_values(schema.id_column)
    if len(scored) < len(split_rows):
        logging.warning("%d of %d %s clips lack a prediction from some run and are left out",
                        len(split_rows) - len(scored), len(split_rows), split)
    y_true = scoring.labels_from_table(scored, schema)
    speakers = scored[schema.speaker_column].to_numpy(str)
    ids = scored[schema.id_column].to_numpy(str)

    naive = baseline.naive_predictions(
        baseline.fit_naive(exvo.select_split(table, schema, "Train"), schema), len(ids))
    naive_result = scoring.evaluate(y_true, naive, schema, split)
    results = [_score(NAIVE, "—", y_true, [naive], naive_result, speakers, num_resamples,
                      confidence)]
    entries = [plots.PlotEntry("naive", naive_result, y_true, naive)]
    for row in rows:
        per_seed = [_row_predictions(row, seed, predictions, ids, schema.tasks) for seed in seeds]
        first = scoring.evaluate(y_true, per_seed[0], schema, split)
        results.append(_score(row.label, row.mtl, y_true, per_seed, first, speakers,
                              num_resamples, confidence, model=row.model, form=row.form))
        history = None
        if row.form == MULTITASK:
            history = plots.read_history(run_directory(output_dir, row.model, schema.tasks,
                                                       seeds[0]))
        # The figures show the first seed's predictions (the table has every seed).
        entries.append(plots.PlotEntry(row.label, first, y_true, per_seed[0], history))

    markdown = table_markdown(results, schema, split, len(set(speakers)), len(ids), seeds,
                              num_resamples, confidence)
    paths = [atomic.write_text(os.path.join(output_dir, f"table1_{split}.md"), markdown),
             _write_csv(os.path.join(output_dir, f"table1_{split}.csv"), results)]
    summary = {"split": split, "n_clips": len(ids), "n_speakers": len(set(speakers)),
               "seeds": list(seeds), "num_resamples": num_resamples, "confidence": confidence,
               "rows": results, "markdown": markdown}
    paths.append(atomic.write_json(os.path.join(output_dir, f"table1_{split}.json"), summary))
    paths += plots.write_side_by_side(entries, schema.classes, output_dir, split)
    summary["paths"] = paths
    return summary


def _duration(seconds) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def _finished_run_predictions(data_dir, table, schema, output_dir, params: TrainingParams, split,
                              on_bad_audio, settings) -> dict:
    """Trains the run unless it is finished, then returns its predictions of `split` (cached)."""
    params = trainer.resolved_params(params)   # as the run records them (the family's batch)
    model_dir = run_directory(output_dir, params.model, params.tasks, params.seed)
    if RunDirectory(model_dir).is_finished():
        changed = trainer.differing_settings(model_dir, params, schema, table, data_dir)
        if changed:
            raise UserInputError(f"--output_dir: {model_dir} was trained with other settings "
                                 f"({', '.join(changed)}); pick another --output_dir or the same "
                                 "flags")
        logging.info("reusing the finished run %s", model_dir)
        model = None
    else:
        logging.info("training %s", model_dir)
        model = trainer.train(data_dir, model_dir, table, schema, params, on_bad_audio=on_bad_audio,
                               settings=settings).model
    path = os.path.join(model_dir, f"predictions_{split}.npz")
    if os.path.isfile(path):
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    if model is None:
        model = runs.TrainedRun.finished(model_dir).model
    reader = registry.split_reader(params, DataSource(data_dir, table, schema, on_bad_audio,
                                                      model_dir))
    logging.info("predicting %s with %s", split, model_dir)
    batches = progress.track(reader.batches(split, training=False, keep_ids=True),
                             reader.clip_count(split), size=lambda batch: len(batch[0][FILE_ID]),
                             label=f"predicting {split} with {os.path.basename(model_dir)}")
    _, y_pred, ids = predict_batches(model, batches)
    prediction = {"file_id": np.asarray(ids, str), **y_pred}
    _write_npz(path, prediction)
    return prediction


def _row_predictions(row: Row, seed: int, predictions: dict, ids, tasks=TASKS) -> dict:
    """The row's predictions of each task, in the order of `ids`: every task from the run that
    trained it (one multitask run, or the task's single-task run)."""
    combined = {}
    for tasks in row.task_sets(tasks):
        prediction = predictions[(row.model, tasks, seed)]
        position = {file_id: i for i, file_id in enumerate(prediction["file_id"])}
        order = np.array([position[file_id] for file_id in ids])
        for task in tasks:
            combined[task] = prediction[task][order]
    return combined


def _score(label, mtl, y_true, y_preds, first: scoring.EvaluationResult, speakers,
           num_resamples, confidence, model=NAIVE, form="") -> dict:
    """A table row: bootstrap intervals over every seed's predictions, and the per-emotion CCCs
    of `first` (the first seed's evaluation) for the JSON; the table keeps Table 1's columns."""
    intervals = bootstrap.bootstrap(y_true, y_preds, speakers, num_resamples=num_resamples,
                                    seed=0, confidence=confidence)
    return {"label": label, "model": model, "form": form, "mtl": mtl, "seeds": len(y_preds),
            # (None: a task the data has no labels for)
            **{figure: intervals[figure] and intervals[figure].to_dict()
               for figure in vb_tasks.FIGURES},
            "ccc_per_emotion": first.ccc_per_emotion}




def table_markdown(results, schema: LabelSchema, split, num_speakers, num_clips, seeds,
                   num_resamples, confidence) -> str:
    """Table 1's layout; every cell `estimate [low, high]`, with `± std` over seeds when several."""
    lines = scoring.table_header(schema).splitlines()
    for result in results:
        cells = [_cell(result[figure], len(seeds)) for figure in vb_tasks.FIGURES]
        lines.append(f"| {result['label']} | {result['mtl']} | {' | '.join(cells)} |")
    note = (f"\n{split}: {num_clips} clips of {num_speakers} speakers. Brackets: {confidence:.0%} "
            f"percentile intervals from {num_resamples} bootstrap resamples of the speakers.")
    caveat = bootstrap.few_speakers_caveat(num_speakers)
    if caveat:
        note += " " + caveat
    if len(seeds) > 1:
        note += f" Each model row is the mean ± standard deviation over seeds {list(seeds)}."
    return "\n".join(lines) + "\n" + note + "\n"


def _cell(interval: dict, num_seeds: int) -> str:
    if interval is None:   # a task the data has no labels for
        return "—"
    spread = f" ± {interval['std']:.3f}" if num_seeds > 1 else ""
    return f"{interval['estimate']:.3f}{spread} [{interval['low']:.3f}, {interval['high']:.3f}]"


def _write_csv(path, results) -> str:
    records = []
    for result in results:
        record = {key: result[key] for key in ("label", "model", "form", "mtl", "seeds")}
        for figure in vb_tasks.FIGURES:
            for part in ("estimate", "low", "high", "std"):
                record[f"{figure}_{part}"] = (result[figure][part] if result[figure] is not None
                                              else None)   # empty: no labels for the task
        records.append(record)
    return atomic.write_text(path, pd.DataFrame(records).to_csv(index=False, float_format="%.6f"))


def _write_npz(path, arrays: dict) -> str:
    return atomic.write_file(path, lambda stream: np.savez(stream, **arrays), binary=True)
