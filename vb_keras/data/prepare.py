"""Writing a data set once as sharded TFRecords (bin/prepare_data): decode, resample, store.

The output appears whole or not at all (`atomic.atomic_directory`): an interrupted run leaves nothing
that looks prepared, and running it again starts over.
"""

import logging
import math
import os
import pandas as pd
import tensorflow as tf

from vb_keras.utils.atomic import atomic_directory
from vb_keras.data import exvo, loading, tfrecord
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema

CLIPS_PER_SHARD = 1000


def prepare(table: pd.DataFrame, schema: LabelSchema, out_dir, source: str,
            splits=exvo.SPLITS, on_bad_audio="skip", workers=0, progress=True) -> dict:
    """Writes the clips of `splits` under `out_dir`; returns {split: clips written}.

    Raises:
      UserInputError: `out_dir` already holds a prepared set (or anything else), is a file, cannot be
        written, or another process is writing it; or a bad clip with on_bad_audio="fail".
    """
    if tfrecord.is_prepared(out_dir):
        raise UserInputError(f"--output_dir: {out_dir} already holds a prepared data set")
    counts, shards, bad = {}, {}, []
    # Checks out_dir (not a file, empty, writable, no other writer) before decoding anything.
    with atomic_directory(out_dir, "--output_dir") as scratch:
        for split in splits:
            rows = exvo.select_split(table, schema, split)
            shards[split] = max(1, math.ceil(len(rows) / CLIPS_PER_SHARD)) if len(rows) else 0
            skipped = len(bad)
            counts[split] = _write_split(rows, schema, scratch, split, shards[split], on_bad_audio,
                                         workers, progress, bad)
            # Counted after decoding, so the line gives the clips stored, not those listed.
            logging.info("%s: %d clips into %d shard(s)%s", split, counts[split], shards[split],
                         f" ({len(bad) - skipped} unusable skipped)" if len(bad) > skipped else "")
        loading.write_bad_audio_report(bad, scratch, final_dir=os.path.abspath(out_dir))
        _write_label_table(table, schema, bad, splits, scratch)
        tfrecord.write_info(scratch, schema, counts, source, shards)
    return counts


def _write_split(rows, schema, directory, split, num_shards, on_bad_audio, workers, progress, bad):
    if not num_shards:
        return 0
    writers = [tf.io.TFRecordWriter(tfrecord.shard_path(directory, split, i, num_shards))
               for i in range(num_shards)]
    written = 0
    try:
        for position, result in loading.decode_clips(rows, schema.id_column, on_bad_audio,
                                                     workers, progress, f"decoding {split}"):
            if isinstance(result, loading.BadClip):
                bad.append(result)
                continue
            row = rows.iloc[position]
            labelled = bool(row[exvo.LABELLED])
            writers[written % num_shards].write(tfrecord.serialize_example(
                file_id=row[schema.id_column], speaker=str(row[schema.speaker_column]),
                audio_int16=result,
                emotion=[float(row[c]) if labelled else 0.0 for c in schema.emotion_columns],
                # (A task the data has no labels for is stored empty: class "", age NaN.)
                class_value=str(row[schema.class_column]) if schema.class_column else "",
                age=(float(row[schema.age_column]) if labelled and schema.age_column
                     else float("nan")),
                labelled=labelled))
            written += 1
    finally:
        for writer in writers:
            writer.close()
    return written


def _write_label_table(table, schema, bad, splits, directory):
    """data_info.csv of the stored clips (splits as prepared), so label-only programs such as
    bin/baseline read a prepared directory like a HUME-VB one."""
    skipped = {clip.file_id for clip in bad}
    kept = table[table[schema.split_column].isin(splits) & ~table[schema.id_column].isin(skipped)]
    columns = [schema.id_column, schema.split_column, schema.speaker_column,
               *schema.label_columns]
    labels = kept[columns].copy()
    labels[schema.id_column] = "[" + labels[schema.id_column] + "]"
    labels.to_csv(os.path.join(directory, exvo.DATA_INFO), index=False, na_rep="")
