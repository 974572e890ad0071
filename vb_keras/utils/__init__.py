"""Helpers with no modelling in them: atomic output directories and the cache location.
"""
