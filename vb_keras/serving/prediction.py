"""Predictions of an exported SavedModel for many clips, written in the ExVo submission format.

The CSV has `File_ID,<class column>,Age,` then one column per emotion (the ExVo MultiTask submission
layout: `File_ID,Country,Age,Awe,...` for HUME-VB). Clips are sent to the model's `serving_default`
signature in batches of similar length; whatever cannot be decoded is reported by name and skipped.
"""

import logging
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.data import pipeline
from vb_keras.errors import UserInputError
from vb_keras.keys import CLASS_NAME, NUM_SAMPLES, SIGNATURE, WAVEFORM
from vb_keras.serving import export
from vb_keras.utils import atomic, model_safety
from vb_keras.utils import progress as progress_bars
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema


class ExportedModel:
    """An exported vb_keras SavedModel: its signature, emotion and class names, and schema."""

    def __init__(self, path, flag: str = "--saved_model"):
        self.path = export.latest_version(path, flag)
        # A foreign model: refused if what it runs touches files, processes or the network.
        model_safety.check_saved_model(self.path, flag)
        self.emotions, self.classes = export.load_names(self.path)
        info_path = os.path.join(self.path, export.EXPORT_INFO)
        self.schema = None
        self.data_dir = None   # the data the models were trained on, where the export says
        if os.path.isfile(info_path):
            info = atomic.read_json(info_path, "the export's description")
            self.schema = LabelSchema(**info["schema"])
            self.data_dir = info.get("data_dir")
        self._loaded, self._signature = _load_serving_signature(self.path, flag)

    def __call__(self, clips) -> dict:
        """float32 clips (16 kHz, [-1, 1]) -> {task: numpy outputs}, one padded batch."""
        outputs = self._signature(**{key: tf.constant(value)
                                     for key, value in export.padded_batch(clips).items()})
        return {task: value.numpy() for task, value in outputs.items()}


def _load_serving_signature(path, flag) -> tuple:
    """(the loaded SavedModel at `path`, its `serving_default` signature), checked to take
    bin/export's inputs and give its outputs; one line naming `flag` otherwise."""
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # pylint: disable=broad-except  (any load failure is bad input)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"{flag}: cannot load the SavedModel {path}: {reason}") from None
    signature = loaded.signatures.get(SIGNATURE)
    if signature is None:
        raise UserInputError(f"{flag}: {path} has no {SIGNATURE!r} signature (it has "
                             f"{sorted(loaded.signatures) or 'none'}): not a model bin/export wrote")
    inputs = signature.structured_input_signature[1]
    if sorted(inputs) != sorted((WAVEFORM, NUM_SAMPLES)):
        raise UserInputError(f"{flag}: {path}: its {SIGNATURE} signature takes {sorted(inputs)}, "
                             f"not {WAVEFORM!r} and {NUM_SAMPLES!r} as bin/export's do")
    outputs = set(signature.structured_outputs)
    unknown = sorted(outputs - {EMOTION, COUNTRY, AGE, CLASS_NAME})
    if unknown or not outputs & {EMOTION, COUNTRY, AGE}:
        raise UserInputError(f"{flag}: {path}: its {SIGNATURE} signature returns "
                             f"{unknown or sorted(outputs)}, not the task outputs {EMOTION}, "
                             f"{COUNTRY}, {AGE} (and {CLASS_NAME})")
    return loaded, signature


def predict_clips(model: ExportedModel, clips, batch_size: int = 16, progress: bool = False
                  ) -> dict:
    """{file_id: {task: output row}} for an iterable of (file_id, float32 audio).

    Clips are sorted by length before batching, so little of each batch is padding. `progress`:
    a progress bar over the clips on stderr.
    """
    clips = sorted(clips, key=lambda item: len(item[1]))
    results = {}
    groups = (clips[start:start + batch_size] for start in range(0, len(clips), batch_size))
    for group in (progress_bars.track(groups, len(clips), len, label="predicting") if progress
                  else groups):
        outputs = model([audio for _, audio in group])
        for row, (file_id, _) in enumerate(group):
            results[file_id] = {task: value[row] for task, value in outputs.items()}
    return results


def predict_split(model: ExportedModel, data_dir, table: pd.DataFrame, schema: LabelSchema,
                  split: str, on_bad_audio: str, report_dir, batch_size: int = 16,
                  progress: bool = True) -> dict:
    """`predict_clips` over the clips of `split` in `data_dir` (keyed by the table's File_ID);
    unusable clips are skipped (listed in `report_dir`'s bad_audio.csv) or fail, `on_bad_audio`."""
    clips = [(clip["file_id"].decode(), clip["audio"] / 32768.0) for clip in
             pipeline.read_clips(data_dir, schema, split, on_bad_audio, report_dir,
                                 table=table).as_numpy_iterator()]
    return predict_clips(model, clips, batch_size, progress=progress)


def stacked_outputs(results: dict, tasks) -> tuple:
    """(sorted file ids, {task: [N, ...] array}) of `predict_clips`'s results, for scoring."""
    ids = sorted(results)
    return ids, {task: np.stack([results[file_id][task] for file_id in ids]) for task in tasks}


def summary_text(model: ExportedModel, results: dict, class_column: str = "Country",
                 top: int = 3) -> str:
    """A table for the terminal: per clip, the most probable class (and the runner-up, with
    their probabilities), the age, and the `top` strongest emotions with their intensities."""
    header, rows = ["File_ID"], []
    for file_id in sorted(results):
        outputs, row = results[file_id], [file_id]
        if COUNTRY in outputs:
            ranked = np.argsort(-outputs[COUNTRY])[:2]
            row.append(", ".join(f"{model.classes[i]} {outputs[COUNTRY][i]:.2f}" for i in ranked))
        if AGE in outputs:
            row.append(f"{float(outputs[AGE][0]):.1f}")
        if EMOTION in outputs and top:
            ranked = np.argsort(-outputs[EMOTION])[:top]
            row.append(", ".join(f"{model.emotions[i]} {outputs[EMOTION][i]:.2f}" for i in ranked))
        rows.append(row)
    tasks = results[next(iter(results))] if results else {}
    if COUNTRY in tasks:
        header.append(f"{class_column} (probability)")
    if AGE in tasks:
        header.append("Age")
    if EMOTION in tasks and top:
        header.append("strongest emotions (intensity)")
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
             for line in [header, *rows]]
    return "\n".join(lines)


def submission_table(model: ExportedModel, results: dict, class_column: str = "Country",
                     id_format: str = "{}") -> pd.DataFrame:
    """The ExVo submission rows: File_ID, the most probable class, age, then the emotions (only
    the columns of the tasks the model has outputs for: e.g. no Age for data without age labels)."""
    rows = []
    for file_id in sorted(results):
        outputs = results[file_id]
        row = {"File_ID": id_format.format(file_id)}
        if COUNTRY in outputs:
            row[class_column] = model.classes[int(np.argmax(outputs[COUNTRY]))]
        if AGE in outputs:
            row["Age"] = round(float(outputs[AGE][0]), 4)
        if EMOTION in outputs:
            row.update({name: round(float(value), 4)
                        for name, value in zip(model.emotions, outputs[EMOTION])})
        rows.append(row)
    tasks = set(results[next(iter(results))]) if results else {EMOTION, COUNTRY, AGE}
    columns = ["File_ID", *([class_column] if COUNTRY in tasks else []),
               *(["Age"] if AGE in tasks else []), *(model.emotions if EMOTION in tasks else [])]
    return pd.DataFrame(rows, columns=columns)


def write_outputs(table: pd.DataFrame, results: dict, model: ExportedModel, csv_path,
                  json_path=None):
    """Writes the CSV (and optionally a JSON with the class probabilities too), atomically.

    Raises:
      UserInputError: a path is a directory or cannot be written (`check_outputs`).
    """
    check_outputs(csv_path, json_path)
    atomic.write_file(csv_path, lambda stream: table.to_csv(stream, index=False))
    if json_path:
        records = {file_id: _json_record(model, out) for file_id, out in sorted(results.items())}
        atomic.write_json(json_path, {"model": model.path, "predictions": records}, indent=1)
    logging.info("wrote predictions for %d clips to %s", len(table), csv_path)


def _json_record(model: ExportedModel, outputs: dict) -> dict:
    """One clip's predictions for the JSON: the tasks the model has outputs for."""
    record = {}
    if EMOTION in outputs:
        record[EMOTION] = dict(zip(model.emotions, map(float, outputs[EMOTION])))
    if COUNTRY in outputs:
        record[COUNTRY] = dict(zip(model.classes, map(float, outputs[COUNTRY])))
    if AGE in outputs:
        record[AGE] = float(outputs[AGE][0])
    return record


def check_outputs(csv_path, json_path=None):
    """One-line errors for output paths that cannot be written (call it before the work)."""
    atomic.check_output_path(csv_path, "--output", directory=False)
    if json_path:
        atomic.check_output_path(json_path, "--output_json", directory=False)
