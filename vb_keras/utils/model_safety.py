"""Refusing a foreign SavedModel whose graph would touch files, processes or the network.

TensorFlow has no safe mode for SavedModels (Keras's `safe_mode` covers `.keras` files only): a
SavedModel is a graph, and loading and calling it runs whatever ops the graph holds, `WriteFile`
and `ReadFile` as readily as `MatMul`. A model file is untrusted input (models are downloaded), so
before vb_keras loads one it names with a flag (bin/predict's --model, an --embedder, a
--teacher), `check_saved_model` reads its graph as data (the protocol buffer, nothing is run) and
refuses it, in one line, if what the model runs holds an op of `UNSAFE_OPS`: one that reads or
writes files, starts or talks to other processes (Python callbacks included), or reaches other
machines. The user may vouch for a model with --trust_model (`trust_models`).

What the model runs: the functions of its signatures (`serving_default`, and the
`__saved_model_init_op` that loading runs), every function its object graph holds (`__call__`, the
initialisers of its lookup tables, which loading runs, ...), and every function those call. Not
checked: the saver functions every SavedModel carries (`SaveV2`, `RestoreV2`,
`MergeV2Checkpoints`), which only a checkpoint save or TF1's session loader runs, never
`tf.saved_model.load` and a signature call. Nor does this bound what a model's ops cost: a graph
can still take much memory or time, or compute wrong outputs.
"""

import os

from vb_keras.errors import UserInputError

SAVED_MODEL_FILE = "saved_model.pb"

# Ops that reach beyond the tensors they are given, by kind (TensorFlow 2.21's registered ops,
# reviewed by name). A graph op runs in this process with its rights, so any of these in a foreign
# model could read or overwrite the user's files, run code, or send data elsewhere.
UNSAFE_OPS = {
    "files": {
        "ReadFile", "WriteFile", "MatchingFiles", "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset", "FileSystemSetConfiguration", "ImmutableConst",
        "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
        "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "IdentityReader", "IdentityReaderV2", "LMDBReader", "RecordInput",
        "ReaderRead", "ReaderReadV2", "ReaderReadUpTo", "ReaderReadUpToV2", "ReaderRestoreState",
        "ReaderRestoreStateV2",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset",
        "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
        "CacheDataset", "CacheDatasetV2", "SaveDataset", "SaveDatasetV2", "LoadDataset",
        "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
        "SnapshotNestedDatasetReader", "SnapshotChunkDataset", "ListSnapshotChunksDataset",
        "DistributedSave", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
        "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
        "MergeV2Checkpoints", "LoadAndRemapMatrix", "GenerateVocabRemapping",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
        "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
        "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
        "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter", "CloseSummaryWriter",
        "StatsAggregatorSetSummaryWriter",
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
        "DebugNumericSummary", "DebugNumericSummaryV2",
    },
    "processes": {"PyFunc", "PyFuncStateless", "EagerPyFunc"},
    "the network": {
        "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2", "RemoteCall", "Send",
        "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv", "CollectiveReduce",
        "CollectiveReduceV2", "CollectiveReduceV3", "CollectiveGather", "CollectiveGatherV2",
        "CollectiveBcastSend", "CollectiveBcastSendV2", "CollectiveBcastRecv",
        "CollectiveBcastRecvV2", "CollectiveAllToAllV2", "CollectiveAllToAllV3",
        "CollectivePermute", "CollectiveReduceScatterV2", "CollectiveInitializeCommunicator",
        "CollectiveAssignGroupV2", "WorkerHeartbeat", "ConfigureDistributedTPU",
        "ShutdownDistributedTPU", "Rpc", "TryRpc",
    },
}
_KIND_OF = {op: kind for kind, ops in UNSAFE_OPS.items() for op in ops}
# Ops that are harmless unless an attribute names a file: PrintV2 prints to "file://<path>", the
# proto codecs read their descriptors from a file unless told "local://" or "bytes://".
_FILE_ATTRIBUTES = {"PrintV2": ("output_stream", ("file://",), True),
                    "DecodeProtoV2": ("descriptor_source", ("local://", "bytes://"), False),
                    "EncodeProto": ("descriptor_source", ("local://", "bytes://"), False)}

_trusted = False


def trust_models(trusted: bool = True):
    """Lets every later `check_saved_model` in this process pass (a program's --trust_model: the
    user vouches for the models it names)."""
    global _trusted   # pylint: disable=global-statement  (the process's one setting)
    _trusted = bool(trusted)


def check_saved_model(path, flag: str, trusted: bool | None = None):
    """Raises a one-line UserInputError naming `flag` and `path` unless the SavedModel at `path`
    is safe to load and call (see the module docstring), or is trusted (`trusted`, else
    `trust_models`). Reads the graph only; runs nothing."""
    if _trusted if trusted is None else trusted:
        return
    found = unsafe_ops(path)
    if found:
        op, kind, function = found[0]
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise UserInputError(
            f"{flag}: {path} is refused: its graph runs {op} (in {function}){more}, an op that "
            f"touches {kind}, which a model may not do; pass --trust_model to run it anyway if "
            "you trust where it came from")


def unsafe_ops(path) -> list:
    """[(op, kind, where)] of the unsafe ops the SavedModel at `path` runs (see the module
    docstring), in the order found; `where` names the function (or "the signature graph").

    Raises:
      UserInputError: `path` holds no readable saved_model.pb.
    """
    from tensorflow.core.protobuf import saved_model_pb2   # pylint: disable=import-outside-toplevel
    from google.protobuf.message import DecodeError   # pylint: disable=import-outside-toplevel
    file_path = os.path.join(path, SAVED_MODEL_FILE)
    proto = saved_model_pb2.SavedModel()
    try:
        with open(file_path, "rb") as stream:
            proto.ParseFromString(stream.read())
    except (OSError, DecodeError) as error:
        raise UserInputError(f"{file_path}: not a readable SavedModel ({error})") from None
    found = []
    for meta_graph in proto.meta_graphs:
        library = {function.signature.name: function
                   for function in meta_graph.graph_def.library.function}
        pending = list(_object_graph_functions(meta_graph))
        # The signatures' own nodes (in the meta graph's graph), and what they call.
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        reached = _reached_nodes(nodes, [tensor.name for signature in
                                         meta_graph.signature_def.values()
                                         for tensor in signature.outputs.values()])
        for node in reached:
            found.extend(_judge(node, "the signature graph"))
            pending.extend(_called(node, library))
        seen = set()
        while pending:
            name = pending.pop()
            if name in seen or name not in library:
                continue
            seen.add(name)
            for node in library[name].node_def:
                found.extend(_judge(node, name))
                pending.extend(_called(node, library))
    return found


def _object_graph_functions(meta_graph):
    """The functions the SavedModel's objects hold (`tf.function`s, `__call__`, initialisers)."""
    for node in meta_graph.object_graph_def.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            yield from node.function.concrete_functions
        elif kind == "bare_concrete_function":
            yield node.bare_concrete_function.concrete_function_name


def _reached_nodes(nodes, tensor_names):
    """The nodes the named tensors are computed from (through data and control inputs)."""
    pending = [name.lstrip("^").split(":")[0] for name in tensor_names]
    reached = {}
    while pending:
        name = pending.pop()
        if name in reached or name not in nodes:
            continue
        reached[name] = nodes[name]
        pending.extend(inputs.lstrip("^").split(":")[0] for inputs in nodes[name].input)
    return list(reached.values())


def _called(node, library):
    """The names of the library functions a node calls: by its op, or through function-valued
    attributes (`f` of a call, the branches of an `If`, the body of a `While`, a dataset's map)."""
    called = [node.op] if node.op in library else []
    for value in node.attr.values():
        if value.HasField("func"):
            called.append(value.func.name)
        called.extend(function.name for function in value.list.func)
    return called


def _judge(node, where):
    """[(op, kind, where)] if the node is unsafe, else []."""
    if node.op in _KIND_OF:
        return [(node.op, _KIND_OF[node.op], where)]
    if node.op in _FILE_ATTRIBUTES:
        attribute, prefixes, unsafe_when_prefixed = _FILE_ATTRIBUTES[node.op]
        value = node.attr[attribute].s.decode(errors="replace") if attribute in node.attr else ""
        prefixed = value.startswith(prefixes)
        if value and prefixed == unsafe_when_prefixed:
            return [(f"{node.op} ({attribute}={value})", "files", where)]
    return []
