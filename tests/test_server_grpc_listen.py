"""Where serving.local listens for gRPC, and the channel arguments it hands gRPC, as TF Serving's
flags have it (``model_servers/main.cc``: --port, --grpc_socket_path, --grpc_channel_arguments;
``model_servers/server.cc``: BuildAndStart and parseGrpcChannelArgs)."""

from __future__ import annotations

import dataclasses
import json
import time

import grpc
import numpy as np
import pytest

from serving.local.flags import grpc_channel_arguments
from tests.support.embedded_server import embedded_server, wait_until_available
from tests.support.grpc_calls import predict_request
from tests.support.processes import run_module

CONNECTION_AGE_MS = 1000  # other tests finish their calls well within it; a call in flight has 30 s of grace
MESSAGE_LIMIT = 64 * 1024  # --max-message-bytes; a channel argument asks for more, in vain


@pytest.fixture(scope="module")
def socket_server(model_dir, tmp_path_factory):
    """Only a UNIX socket (--port 0 turns TCP off); connections closed by age (a channel argument)."""
    socket_path = tmp_path_factory.mktemp("socket") / "serving.sock"
    with embedded_server(
        model_dir,
        "--port",
        "0",
        "--rest-port",
        "0",
        "--grpc-socket-path",
        str(socket_path),
        "--grpc-channel-arguments",
        f"grpc.max_connection_age_ms={CONNECTION_AGE_MS},grpc.max_connection_age_grace_ms=30000,"
        f"grpc.max_receive_message_length={16 * MESSAGE_LIMIT}",
        "--max-message-bytes",
        str(MESSAGE_LIMIT),
        wait=False,
    ) as handle:
        handle = dataclasses.replace(handle, address=f"unix:{socket_path}")
        wait_until_available(handle)
        yield handle


def test_grpc_socket_path_serves_the_client_over_a_unix_socket(socket_server, reference_file):
    """server.cc BuildAndStart: AddListeningPort("unix:" + grpc_socket_path) with the TCP port's
    credentials; client.predict takes gRPC's unix: target as its --server."""
    result = run_module("client.predict", reference_file, "--server", socket_server.address, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["values"] == 8


def test_port_0_turns_grpc_over_tcp_off(socket_server):
    """main.cc: --port is the "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero"."""
    listening = [line for line in socket_server.log().splitlines() if "listening on" in line]
    assert listening == [f"serving.local: listening on grpc {socket_server.address}, rest disabled"]


def connectivity(channel: grpc.Channel) -> grpc.ChannelConnectivity:
    """The channel's state now, without connecting (subscribe() reports changes late and merged)."""
    number = channel._channel.check_connectivity_state(False)
    return next(state for state in grpc.ChannelConnectivity if state.value[0] == number)


def test_channel_arguments_reach_grpc(socket_server):
    """server.cc: each key=value of --grpc_channel_arguments is added to the server builder, an
    int32 where absl::SimpleAtoi reads one. grpc.max_connection_age_ms makes the server close a
    connection that old (GOAWAY): the client's channel goes from READY back to IDLE, as clients
    behind a Service are made to reconnect (README, "Many replicas")."""
    with grpc.insecure_channel(socket_server.address) as channel:
        answer = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")(
            predict_request(np.zeros((1, 8), np.float32)).SerializeToString(), timeout=30
        )
        assert answer and connectivity(channel) == grpc.ChannelConnectivity.READY
        deadline = time.monotonic() + 10 * CONNECTION_AGE_MS / 1000
        while connectivity(channel) == grpc.ChannelConnectivity.READY and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connectivity(channel) == grpc.ChannelConnectivity.IDLE


def test_channel_arguments_come_after_the_servers_own(socket_server):
    """gRPC reads the first of two same-named arguments; ServerBuilder::BuildChannelArgs sets TF
    Serving's message limit before the --grpc_channel_arguments options, so a channel argument
    cannot lift it: here --max-message-bytes stays the limit."""
    with grpc.insecure_channel(socket_server.address) as channel:
        predict = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        request = predict_request(np.zeros((128, 256), np.float32)).SerializeToString()
        with pytest.raises(grpc.RpcError) as refused:
            predict(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"Received message larger than max ({len(request)} vs. {MESSAGE_LIMIT})" in refused.value.details()


def test_port_0_without_a_socket_path_is_refused(model_dir):
    """server.cc BuildAndStart: INVALID_ARGUMENT "At least one of server_options.grpc_port or
    server_options.grpc_socket_path must be set." Refused before the model loads."""
    result = run_module(
        "serving.local", "--port", "0", "--rest-port", "0", "--model-base-path", model_dir / "threshold"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "serving.local: error: " in line]
    assert "at least one of --port or --grpc-socket-path must be set" in line
    assert "loaded threshold" not in result.stdout + result.stderr


@pytest.mark.parametrize("text", ["grpc.max_connection_age_ms", "a=1,,b=2", "=5"])
def test_channel_arguments_that_are_not_key_value_are_refused(text):
    """parseGrpcChannelArgs reads key_val[1] of every comma-separated item; an item without "="
    has none (undefined behaviour in TF Serving): refused here, naming the item."""
    result = run_module("serving.local", "--grpc-channel-arguments", text, "--rest-port", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--grpc-channel-arguments" in result.stderr and "key=value" in result.stderr


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("", []),
        ("grpc.max_connection_age_ms=2000", [("grpc.max_connection_age_ms", 2000)]),
        (" a = 7 ,b=-3", [(" a ", 7), ("b", -3)]),  # SimpleAtoi trims the value; the key is kept
        ("a=2147483647,b=2147483648", [("a", 2147483647), ("b", "2147483648")]),  # past int32: text
        ("a=12ms,b=0x10,c=", [("a", "12ms"), ("b", "0x10"), ("c", "")]),
        ("a=1=2", [("a", 1)]),  # Split on "=": key_val[0] and key_val[1], the rest dropped
    ],
)
def test_channel_arguments_parse_as_tf_serving_parses_them(text, parsed):
    """server.cc parseGrpcChannelArgs (str_util::Split on "," then "=") and BuildAndStart's
    absl::SimpleAtoi into an int32."""
    assert grpc_channel_arguments(text) == parsed
