"""Scoring predictions: the challenge metrics, Table-1 rows, the naive baseline, ensembles,
speaker-bootstrap intervals and the evaluation figures.
"""
