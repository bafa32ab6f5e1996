"""`client`'s public API: a short list of typed names, loaded lazily, and visible to type checkers."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

import client
from tests.support.processes import PYTHON, REPO, cli_env

ERRORS = {
    "ThresholdClientError",
    "InputFileError",
    "InputFormatError",
    "InvalidInput",
    "ServerUnavailable",
    "ModelNotFound",
    "SignatureNotFound",
    "DeadlineExceeded",
    "RequestRejected",
    "ResponseMismatch",
    "OutputFileError",
}
PUBLIC = {
    "ThresholdClient",
    "PredictSummary",
    "ModelInfo",
    "Signature",
    "TensorSpec",
    "CheckReport",
    "Mismatch",
    "RunStats",
    *ERRORS,
}


def test_the_package_exports_the_client_its_results_and_its_errors():
    assert set(client.__all__) == set(client._EXPORTS) == PUBLIC
    assert set(dir(client)) >= PUBLIC
    for name in ERRORS:
        assert issubclass(getattr(client, name), client.ThresholdClientError), name


@pytest.mark.parametrize(
    "name", ["plan_batches", "expected_mask", "EXIT_CODES", "DEFAULT_SERVER", "from_rpc_error"]
)
def test_internals_are_not_exported(name):
    with pytest.raises(AttributeError, match=name):
        getattr(client, name)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(Path(client.__file__).read_text())
    (block,) = [
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_type_checkers_see_every_lazy_export_from_where_it_is_defined():
    imports = _type_checking_imports()
    assert imports == client._EXPORTS
    for name, module in imports.items():
        assert getattr(client, name).__module__ == module, name


def test_importing_the_package_loads_neither_grpc_nor_numpy():
    code = "import sys, client; print([m for m in ('grpc', 'numpy', 'google.protobuf') if m in sys.modules])"
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
