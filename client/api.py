"""``ThresholdClient``: filter arrays and .npy files on a TF Serving model over gRPC, checked.

    from client import ThresholdClient

    with ThresholdClient("127.0.0.1:8500") as client:
        mask = client.predict(np.array([[0.04, -0.8, 1.3]]))      # -> float32 [[0, 1, 1]]
        summary = client.predict_file("data.npy", output="mask.npy", compact=True)

Every call learns the model from the server first (GetModelMetadata, then the bounds
signature), pins the version it answered with so a hot swap mid-run cannot mix two models,
splits the input into requests that fit the message budget, keeps up to ``concurrency`` in
flight, and checks each answer against the rule before writing it in input order.
Failures raise the ``client.errors`` class a caller can act on.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from client import wire
from client.channel import RetryCounter, call_with_retries, normalize_address, open_channel
from client.checker import CheckReport, ResponseChecker
from client.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MODEL,
    DEFAULT_RETRIES,
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT,
)
from client.errors import (
    ModelNotFound,
    RequestRejected,
    ResponseMismatch,
    from_rpc_error,
)
from client.model import (
    BOUNDS_OUTPUTS,
    ModelInfo,
    Signature,
    SignatureNotFound,
    check_input_fits,
    parse_metadata,
)
from client.names import GET_MODEL_METADATA_METHOD, PREDICT_METHOD, SIGNATURE_DEF_FIELD
from client.output import ArrayOutput, NpyOutput, PreviewOutput, refuse_output_over_input
from client.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)
from client.reader import InputArray, from_array, open_input
from client.replicas import AddressTally, channel_id, channel_ids, channel_options, choose_lb_policy
from client.stats import RunStats
from client.stream import BatchStream, plan_batches
from client.tensors import TensorDecodeError, fill_tensor_proto, from_tensor_proto


@dataclass
class PredictSummary:
    """What a run did and found; ``result`` is the mask (array, preview or output path)."""

    address: str
    model: str
    version: int | None
    signature: str
    rows: int
    cols: int
    batch_rows: int
    stats: RunStats
    low: float | None = None
    high: float | None = None
    check: CheckReport | None = None
    cast_note: str | None = None
    plan_note: str | None = None
    version_note: str | None = None  # set when a hot reload moved the run to another version
    versions: list[dict] | None = None  # per version that answered: its bounds and rows
    output: Path | None = None
    result: np.ndarray | Path | None = field(default=None, repr=False)
    answered_by: dict[str, int] = field(default_factory=dict)  # {address: Predicts it answered}

    @property
    def values(self) -> int:
        return self.rows * self.cols

    def as_dict(self) -> dict:
        """JSON-ready: what the CLI prints with --json."""
        return {
            "ok": self.check is None or self.check.ok,
            "server": self.address,
            "model": self.model,
            "version": self.version,
            "signature": self.signature,
            "low": self.low,
            "high": self.high,
            "rows": self.rows,
            "cols": self.cols,
            "values": self.values,
            "batch_rows": self.batch_rows,
            **self.stats.as_dict(self.values),
            "mismatches": None if self.check is None else self.check.mismatches,
            "check": None if self.check is None else self.check.as_dict(),
            "cast_note": self.cast_note,
            "plan_note": self.plan_note,
            "version_note": self.version_note,
            "versions": self.versions,
            "output": None if self.output is None else str(self.output),
            "answered_by": self.answered_by,
        }


class ThresholdClient:
    """A connection to one model on a TF Serving-compatible server."""

    def __init__(
        self,
        address: str = DEFAULT_SERVER,
        *,
        model: str = DEFAULT_MODEL,
        version: int | None = None,
        label: str | None = None,
        tls: bool = False,
        ca_cert: str | Path | None = None,
        server_name: str | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        authority: str | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
        known_models: tuple[str, ...] = (DEFAULT_MODEL,),
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        lb_policy: str | None = None,
    ):
        if version is not None and label is not None:
            raise ValueError("give a version or a label, not both")
        if not (timeout > 0 and math.isfinite(timeout)):  # grpc would expire an infinite deadline at once
            raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
        self.address = normalize_address(address)
        self.model, self.version, self.label = model, version, label
        self.timeout, self.retries, self.max_message_bytes = timeout, retries, max_message_bytes
        # One target may name many replicas (client.replicas): round_robin spreads the calls.
        self.lb_policy = choose_lb_policy(self.address, lb_policy)
        older_channels = channel_ids(self.address)
        self._channel = open_channel(
            self.address,
            tls=tls,
            ca_cert=ca_cert,
            server_name=server_name,
            client_cert=client_cert,
            client_key=client_key,
            authority=authority,
            metadata=metadata,
            options=channel_options(self.lb_policy),
        )
        self._tally = AddressTally(channel_id(self.address, older_channels))
        self.known_models = known_models  # names to ask for when the model is not found
        # Plain method handles, not PredictionServiceStub: its module loads every other service's protos.
        self._get_metadata = self._channel.unary_unary(
            GET_MODEL_METADATA_METHOD,
            request_serializer=get_model_metadata_pb2.GetModelMetadataRequest.SerializeToString,
            response_deserializer=get_model_metadata_pb2.GetModelMetadataResponse.FromString,
        )
        self._proto_predict = self._channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=predict_pb2.PredictRequest.SerializeToString,
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        self._raw_predict = self._channel.unary_unary(PREDICT_METHOD)  # bytes both ways: client.wire
        self._frames: dict[tuple, wire.RequestFrame] = {}
        self._info: ModelInfo | None = None
        self._bounds: tuple[float, float] | None = None
        self._retries = RetryCounter()

    # -- discovery ---------------------------------------------------------------------------

    def _model_spec(self, signature: str = "", info: ModelInfo | None = None) -> model_pb2.ModelSpec:
        """The spec requests carry: pinned to the version ``info`` (default: the cached one) names,
        else the user's version or label, else none (the server's latest)."""
        spec = model_pb2.ModelSpec(name=self.model, signature_name=signature)
        info = info or self._info
        version = info.version if info is not None and info.version else self.version
        if version is not None:
            spec.version.value = version
        elif self.label is not None:
            spec.version_label = self.label
        return spec

    def _describe_model(self) -> str:
        if self.version is not None:
            return f"model {self.model!r} version {self.version}"
        if self.label is not None:
            return f"model {self.model!r} label {self.label!r}"
        return f"model {self.model!r}"

    def _rpc(self, what: str, call: Callable):
        try:
            return call_with_retries(call, retries=self.retries, counter=self._retries)
        except grpc.RpcError as error:
            raise from_rpc_error(error, address=self.address, what=what, timeout=self.timeout) from None

    def model_info(self) -> ModelInfo:
        """The model's version and signatures, as the server reports them (cached)."""
        if self._info is None:
            self._info = self._fetch_info()
        return self._info

    def _fetch_info(self) -> ModelInfo:
        """GetModelMetadata for the user's version, label, or the latest: not the pinned version."""
        spec = model_pb2.ModelSpec(name=self.model)
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]
        )
        try:
            response = self._rpc(
                self._describe_model(), lambda: self._get_metadata(request, timeout=self.timeout)
            )
        except ModelNotFound as error:
            raise ModelNotFound(f"{error}{self._available_versions() or self._other_models()}") from None
        return parse_metadata(response)

    def _available_versions(self) -> str:
        """'; it has versions 1 (AVAILABLE), ...' from ModelService, or '' when that fails too."""
        from client.protos import model_service_pb2_grpc  # only on this error path

        stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=self.model))
        try:
            response = stub.GetModelStatus(request, timeout=min(self.timeout, 5.0))
        except grpc.RpcError:
            return ""
        state = get_model_status_pb2.ModelVersionStatus.State.Name
        versions = ", ".join(f"{s.version} ({state(s.state)})" for s in response.model_version_status)
        return f"; the server has {self.model!r} versions {versions}" if versions else ""

    def _other_models(self) -> str:
        """'; the server has model 'x' ...', or how to find out: TF Serving has no call listing its models."""
        candidates = [name for name in dict.fromkeys(self.known_models) if name != self.model]
        found = self.models_available(candidates)
        asked = ", ".join(repr(name) for name in candidates)
        if found:
            return (
                f"; the server has {', '.join(repr(name) for name in found)} (of the names asked for: "
                f"{asked}; TF Serving has no call that lists every model)"
            )
        return (
            "; TF Serving has no call that lists its models: the names are in the --model_config_file "
            "the server was started with (`make status` shows them for a server make serve started)"
        )

    def models_available(self, names) -> list[str]:
        """Which of names the server knows (GetModelStatus answers with versions)."""
        from client.protos import model_service_pb2_grpc  # only on this error path

        stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
        found = []
        for name in names:
            request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
            try:
                if stub.GetModelStatus(request, timeout=min(self.timeout, 5.0)).model_version_status:
                    found.append(name)
            except grpc.RpcError:
                continue
        return found

    def bounds(self) -> tuple[float, float]:
        """(low, high) from the model's bounds signature (cached)."""
        if self._bounds is None:
            self._bounds = self._fetch_bounds(self.model_info())
        return self._bounds

    def _fetch_bounds(self, info: ModelInfo) -> tuple[float, float]:
        signature = info.bounds_signature()
        spec = signature.only("input")
        # One row of one value where a size is free: a model answers a value per row (batchable,
        # see export/savedmodel.py) or one scalar (models exported before), never a zero-row batch.
        shape = (1, 1) if spec.shape is None else tuple(size if size >= 0 else 1 for size in spec.shape)
        request = predict_pb2.PredictRequest(model_spec=self._model_spec(signature.name, info))
        fill_tensor_proto(request.inputs[spec.key], np.zeros(shape, spec.numpy_dtype()))
        response = self._rpc(
            f"{self._describe_model()} signature {signature.name!r}",
            lambda: self._proto_predict(request, timeout=self.timeout),
        )
        try:
            # The shape the signature declares, () or one per row: one value, whatever a response claims.
            low, high = (
                from_tensor_proto(
                    response.outputs[key],
                    expected_shape=_bounds_shape(signature.outputs[key], shape),
                    name=key,
                ).reshape(-1)[0]
                for key in BOUNDS_OUTPUTS
            )
            low, high = float(low), float(high)
        except (KeyError, IndexError, TensorDecodeError) as exc:
            raise RequestRejected(
                f"the bounds signature {signature.name!r} answered without scalar low and high ({exc})"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise RequestRejected(f"the server reported unusable bounds low={low}, high={high}")
        return low, high

    # -- prediction --------------------------------------------------------------------------

    def predict(
        self,
        array,
        *,
        signature: str | None = None,
        compact: bool = False,
        check: bool = True,
        batch_size: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> np.ndarray:
        """The mask for a 1-D or 2-D numeric array, in its shape; ResponseMismatch if an answer is wrong.

        Without ``batch_size`` the array goes in as few requests as fit the message budget (one
        for anything up to about 4 MB), ``concurrency`` of them in flight: it is in memory
        already, so there is no reading to overlap and every extra request is pure overhead.
        """
        with from_array(array) as source:
            summary = self._run(
                source,
                ArrayOutput,
                signature=signature,
                compact=compact,
                check=check,
                batch_size=batch_size,
                concurrency=concurrency,
                in_memory=True,
            )
        return summary.result

    def predict_file(
        self,
        path: str | Path,
        *,
        key: str | None = None,
        output: str | Path | None = None,
        signature: str | None = None,
        compact: bool = False,
        check: bool = True,
        batch_size: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Callable[[int], object] | None = None,
    ) -> PredictSummary:
        """Filter a .npy (or .npz member ``key``) in streamed batches.

        With ``output`` the mask is written there (atomically, input shape); without it only a
        preview (top-left corner) is kept in ``summary.result``. ``progress`` gets value counts.
        """
        with open_input(path, key) as source:
            if output is not None:
                refuse_output_over_input(path, output)
            if output is None:
                make_output = PreviewOutput
            else:

                def make_output(*args):
                    return NpyOutput(output, *args)

            return self._run(
                source,
                make_output,
                signature=signature,
                compact=compact,
                check=check,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=progress,
            )

    def _run(
        self,
        source: InputArray,
        make_output,
        *,
        signature,
        compact,
        check,
        batch_size,
        concurrency,
        progress=None,
        in_memory: bool = False,
    ) -> PredictSummary:
        if concurrency < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError("concurrency and batch_size must be positive")
        retries_before = self._retries.count  # discovery's retries count too
        info = self.model_info()
        chosen = info.predict_signature(signature, compact)
        check_input_fits(chosen, source.cols)
        try:
            out_dtype = chosen.only("output").numpy_dtype()
        except TensorDecodeError as exc:
            raise SignatureNotFound(f"signature {chosen.name!r}: {exc}") from None
        checker = ResponseChecker(*self.bounds(), out_dtype, version=info.version) if check else None
        plan = plan_batches(
            source.cols,
            out_dtype.itemsize,
            self.max_message_bytes,
            batch_size,
            rows=None if in_memory else source.rows,
            concurrency=concurrency,
        )
        summary = PredictSummary(
            self.address,
            self.model,
            info.version,
            chosen.name,
            source.rows,
            source.cols,
            min(plan.rows, source.rows),
            RunStats(),
            plan_note=plan.note,
        )
        if checker is not None:
            summary.low, summary.high, summary.check = checker.low, checker.high, checker.report
        sink = make_output(source.shape, out_dtype, source.rows, source.cols)
        done = False
        self._tally.start()
        try:
            out_key = chosen.only("output").key
            what = f"{self._describe_model()} signature {chosen.name!r}"
            follower = _ReloadFollower(self, chosen, checker)
            stream = BatchStream(
                lambda x: self._send(chosen, x),
                out_key,
                plan,
                concurrency,
                checker,
                sink,
                summary,
                progress,
                lambda error: from_rpc_error(error, address=self.address, what=what, timeout=self.timeout),
                versions=follower,
            )
            stream.run(source)
            summary.version_note, summary.versions = follower.describe(stream.version_ranges(), checker)
            summary.stats.retries = self._retries.count - retries_before
            summary.cast_note = str(source.cast) if source.cast and source.cast.changed else None
            if checker is not None and not checker.report.ok:
                error = ResponseMismatch(checker.report.summary(), checker.report)
                error.summary = summary
                raise error
            summary.result = sink.commit()
            done = True
        finally:
            summary.stats.finish()
            summary.answered_by = self._tally.stop()
            if not done:
                sink.abort()
        summary.output = summary.result if isinstance(summary.result, Path) else None
        return summary

    def _send(self, signature: Signature, x: np.ndarray) -> tuple[bytes, float]:
        """One Predict, retried while UNAVAILABLE or CANCELLED: the response bytes and latency (s)."""
        in_spec, out_key = signature.only("input"), signature.only("output").key
        x = np.ascontiguousarray(x, dtype=in_spec.numpy_dtype())
        info = self._info  # read once: a hot reload may re-pin it from another thread
        key = (None if info is None else info.version, signature.name, x.shape)
        frame = self._frames.get(key)
        if frame is None:
            if len(self._frames) > 16:  # a run makes at most three shapes; programs may make more
                self._frames.clear()
            frame = wire.request_frame(
                self._model_spec(signature.name, info), in_spec.key, x.shape, x.dtype, output_filter=[out_key]
            )
            self._frames[key] = frame
        request = frame.encode(x)

        def attempt():
            start = time.perf_counter()
            response = self._raw_predict(request, timeout=self.timeout)
            self._tally.refresh_soon()
            return response, time.perf_counter() - start

        return call_with_retries(attempt, retries=self.retries, counter=self._retries)

    def close(self) -> None:
        """Close the channel; RPCs still in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> ThresholdClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _ReloadFollower:
    """A run's answer to a hot reload that unloads the version it pinned (see README, "Hot reloads").

    The run goes on with the version the server now serves under the same name (the label, or
    the latest), if the user did not ask for a version by number and the new version has the
    same signature: the failed batch is resent there, every answer is checked against the
    bounds of the version that gave it, and the summary says which rows each version answered.
    """

    def __init__(self, client: ThresholdClient, signature: Signature, checker: ResponseChecker | None):
        self.client, self.signature, self.checker = client, signature, checker
        self.first = client.model_info().version
        self._lock = threading.Lock()

    def pinned(self) -> int | None:
        info = self.client._info
        return None if info is None else info.version

    def follow(self, failed_version: int | None) -> bool:
        client = self.client
        if client.version is not None or failed_version is None:
            return False  # the user asked for this version: losing it is an error
        with self._lock:
            if self.pinned() != failed_version:
                return True  # another batch already moved the run on: just resend
            try:
                fresh = client._fetch_info()
            except ModelNotFound:
                return False
            if fresh.version is None or fresh.version == failed_version:
                return False
            try:
                signature = fresh.predict_signature(self.signature.name)
            except SignatureNotFound:
                return False
            old_in, old_out = self.signature.only("input"), self.signature.only("output")
            new_in, new_out = signature.only("input"), signature.only("output")
            if (new_in.key, new_in.dtype, new_out.key, new_out.dtype) != (
                old_in.key,
                old_in.dtype,
                old_out.key,
                old_out.dtype,
            ):
                return False
            if self.checker is not None:
                self.checker.add_version(fresh.version, *client._fetch_bounds(fresh))
            client._info, client._bounds = fresh, None
            return True

    def describe(
        self, ranges: dict[int | None, str], checker: ResponseChecker | None
    ) -> tuple[str | None, list[dict] | None]:
        """(note, per-version list) when more than one version answered; (None, None) otherwise."""
        if len(ranges) < 2 and self.pinned() == self.first:
            return None, None
        versions = []
        for version in sorted(ranges, key=lambda v: (v is None, v or 0)):
            entry = {"version": version, "rows": ranges[version]}
            if checker is not None and version in checker.bounds:
                entry["low"], entry["high"] = checker.bounds[version]
            versions.append(entry)
        parts = "; ".join(f"version {entry['version']} answered rows {entry['rows']}" for entry in versions)
        note = (
            f"version {self.first} was unloaded mid-run (hot reload); the run went on with version "
            f"{self.pinned()}, each answer checked against its own version's bounds: {parts}"
        )
        return note, versions


def _bounds_shape(spec, request_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a bound comes in: one value per request row where the signature declares a
    vector, else a scalar (models exported before bounds were batchable)."""
    if spec.shape is not None and len(spec.shape) == 1:
        return (request_shape[0],)
    return ()
