"""One loaded SavedModel version, run the way TF Serving runs it: a session fed and fetched by tensor names.

TF Serving loads a SavedModel into a TensorFlow session (SavedModelBundle) and calls
``Session::Run`` with the signature's input tensor names as feeds and its output tensor names as
fetches; it checks no dtype or shape of its own, so the runtime's own errors (``Expects arg[0]
to be float but double is provided``) reach the client. The same happens here through TF's C
API session call, which also spares the per-call Python work of ``Session.run`` (about 30 us
against 140 us for one 1x8 row, and 210 us against 400-600 us for a 1024x256 batch, compared
with ``Session.run`` and the eager signature function).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from export.quiet_tensorflow import import_tensorflow
from serving.local.errors import RequestError
from serving.local.flags import TF_CHOOSES, SessionThreads

SERVE_TAG = "serve"


class SavedModelUnreadable(Exception):
    """A version directory does not hold a loadable SavedModel with the serve tag.

    code is the status TF Serving's loader reports for the same failure.
    """

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN):
        super().__init__(message)
        self.code = code


class RuntimeFailed(RequestError):
    """Session::Run failed; code and message are TensorFlow's own, as TF Serving passes them on."""

    def __init__(self, message: str, code: grpc.StatusCode):
        super().__init__(message)
        self.code = code


_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_code(number: int) -> grpc.StatusCode:
    """The gRPC status for a TensorFlow error code (the two share their numbers)."""
    return _CODE_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def read_serving_meta_graph(
    version_dir: Path, tags: tuple[str, ...] = (SERVE_TAG,)
) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged with exactly tags (--saved-model-tags) in version_dir/saved_model.pb
    (or saved_model.pbtxt, as TensorFlow's reader.cc falls back to it), as TF Serving picks it.

    The failures carry TF Serving's status: a directory without either file (or a version
    that is a regular file) is NOT_FOUND in ``session_bundle/oss/session_bundle_util.cc``
    (LoadSessionBundleOrSavedModelBundle, behind MaybeSavedModelDirectory); one whose
    file does not parse is DATA_LOSS from TensorFlow's ``ReadBinaryProto`` / ``ReadTextProto``
    (``tensorflow/core/platform/env.cc``, called by ``cc/saved_model/reader.cc``).
    """
    saved_model = saved_model_pb2.SavedModel()
    path = Path(version_dir) / "saved_model.pb"
    binary = True
    if not path.exists() and (Path(version_dir) / "saved_model.pbtxt").exists():
        # cc/saved_model/reader.cc ReadSavedModel: the binary file first, else the text one
        path, binary = Path(version_dir) / "saved_model.pbtxt", False
    try:
        content = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise SavedModelUnreadable(
            "Specified file path does not appear to contain a SavedModel bundle (should have a file "
            f"called `saved_model.pb`)\nSpecified file path: {version_dir}",
            grpc.StatusCode.NOT_FOUND,
        ) from None
    except OSError as exc:  # TensorFlow's IOError(fname, errno): "<file>; <strerror>"
        code = (
            grpc.StatusCode.PERMISSION_DENIED if isinstance(exc, PermissionError) else grpc.StatusCode.UNKNOWN
        )
        raise SavedModelUnreadable(f"{path}; {exc.strerror or exc}", code) from None
    try:
        if binary:
            saved_model.ParseFromString(content)
        else:
            text_format.Parse(content.decode("utf-8", "replace"), saved_model)
    except (DecodeError, text_format.ParseError):
        # env.cc ReadBinaryProto / ReadTextProto
        kind = "binary" if binary else "text"
        raise SavedModelUnreadable(f"Can't parse {path} as {kind} proto", grpc.StatusCode.DATA_LOSS) from None
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):  # reader.cc FindMetaGraphDef: the same set
            return meta_graph
    raise SavedModelUnreadable(
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. To inspect "
        "available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
        grpc.StatusCode.NOT_FOUND,
    )


@dataclass
class Servable:
    """A loaded version: name, version, SignatureDefs as written, and the session that runs them."""

    name: str
    version: int
    path: Path
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    _session: object = None
    _graph: object = None
    _endpoints: dict = field(default_factory=dict)  # tensor name -> TF_Output
    _endpoints_lock: threading.Lock = field(default_factory=threading.Lock)

    def _endpoint(self, tensor_name: str):
        endpoint = self._endpoints.get(tensor_name)
        if endpoint is None:
            try:
                endpoint = self._graph.get_tensor_by_name(tensor_name)._as_tf_output()
            except (KeyError, ValueError) as exc:  # a SignatureDef naming a tensor its graph lacks
                raise RuntimeFailed(str(exc), grpc.StatusCode.INVALID_ARGUMENT) from None
            with self._endpoints_lock:
                self._endpoints[tensor_name] = endpoint
        return endpoint

    def run_tensors(self, feeds: list[tuple[str, np.ndarray]], fetches: list[str]) -> list[np.ndarray]:
        """Session::Run by tensor names; RuntimeFailed carries TensorFlow's status unchanged."""
        from tensorflow.python.client import pywrap_tf_session

        tf = import_tensorflow()
        feed_map = {self._endpoint(name): _eigen_aligned(value) for name, value in feeds}
        outputs = [self._endpoint(name) for name in fetches]
        try:
            return pywrap_tf_session.TF_SessionRun_wrapper(
                self._session._session, None, feed_map, outputs, [], None
            )
        except tf.errors.OpError as exc:
            raise RuntimeFailed(exc.message, status_code(exc.error_code)) from None

    def run(
        self, signature: str, inputs: dict[str, np.ndarray], output_keys: tuple[str, ...] | None = None
    ) -> dict[str, np.ndarray]:
        """Run a signature on inputs keyed by alias; outputs keyed by alias (all, or output_keys)."""
        signature_def = self.signature_defs[signature]
        keys = tuple(signature_def.outputs) if output_keys is None else output_keys
        feeds = [(signature_def.inputs[alias].name, value) for alias, value in inputs.items()]
        values = self.run_tensors(feeds, [signature_def.outputs[key].name for key in keys])
        return dict(zip(keys, values, strict=True))


EIGEN_ALIGNMENT = 64  # TF_NewTensor copies any buffer whose address is not a multiple of this


def _eigen_aligned(value: np.ndarray) -> np.ndarray:
    """value, or one copy of it at a 64-byte-aligned address when its data is not there.

    An input decoded in place lies wherever its bytes fell in the request. TensorFlow's
    NdarrayToTensor (``tensorflow/python/lib/core/ndarray_tensor.cc``) makes a numpy copy of an
    array that is not aligned to its item size, then ``TF_NewTensor`` copies again to Eigen's
    64-byte alignment; an aligned array is used as it is. One copy here replaces those two.
    """
    if (
        not isinstance(value, np.ndarray)
        or value.dtype.hasobject
        or value.nbytes < EIGEN_ALIGNMENT
        or value.ctypes.data % EIGEN_ALIGNMENT == 0
    ):
        return value
    buffer = np.empty(value.nbytes + EIGEN_ALIGNMENT, dtype=np.uint8)
    start = -buffer.ctypes.data % EIGEN_ALIGNMENT
    aligned = buffer[start : start + value.nbytes].view(value.dtype).reshape(value.shape)
    np.copyto(aligned, value, casting="no")
    return aligned


_load_lock = threading.Lock()  # one graph import at a time: loads are rare, and TF's loader is slow anyway


def load_servable(
    name: str,
    version: int,
    version_dir: Path,
    threads: SessionThreads = TF_CHOOSES,
    tags: tuple[str, ...] = (SERVE_TAG,),
) -> Servable:
    """Load version_dir into a session, as TF Serving's SavedModelBundle does; SavedModelUnreadable if not."""
    meta_graph = read_serving_meta_graph(version_dir, tags)
    tf = import_tensorflow()
    from tensorflow.python.util import deprecation  # the TF1 loader is what TF Serving runs: no notice

    intra, inter = threads.pools
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter)
    with _load_lock:
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            with graph.as_default(), deprecation.silence():
                tf.compat.v1.saved_model.loader.load(session, list(tags), str(version_dir))
        except tf.errors.OpError as exc:
            session.close()
            raise SavedModelUnreadable(f"{version_dir}: {exc.message}", status_code(exc.error_code)) from None
        except Exception as exc:  # TF raises many kinds here; all mean "not loadable"
            session.close()
            raise SavedModelUnreadable(f"{version_dir}: {type(exc).__name__}: {exc}") from None
    return Servable(
        name=name,
        version=version,
        path=Path(version_dir),
        signature_defs=dict(meta_graph.signature_def),
        _session=session,
        _graph=graph,
    )
