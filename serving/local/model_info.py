"""GetModelMetadata and GetModelStatus, answered as TF Serving's get_model_*_impl.cc answer them."""

from __future__ import annotations

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from client.names import SIGNATURE_DEF_FIELD
from serving.local.errors import InvalidRequest, ServableNotFound
from serving.local.repository import ModelRepository


def model_metadata(
    repository: ModelRepository, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The servable's SignatureDefMap (exactly as in saved_model.pb) packed under "signature_def"."""
    if not request.HasField("model_spec"):
        raise InvalidRequest("Missing ModelSpec")
    if not request.metadata_field:
        raise InvalidRequest("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise InvalidRequest(f"Metadata field {field} is not supported")
    servable = repository.resolve(request.model_spec)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def model_status(
    repository: ModelRepository, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version's state (START/LOADING/AVAILABLE/UNLOADING/END), newest first, or the one asked for.

    Newest first as ServableStateMonitor's VersionMap (ordered by std::greater) lists them.
    """
    if not request.HasField("model_spec"):
        raise InvalidRequest("Missing ModelSpec")
    name = request.model_spec.name
    records = repository.version_records(name)
    if request.model_spec.WhichOneof("version_choice") == "version":
        wanted = request.model_spec.version.value
        records = [record for record in records if record.version == wanted]
        if not records:
            raise ServableNotFound(f"Could not find version {wanted} of model {name}")
    elif not records:
        raise ServableNotFound(f"Could not find any versions of model {name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for record in records:
        status = response.model_version_status.add(version=record.version, state=record.state)
        status.status.SetInParent()  # TF Serving always sends the status, OK included
        if record.error:  # the loader's own status, as the state monitor keeps it
            status.status.error_code = record.error_code
            status.status.error_message = record.error
    return response
