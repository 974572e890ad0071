"""Foreign SavedModels (vb_keras.utils.model_safety): a graph that would touch files, processes or
the network is refused before anything of it runs; the project's exports and the shared
embedders are not."""

import os

import pytest

from conftest import (REPO_ROOT, SHARED, YAMNET, requires_yamnet, run_main,
                      write_foreign_saved_model)
from vb_keras.errors import UserInputError
from vb_keras.utils import model_safety

EFFICIENTAT = os.path.join(SHARED, "models", "efficientat_mn04_hub")


@pytest.mark.parametrize("kind, op, where", [
    ("write_file", "WriteFile", r"__inference_serve_\d+"),
    ("read_file", "ReadFile", r"__inference___call___\d+"),          # not a signature: __call__
    ("text_table", "InitializeTableFromTextFileV2", r"__inference__initializer_\d+"),  # at load
    ("print_file", "PrintV2 \\(output_stream=file://.*/secret\\)", r"__inference_serve_\d+"),
])
def test_a_model_that_would_touch_files_is_refused_in_one_line_before_it_runs(tmp_path, kind, op,
                                                                              where):
    written = str(tmp_path / "secret")
    if kind == "text_table":
        open(written, "w").write("x\n")
    path = str(write_foreign_saved_model(tmp_path / "model", kind, written))
    if kind != "text_table":
        assert not os.path.exists(written)
    with pytest.raises(UserInputError, match=rf"^--model: {path} is refused: its graph runs {op} "
                                             rf"\(in {where}\), an op that touches files, which a "
                                             r"model may not do; pass --trust_model") as caught:
        model_safety.check_saved_model(path, "--model")
    assert "\n" not in str(caught.value)
    assert not os.path.exists(written) or kind == "text_table"
    model_safety.check_saved_model(path, "--model", trusted=True)   # the user vouches for it


def test_trust_is_a_process_setting_the_programs_set_from_their_flag(tmp_path):
    path = str(write_foreign_saved_model(tmp_path / "model", "write_file",
                                         str(tmp_path / "written")))
    try:
        model_safety.trust_models()
        model_safety.check_saved_model(path, "--embedder")
    finally:
        model_safety.trust_models(False)
    with pytest.raises(UserInputError, match="--embedder: .* is refused"):
        model_safety.check_saved_model(path, "--embedder")


@pytest.mark.parametrize("kind", ["plain", "print", "wrong_signature"])
def test_a_model_of_plain_arithmetic_passes_though_every_saved_model_holds_saver_ops(tmp_path,
                                                                                    kind):
    path = str(write_foreign_saved_model(tmp_path / "model", kind))
    assert model_safety.unsafe_ops(path) == []
    # The saver's functions (run by a checkpoint save or TF1's session loader, never by loading
    # and calling it) do write files: they are not what the model runs.
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"),
                                                       "rb").read())
    ops = {node.op for graph in proto.meta_graphs for function in graph.graph_def.library.function
           for node in function.node_def}
    assert {"SaveV2", "RestoreV2", "MergeV2Checkpoints"} <= ops


def test_the_projects_own_embedder_export_passes(tmp_path):
    from vb_keras.models import embedders
    assert model_safety.unsafe_ops(embedders.builtin_embedder_dir(root=str(tmp_path))) == []


@requires_yamnet
@pytest.mark.parametrize("path", [YAMNET, EFFICIENTAT])
def test_the_shared_hub_embedders_pass(path):
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        pytest.skip(f"{path} is absent (it ships only beside the project, in ../shared)")
    assert model_safety.unsafe_ops(path) == []


def test_a_file_that_is_not_a_saved_model_is_one_line(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff" * 64)
    with pytest.raises(UserInputError, match=r"saved_model.pb: not a readable SavedModel"):
        model_safety.unsafe_ops(str(tmp_path))


if __name__ == "__main__":
    run_main()
