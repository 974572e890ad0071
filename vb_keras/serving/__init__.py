"""Serving: SavedModel export for TF Serving, and submission files from an exported model.
"""
