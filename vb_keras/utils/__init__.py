"""Helpers with no modelling in them: atomic output directories, the cache location, and comparing
a run's stored settings before resuming it.
"""
