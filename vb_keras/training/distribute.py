"""tf.distribute strategies by name: the same training code runs on one CPU or many accelerators.

Build and compile the model inside `strategy.scope()`; the pipeline's batch is the global batch,
which Keras splits across the replicas.
"""

import json
import logging
import os

import tensorflow as tf

from vb_keras.errors import UserInputError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    auto: a TPU when `tpu` is given, all GPUs (mirrored) when there are several, else one device.
    one_device: the first GPU, else the CPU. mirrored: all local GPUs (or CPUs). multi_worker: the
    workers in TF_CONFIG. tpu: the TPU named by `tpu` ("" or "local" for a TPU VM).
    """
    if name not in STRATEGIES:
        raise UserInputError(f"--strategy: {name!r} is not one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        # Before anything else touches devices: collective ops are configured at context start-up.
        config = os.environ.get("TF_CONFIG")
        if not config or "cluster" not in json.loads(config):
            raise UserInputError("--strategy=multi_worker: set TF_CONFIG to describe the cluster "
                                 "and this worker's task")
        return _logged(tf.distribute.MultiWorkerMirroredStrategy())
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "tpu" if tpu is not None else ("mirrored" if len(gpus) > 1 else "one_device")
    if name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise UserInputError(f"--strategy=tpu: no TPU found ({str(error).splitlines()[0]})") from None
        strategy = tf.distribute.TPUStrategy(resolver)
    return _logged(strategy)


def _logged(strategy):
    logging.info("distribution: %s with %d replica(s)", type(strategy).__name__,
                 strategy.num_replicas_in_sync)
    return strategy


def is_chief() -> bool:
    """True on the worker that writes shared outputs (the only worker outside multi-worker runs)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                           and "chief" not in config.get("cluster", {}))
