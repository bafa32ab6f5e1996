"""What the CLIs add to a client error: the flags, variables and make targets that fix it.

Library errors (``client.errors``) say what failed and name the case (``kind``); a program using
``ThresholdClient`` has no ``--timeout`` to raise, so the advice lives here, with the CLIs.
"""

from __future__ import annotations

from client.errors import ThresholdClientError

HINTS = {
    "unreachable": "start one with `make serve`, or point --server / THRESHOLD_SERVER at a running server",
    "untrusted_certificate": "pass --ca-cert with the PEM of the CA that signed it",
    "tls_handshake": "check that the server speaks TLS on this port, and --ca-cert / --tls-server-name",
    "deadline": "raise --timeout or lower --batch-size",
    "credentials": "send credentials with THRESHOLD_TOKEN=<token>, --header 'authorization: Bearer <token>' "
    "or --client-cert/--client-key",
    "too_large": "lower --max-message-bytes or --batch-size",
    "no_bounds": "use --no-check to skip the check",
    "choose_key": "choose one with --key",
}


def with_hint(error: ThresholdClientError) -> str:
    """The error's message, and what to do about it on the command line when there is a hint."""
    hint = HINTS.get(getattr(error, "kind", ""))
    return f"{error}; {hint}" if hint else str(error)
