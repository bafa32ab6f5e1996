"""``python -m client.bench``: tiny bounded runs against a real loopback server, outputs well-formed.

No timing asserts: only that every level is reported, bounded as asked, in every format.
"""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from bench.fake_tf_serving import FakeTfServing
from client.errors import ServerUnavailable
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env, run_module

COLUMNS = [
    "concurrency",
    "requests_per_s",
    "elements_per_s",
    "mb_per_s",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "requests",
]


@pytest.fixture(scope="module")
def reference_server():
    """The fake TF Serving (bench.fake_tf_serving) on a free loopback port, answering in tensor_content."""
    server = FakeTfServing(tensor_content=True)
    yield server.address
    server.stop()


def bench(address: str, *args: str):
    return run_module(
        "client.bench",
        "--server",
        address,
        "--rows",
        "4",
        "--cols",
        "8",
        "--duration",
        "5",
        "--warmup",
        "2",
        *args,
        timeout=120,
    )


def test_bench_writes_table_csv_json_and_png_for_every_level(reference_server, tmp_path):
    out_csv, out_json, out_png = tmp_path / "out.csv", tmp_path / "out.json", tmp_path / "out.png"
    result = bench(
        reference_server,
        "--concurrency",
        "1,3",
        "--requests",
        "30",
        "--csv",
        out_csv,
        "--json",
        out_json,
        "--plot",
        out_png,
    )
    assert result.returncode == 0, result.stderr

    lines = result.stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["concurrency", "req/s"])
    assert lines[header].split() == [
        "concurrency",
        "req/s",
        "elements/s",
        "MB/s",
        "p50",
        "ms",
        "p90",
        "ms",
        "p95",
        "ms",
        "p99",
        "ms",
        "errors",
        "requests",
    ]
    assert [line.split()[0] for line in lines[header + 1 :]] == ["1", "3"]

    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == COLUMNS
    assert [int(row["concurrency"]) for row in rows] == [1, 3]
    for row in rows:
        assert int(row["requests"]) == 30 and int(row["errors"]) == 0
        assert float(row["requests_per_s"]) > 0
        assert float(row["elements_per_s"]) == pytest.approx(float(row["requests_per_s"]) * 32)
        assert float(row["p50_ms"]) <= float(row["p90_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"])

    report = json.loads(out_json.read_text())
    assert (report["rows"], report["cols"], report["signature"]) == (4, 8, "serving_default")
    assert report["outputs"] == {"mask": "float32[4, 8]"}
    assert report["request_bytes"] > 4 * 8 * 4 and report["response_bytes"] > 4 * 8 * 4
    assert [point["concurrency"] for point in report["points"]] == [1, 3]
    assert all(point["error_codes"] == {} for point in report["points"])

    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_stops_at_the_request_count(reference_server):
    result = bench(reference_server, "--concurrency", "2", "--requests", "7", "--csv", "-", "--quiet")
    assert result.returncode == 0, result.stderr
    (row,) = csv.DictReader(result.stdout.splitlines())
    assert int(row["requests"]) == 7


def test_bench_stops_at_the_duration(reference_server):
    result = bench(
        reference_server,
        "--concurrency",
        "1",
        "--requests",
        "100000000",
        "--duration",
        "0.3",
        "--json",
        "-",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    (point,) = json.loads(result.stdout)["points"]
    assert 0 < point["requests"] < 100000000
    assert point["seconds"] < 30  # bounded: the loop ended long before the request count


def test_bench_compact_signature_reports_uint8_outputs(reference_server):
    result = bench(
        reference_server,
        "--signature",
        "compact",
        "--concurrency",
        "1",
        "--requests",
        "5",
        "--json",
        "-",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outputs"] == {"mask": "uint8[4, 8]"}
    assert report["response_bytes"] < report["request_bytes"]


def test_bench_without_a_server_says_where_it_looked():
    address = f"127.0.0.1:{free_port()}"
    result = run_module("client.bench", "--server", address, "--requests", "1", "--wait", "1", timeout=60)
    assert result.returncode == ServerUnavailable.exit_code
    assert address in result.stderr and "--server" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_takes_the_server_from_the_clients_env_not_make_serves_server_choice():
    address = f"127.0.0.1:{free_port()}"
    env = {**cli_env(), "THRESHOLD_SERVER": address, "SERVER": "local"}  # SERVER is make serve's backend
    result = run_module("client.bench", "--requests", "1", "--wait", "1", env=env, timeout=60)
    assert result.returncode == ServerUnavailable.exit_code and address in result.stderr, result.stderr


def test_bench_rejects_bad_concurrency():
    result = run_module("client.bench", "--concurrency", "1,zero", timeout=60)
    assert result.returncode == 2
    assert "--concurrency" in result.stderr


def test_bench_never_imports_tensorflow(reference_server):
    code = (
        "import sys; from client.bench.__main__ import main; "
        f"rc = main(['--server', '{reference_server}', '--rows', '1', '--cols', '8', "
        "'--concurrency', '1', '--requests', '3', '--quiet']); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(rc)"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_bench_against_the_embedded_server_reports_the_real_models_outputs(model_dir):
    from tests.support.embedded_server import embedded_server

    with embedded_server(model_dir) as server:
        for signature, output in (("serving_default", "float32[4, 8]"), ("compact", "uint8[4, 8]")):
            result = bench(
                server.address,
                "--signature",
                signature,
                "--concurrency",
                "1,2",
                "--requests",
                "10",
                "--json",
                "-",
                "--quiet",
            )
            assert result.returncode == 0, result.stderr + server.log()[-2000:]
            report = json.loads(result.stdout)
            assert report["outputs"] == {"mask": output}
            assert [(p["requests"], p["errors"]) for p in report["points"]] == [(10, 0), (10, 0)]
