"""The session's thread pools, set as TF Serving's --tensorflow_*_parallelism flags set them.

Follows ``tensorflow_serving/model_servers/server.cc`` (``Server::BuildAndStart``): with intra-op
or inter-op parallelism given, the session gets those two (0 for the other: TensorFlow chooses);
otherwise both pools get the session parallelism; all three given, the server refuses to start
with InvalidArgument in the words pinned below.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.local.flags import SessionThreads
from serving.local.servable import load_servable
from tests.support.embedded_server import embedded_server
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import run_module

ALL_THREE = (
    "Either configure server_options.tensorflow_session_parallelism or "
    "(server_options.tensorflow_intra_op_parallelism, "
    "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
)


def test_all_three_flags_are_refused_in_tf_servings_words():
    result = run_module(
        "serving.local",
        "--tensorflow-session-parallelism",
        "2",
        "--tensorflow-intra-op-parallelism",
        "1",
        "--tensorflow-inter-op-parallelism",
        "1",
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert ALL_THREE in result.stderr


def test_a_negative_thread_count_is_a_usage_error():
    result = run_module("serving.local", "--tensorflow-intra-op-parallelism", "-1", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--tensorflow-intra-op-parallelism" in result.stderr


@pytest.mark.parametrize(
    "threads,pools",
    [
        (SessionThreads(), (0, 0)),
        (SessionThreads(session=3), (3, 3)),
        (SessionThreads(intra_op=1), (1, 0)),
        (SessionThreads(session=3, inter_op=2), (0, 2)),  # the session parallelism is ignored
        (SessionThreads(session=3, intra_op=1, inter_op=0), (1, 0)),
        (SessionThreads(intra_op=1, inter_op=2), (1, 2)),
    ],
)
def test_the_pools_follow_server_cc(threads, pools):
    assert threads.pools == pools


def test_the_session_is_created_with_those_pools(model_dir):
    servable = load_servable(
        "threshold", 1, model_dir / "threshold" / "1", SessionThreads(intra_op=1, inter_op=2)
    )
    config = servable._session._config  # the ConfigProto tf.compat.v1.Session was created with
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 2)
    mask = servable.run("serving_default", {"x": np.float32([REFERENCE_INPUT])})["mask"]
    assert mask.tolist() == [REFERENCE_MASK]


def test_a_server_with_one_thread_per_pool_says_so_and_answers_exactly(model_dir, tmp_path):
    np.save(tmp_path / "x.npy", np.float32([REFERENCE_INPUT] * 3))
    flags = ("--tensorflow-intra-op-parallelism", "1", "--tensorflow-inter-op-parallelism", "1")
    with embedded_server(model_dir, *flags) as server:
        assert "serving.local: TensorFlow session threads: intra-op 1, inter-op 1\n" in server.log()
        result = run_module(
            "client.predict",
            tmp_path / "x.npy",
            "--server",
            server.address,
            "-o",
            tmp_path / "m.npy",
            "--json",
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert np.load(tmp_path / "m.npy").tolist() == [REFERENCE_MASK] * 3
