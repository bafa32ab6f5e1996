"""Many replicas behind one ``--server``: gRPC target syntax, the balancing policy, calls per address.

A gRPC channel keeps one HTTP/2 connection per address it picks, and the default policy
(``pick_first``) picks one: behind a Kubernetes ClusterIP Service every request of a run goes
to the same pod. gRPC's own answer is client-side balancing: a target that names every replica
(``dns:///threshold-serving-headless:8500`` resolves a headless Service to one address per
ready pod; ``ipv4:10.0.0.1:8500,10.0.0.2:8500`` lists them) with the ``round_robin`` policy,
which opens a connection to each and sends each call to the next READY one. A replica that
dies drops out of the rotation when its connection breaks; the calls it had in flight fail with
UNAVAILABLE and ``client.channel.call_with_retries`` sends them again, to the others.

Python's gRPC does not say which address served a call, so ``AddressTally`` reads the counts
the gRPC core keeps per connection (channelz: calls succeeded per subchannel, by address).
"""

from __future__ import annotations

import json
import threading
import time

#: Name-resolver schemes gRPC understands in a target; a target without one is host:port (DNS).
TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")
LB_POLICIES = ("pick_first", "round_robin")
REFRESH_SECONDS = 1.0  # how often the tally looks again while calls run (a replica may vanish)


def is_target_uri(target: str) -> bool:
    """Whether target is in gRPC's scheme syntax (``dns:///name:8500``), not a plain host:port."""
    return target.strip().lower().startswith(TARGET_SCHEMES)


def names_several_replicas(target: str) -> bool:
    """Whether target can resolve to several servers: ``dns:`` names, or an ipv4:/ipv6: list."""
    target = target.strip().lower()
    return target.startswith("dns:") or (target.startswith(("ipv4:", "ipv6:")) and "," in target)


def choose_lb_policy(target: str, lb_policy: str | None = None) -> str:
    """The policy a run uses: the one asked for, else round_robin for several replicas, else pick_first."""
    if lb_policy is not None:
        if lb_policy not in LB_POLICIES:
            raise ValueError(f"lb_policy must be one of {', '.join(LB_POLICIES)}, got {lb_policy!r}")
        return lb_policy
    return "round_robin" if names_several_replicas(target) else "pick_first"


def channel_options(lb_policy: str) -> list[tuple[str, object]]:
    """Channel arguments for the policy, with per-address counting switched on.

    A local subchannel pool keeps this channel's connections (and their call counts) its own
    instead of sharing them with other channels of the process to the same address.
    """
    return [
        ("grpc.lb_policy_name", lb_policy),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_channelz", 1),
    ]


def display_address(subchannel_target: str) -> str:
    """'127.0.0.1:8500' from gRPC's resolved 'ipv4:127.0.0.1:8500' ('[::1]:8500' from 'ipv6:...')."""
    for scheme in ("ipv4:", "ipv6:"):
        if subchannel_target.startswith(scheme):
            return subchannel_target[len(scheme) :]
    return subchannel_target


def _channelz():
    from grpc._cython import cygrpc  # the functions the grpcio-channelz service wraps

    return cygrpc


def _top_channels() -> list[dict]:
    cygrpc, channels, start = _channelz(), [], 0
    while True:
        page = json.loads(cygrpc.channelz_get_top_channels(start))
        found = page.get("channel", [])
        channels += found
        if page.get("end", True) or not found:
            return channels
        start = max(int(channel["ref"]["channelId"]) for channel in found) + 1


def channel_id(target: str, known: set[int]) -> int | None:
    """The channelz id of the newest channel to target not in known (None when channelz is off)."""
    try:
        ids = [
            int(c["ref"]["channelId"])
            for c in _top_channels()
            if c.get("data", {}).get("target") == target and int(c["ref"]["channelId"]) not in known
        ]
    except Exception:  # noqa: BLE001 - counting is a report, never a reason to fail a run
        return None
    return max(ids, default=None)


def channel_ids(target: str) -> set[int]:
    """Every channelz channel id to target right now (to tell a new channel from older ones)."""
    try:
        channels = _top_channels()
        return {int(c["ref"]["channelId"]) for c in channels if c.get("data", {}).get("target") == target}
    except Exception:  # noqa: BLE001
        return set()


def calls_succeeded(channel: int | None) -> dict[int, tuple[str, int]]:
    """{subchannel id: (address, calls succeeded)} of a channel, from the gRPC core's channelz."""
    if channel is None:
        return {}
    try:
        cygrpc = _channelz()
        data = json.loads(cygrpc.channelz_get_channel(channel)).get("channel", {})
        counts = {}
        for ref in data.get("subchannelRef", []):
            sub_id = int(ref["subchannelId"])
            sub = json.loads(cygrpc.channelz_get_subchannel(sub_id)).get("subchannel", {}).get("data", {})
            counts[sub_id] = (display_address(sub.get("target", "?")), int(sub.get("callsSucceeded", 0)))
        return counts
    except Exception:  # noqa: BLE001 - the channel closed, or this grpc build has no channelz
        return {}


class AddressTally:
    """Calls each address answered on one channel since ``start()``.

    Counts are read from the gRPC core (cheap, about a millisecond) at start, at most once per
    ``REFRESH_SECONDS`` while calls run (``refresh_soon``), and at ``stop``; reading while the run
    goes on keeps the count of a replica whose connection is dropped mid-run (a pod that left the
    DNS answer). Counts are per channel: runs sharing one client at the same time share them.
    """

    def __init__(self, channel: int | None):
        self.channel = channel
        self._lock = threading.Lock()
        self._baseline: dict[int, tuple[str, int]] = {}
        self._latest: dict[int, tuple[str, int]] = {}
        self._next = 0.0

    def start(self) -> None:
        with self._lock:
            self._baseline = calls_succeeded(self.channel)
            self._latest = dict(self._baseline)
            self._next = time.monotonic() + REFRESH_SECONDS

    def refresh_soon(self) -> None:
        """Read the counts again if the last read is older than REFRESH_SECONDS (call it per call)."""
        if time.monotonic() >= self._next and self._lock.acquire(blocking=False):
            try:
                self._latest.update(calls_succeeded(self.channel))
                self._next = time.monotonic() + REFRESH_SECONDS
            finally:
                self._lock.release()

    def stop(self) -> dict[str, int]:
        """{address: calls answered since start}, busiest first."""
        with self._lock:
            self._latest.update(calls_succeeded(self.channel))
            answered: dict[str, int] = {}
            for sub_id, (address, count) in self._latest.items():
                since = count - self._baseline.get(sub_id, (address, 0))[1]
                if since > 0:
                    answered[address] = answered.get(address, 0) + since
        return dict(sorted(answered.items(), key=lambda item: (-item[1], item[0])))
