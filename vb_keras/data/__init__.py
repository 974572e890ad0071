"""Data layer: HUME-VB reader and splits, audio decoding, TFRecords, tf.data pipeline, demo data."""
