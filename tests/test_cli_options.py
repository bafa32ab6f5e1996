"""One rule for CLI values and their environment defaults, in every CLI (client.cli_options).

A bad environment value is one line naming the variable, exit 2 (as a bad flag), never a
traceback; a value on the command line wins over the variable; booleans read alike everywhere.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from client import cli_options
from tests.support.processes import cli_env, run_module


def _one_line_usage_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("module", "args", "variable", "value", "flag"),
    [
        ("serving.launch", ["serve"], "SERVE_TIMEOUT", "abc", "--timeout"),
        ("serving.launch", ["serve"], "GRPC_PORT", "99999", "--grpc-port"),
        ("serving.launch", ["serve"], "SERVER", "k8s", "--server"),
        ("serving.launch", ["serve"], "DRY_RUN", "maybe", "--dry-run"),
        ("serving.launch", ["logs"], "LOG_LINES", "many", "--lines"),
        ("serving.local", [], "SERVING_LOCAL_PORT", "abc", "--port"),
        ("serving.local", [], "SERVING_LOCAL_ENABLE_BATCHING", "maybe", "--enable-batching"),
        ("serving.local", [], "SERVING_LOCAL_MAX_MESSAGE_BYTES", "-1", "--max-message-bytes"),
        ("serving.local", [], "SERVING_LOCAL_SHUTDOWN_GRACE_SECONDS", "nan", "--shutdown-grace-seconds"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_variable(module, args, variable, value, flag):
    result = run_module(module, *args, env=cli_env(**{variable: value}), timeout=60)
    _one_line_usage_error(result, f"{variable}={value!r}", flag)


def test_a_bad_shard_variable_is_one_line_too(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(4, np.float32))
    result = run_module("client.predict", tmp_path / "x.npy", env=cli_env(THRESHOLD_SHARD="abc"), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr and "'abc'" in result.stderr


def test_the_command_line_wins_over_a_bad_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVING_LOCAL_PORT", "abc")
    from serving.local.flags import parse_options

    assert parse_options(["--port", "9000", "--model-base-path", str(tmp_path)]).grpc_port == 9000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_booleans_read_alike_in_every_cli(text, expected, monkeypatch):
    monkeypatch.setenv("BATCHING", text)  # serving.launch: --no-batching's default
    monkeypatch.setenv("SERVING_LOCAL_ENABLE_BATCHING", text)  # serving.local: --enable-batching's default
    from serving.launch import build_parser
    from serving.local.flags import parse_options

    assert cli_options.parse_args(build_parser(), ["serve"]).batching is expected
    assert parse_options([]).enable_batching is expected


def test_blank_means_the_default(monkeypatch):
    monkeypatch.setenv("GRPC_PORT", " ")
    monkeypatch.setenv("BATCHING", "")
    from serving.launch import build_parser

    args = cli_options.parse_args(build_parser(), ["serve"])
    assert args.grpc_port == 8500 and args.batching is True


def test_old_flag_spellings_still_work_but_are_not_shown(monkeypatch):
    """--model-name and --models-dir in every CLI; --model and --model-dir stay as hidden aliases."""
    from client.bench.__main__ import build_parser as bench_parser
    from client.predict import build_parser as predict_parser
    from serving.launch import build_parser as launch_parser

    assert cli_options.parse_args(predict_parser(), ["x.npy", "--model", "m"]).model_name == "m"
    assert cli_options.parse_args(bench_parser(), ["--model", "m"]).model_name == "m"
    assert str(cli_options.parse_args(launch_parser(), ["serve", "--model-dir", "d"]).models_dir) == "d"
    for parser in (predict_parser(), bench_parser()):
        help_text = parser.format_help()
        assert "--model-name" in help_text and "--model " not in help_text and "--model\n" not in help_text
    assert "--model-dir" not in launch_parser().format_help()


def test_a_flag_value_is_parsed_by_the_same_rule_as_its_variable():
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--port", type=cli_options.port, default=8500)
    with pytest.raises(SystemExit):
        cli_options.parse_args(parser, ["--port", "99999"])
    assert cli_options.port("0") == 0
