"""SIGTERM/SIGINT: the server stops taking new calls, finishes the ones in flight, and exits 0."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array

ROWS = 2048 * 1024  # x 2 columns of float32: a 16 MiB request, long enough to be caught in flight


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda signum: signum.name)
def test_in_flight_requests_complete_and_exit_is_clean(model_dir, signum):
    x = np.tile(np.asarray([[0.05, 0.5]], np.float32), (ROWS, 1))
    results: list[tuple[float, str]] = []  # (finished at, "ok" / "wrong" / status code)
    stop_sending = threading.Event()

    def client(address: str) -> None:
        stubs = ServingStubs(address)
        try:
            while not stop_sending.is_set():
                try:
                    response = stubs.prediction.Predict(predict_request(x), timeout=60)
                    mask = tensor_array(response.outputs["mask"])
                    ok = mask.shape == x.shape and mask[0].tolist() == [0, 1] and mask[-1].tolist() == [0, 1]
                    results.append((time.monotonic(), "ok" if ok else "wrong"))
                except grpc.RpcError as exc:
                    results.append((time.monotonic(), exc.code().name))
                    return
        finally:
            stubs.close()

    with embedded_server(model_dir) as handle:
        threads = [threading.Thread(target=client, args=(handle.address,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(results) < 3 and time.monotonic() < deadline:  # requests are flowing
            time.sleep(0.05)
        signalled_at = time.monotonic()
        handle.process.send_signal(signum)
        exit_code = handle.process.wait(timeout=60)
        stop_sending.set()
        for thread in threads:
            thread.join(timeout=60)
        log = handle.log()

    assert exit_code == 0, log
    outcomes = [outcome for _, outcome in results]
    assert "wrong" not in outcomes
    # A call that reaches the server after the signal is refused: gRPC core answers calls it has not
    # yet handed to the application with UNAVAILABLE, or resets the stream (CANCELLED) when the
    # request was still uploading. Either way only after the signal, and never for a call in flight.
    assert set(outcomes) <= {"ok", "UNAVAILABLE", "CANCELLED"}, outcomes
    assert all(at > signalled_at for at, outcome in results if outcome != "ok"), results
    finished_after_signal = [outcome for at, outcome in results if at > signalled_at and outcome == "ok"]
    assert finished_after_signal, "no request was in flight when the signal came: nothing was proven"
    assert f"serving.local: shutting down ({signum.name}): finishing in-flight requests" in log
    assert log.rstrip().endswith("serving.local: stopped")
    assert "Traceback" not in log
