"""What the server says the model is: its version and signatures, from GetModelMetadata.

The client copies nothing from ``export/``: the signature to call, its input and output keys and
dtypes, and where the bounds come from are all read from the SignatureDefMap the server returns.
The only names assumed are TensorFlow's default signature key (``serving_default``) and the
bounds signature's outputs (``low`` and ``high``), which is the contract a threshold model offers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from client.errors import InvalidInput, ModelNotFound, RequestRejected
from client.names import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD
from client.protos import get_model_metadata_pb2, types_pb2
from client.tensors import TensorDecodeError, dtype_name, numpy_dtype

BOUNDS_OUTPUTS = ("low", "high")


class SignatureNotFound(ModelNotFound):
    """The model has no signature by that name (or none that fits the request)."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: dtype enum and shape (-1 unknown; None unknown rank)."""

    key: str
    dtype: int
    shape: tuple[int, ...] | None

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)

    def numpy_dtype(self) -> np.dtype:
        return numpy_dtype(self.dtype)


@dataclass(frozen=True)
class Signature:
    """A SignatureDef, reduced to what a Predict client needs."""

    name: str
    method: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def only(self, side: str) -> TensorSpec:
        """The single input or output; raise if the signature has several."""
        specs = self.inputs if side == "input" else self.outputs
        if len(specs) != 1:
            raise SignatureNotFound(
                f"signature {self.name!r} has {len(specs)} {side}s "
                f"({', '.join(specs) or 'none'}); the filter needs exactly one"
            )
        return next(iter(specs.values()))


@dataclass(frozen=True)
class ModelInfo:
    """A model version as the server describes it."""

    name: str
    version: int | None
    signatures: dict[str, Signature]

    def predict_signature(self, name: str | None = None, compact: bool = False) -> Signature:
        """The signature to filter with: by name, else the uint8 one for compact, else the default."""
        if name is None and compact:
            return self._compact_signature()
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise SignatureNotFound(
                f"model {self.name!r} (version {self.version}) has no signature "
                f"{name!r}; it has: {', '.join(sorted(self.signatures))}"
            )
        signature = self.signatures[name]
        signature.only("input")
        signature.only("output")
        return signature

    def _compact_signature(self) -> Signature:
        candidates = [
            sig
            for sig in self.signatures.values()
            if len(sig.inputs) == 1
            and len(sig.outputs) == 1
            and sig.only("output").dtype == types_pb2.DT_UINT8
        ]
        if not candidates:
            raise SignatureNotFound(
                f"model {self.name!r} has no signature with a uint8 output (the compact "
                f"mask); it has: {', '.join(sorted(self.signatures))}"
            )
        candidates.sort(key=lambda sig: (sig.name != "compact", sig.name))
        return candidates[0]

    def bounds_signature(self) -> Signature:
        """The signature whose outputs are the model's bounds (``low`` and ``high``)."""
        candidates = [
            sig
            for sig in self.signatures.values()
            if set(sig.outputs) == set(BOUNDS_OUTPUTS) and len(sig.inputs) == 1
        ]
        if not candidates:
            raise SignatureNotFound(
                f"model {self.name!r} has no signature with outputs low and high, "
                "so its answers cannot be checked",
                kind="no_bounds",
            )
        candidates.sort(key=lambda sig: (sig.name != "bounds", sig.name))
        return candidates[0]


def _tensor_spec(key: str, info) -> TensorSpec:
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return TensorSpec(key, info.dtype, shape)


def parse_metadata(response: get_model_metadata_pb2.GetModelMetadataResponse) -> ModelInfo:
    """ModelInfo from a GetModelMetadataResponse with the signature_def field."""
    packed = response.metadata.get(SIGNATURE_DEF_FIELD)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if packed is None or not packed.Unpack(signature_map):
        raise RequestRejected(
            "the server's model metadata has no signature_def map; is it a TF Serving-compatible server?"
        )
    version = response.model_spec.version.value if response.model_spec.HasField("version") else None
    signatures = {
        name: Signature(
            name,
            sig.method_name,
            {key: _tensor_spec(key, info) for key, info in sig.inputs.items()},
            {key: _tensor_spec(key, info) for key, info in sig.outputs.items()},
        )
        for name, sig in signature_map.signature_def.items()
    }
    return ModelInfo(response.model_spec.name, version, signatures)


def check_input_fits(signature: Signature, cols: int) -> None:
    """Raise before sending rows the signature cannot take (wrong dtype, rank or row length)."""
    spec = signature.only("input")
    try:
        spec.numpy_dtype()
    except TensorDecodeError:
        raise SignatureNotFound(
            f"signature {signature.name!r} takes {spec.dtype_name}, not a numeric tensor this client can send"
        ) from None
    if spec.shape is not None:
        if len(spec.shape) != 2:
            raise SignatureNotFound(
                f"signature {signature.name!r} takes rank-{len(spec.shape)} "
                f"input {spec.shape}; this client sends [rows, cols]"
            )
        if spec.shape[1] not in (-1, cols):
            raise InvalidInput(
                f"signature {signature.name!r} takes rows of {spec.shape[1]} values; the input has {cols}"
            )
