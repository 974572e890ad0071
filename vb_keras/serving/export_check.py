"""The fresh process that checks an export (`export._verify_in_fresh_process` starts it).

  python -m vb_keras.serving.export_check EXPORT_DIR PARENT_PID  < sample.npz  > outputs.npz

It reads the sample batch on stdin, runs it through both of TensorFlow's SavedModel loaders (TF2's
`tf.saved_model.load`, and the session-based loader of TF Serving and `saved_model_cli run`), and
writes their outputs to stdout as one .npz, keyed `<loader>/<output>`. Nothing touches the disk.

It ends itself as soon as its parent dies: the watch starts before TensorFlow is imported (which
takes seconds), so a killed exporter leaves no verifier behind.
"""

import io
import os
import sys
import threading
import time

# The loaders an export is checked under, in the order of the keys written.
LOADERS = ("tf2", "session")


def _exit_with_parent(parent_pid: int):
    """A verifier whose exporter was killed has no one to answer: it ends too."""
    while os.getppid() == parent_pid:
        time.sleep(0.1)
    os._exit(1)


def main(path, parent_pid):
    threading.Thread(target=_exit_with_parent, args=(int(parent_pid),), daemon=True).start()
    result = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)   # anything else printed goes to stderr; stdout carries only the result
    import numpy as np   # pylint: disable=import-outside-toplevel  (after the watch: see above)
    import tensorflow as tf   # pylint: disable=import-outside-toplevel
    from vb_keras.keys import SIGNATURE   # pylint: disable=import-outside-toplevel
    from vb_keras.serving import session_loader   # pylint: disable=import-outside-toplevel

    feeds = dict(np.load(io.BytesIO(sys.stdin.buffer.read())))
    outputs = {f"session/{task}": value
               for task, value in session_loader.run_with_session_loader(path, feeds).items()}
    signature = tf.saved_model.load(path).signatures[SIGNATURE]
    outputs.update({f"tf2/{task}": value.numpy() for task, value in signature(
        **{key: tf.constant(value) for key, value in feeds.items()}).items()})
    # Strings (the class names) as fixed-width bytes: .npz holds object arrays only by pickling.
    np.savez(result, **{key: value.astype(bytes) if value.dtype == object else value
                        for key, value in outputs.items()})
    result.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
