"""Running a SavedModel as TF Serving does: its session-based loader, not TF2's."""

import tensorflow as tf

from vb_keras.keys import SIGNATURE


def run_with_session_loader(path, feeds: dict, signature: str = SIGNATURE) -> dict:
    """Runs a SavedModel's signature as TF Serving does: the TF1 session-based loader (variables
    restored by the graph's saver, assets by the asset file defs), then `Session.run` on the
    signature's tensor names. This is also what `saved_model_cli run` does.

    Args:
      feeds: input key -> NumPy array.
    Returns:
      output key -> NumPy array.
    """
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature_def = meta_graph.signature_def[signature]
        fetches = {key: info.name for key, info in signature_def.outputs.items()}
        return session.run(fetches, {signature_def.inputs[key].name: value
                                     for key, value in feeds.items()})
