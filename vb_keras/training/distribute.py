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


def prepare_for_multi_worker_fit(model, strategy) -> None:
    """Lets Keras 3's `fit` (and its validation) run `model` under a MultiWorkerMirroredStrategy;
    call it in the strategy's scope after compiling, and fit in that scope. Other strategies need
    nothing and are left alone."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    # Keras 3's fit builds a model created under a strategy from a data batch it reduces across
    # replicas, which fails for this strategy (keras-team/keras#20585). Without the cached
    # strategy it builds while tracing instead.
    model._distribute_strategy = None  # pylint: disable=protected-access
    # Keras then averages the step logs over workers with strategy.reduce("MEAN", v, axis=0),
    # which fails on a scalar: hand it each log as a vector of one value.
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)


def on_every_worker(dataset, strategy):
    """`dataset` read whole by every worker of a MultiWorkerMirroredStrategy (tf.data otherwise
    gives each worker a share of its batches), for a finite dataset that every worker must step
    through alike: with fewer batches than workers, a worker given none would leave the others
    waiting in their collectives for ever (seen with pre-training's held-out clips)."""
    if dataset is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def _logs_as_vectors(step):
    """Wraps a Keras train_step or test_step so that every log it returns has shape [1]."""
    def wrapped(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}
    return wrapped


def task_name() -> str:
    """This process's task in TF_CONFIG, e.g. "worker1" ("chief" outside multi-worker runs)."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return f"{task['type']}{task.get('index', 0)}" if task else "chief"


def is_chief() -> bool:
    """True on the worker that writes shared outputs (the only worker outside multi-worker runs)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                           and "chief" not in config.get("cluster", {}))
