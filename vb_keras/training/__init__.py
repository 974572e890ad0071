"""Training a task model: the trainer, its callbacks and the distribution strategies.
"""
