"""Talking HTTP to a server under test: whole requests through http.client, odd ones byte by byte."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class RestAnswer:
    """An HTTP answer as it came: status, Content-Type, the body's bytes and every header."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The value of header name (any case), None if the answer has none."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def rest_answer(
    port: int,
    method: str,
    path: str,
    body: bytes | str | dict | None = None,
    *,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 60,
) -> RestAnswer:
    """The answer to one request to 127.0.0.1:port; dict bodies are sent as JSON."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    connection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
        if context is not None
        else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return RestAnswer(
            answer.status, answer.getheader("Content-Type", ""), answer.read(), tuple(answer.getheaders())
        )
    finally:
        connection.close()


def rest_call(
    port: int, method: str, path: str, body: bytes | str | dict | None = None, **kwargs
) -> tuple[int, str]:
    """(HTTP status, body text) of one request (see rest_answer)."""
    answer = rest_answer(port, method, path, body, **kwargs)
    return answer.status, answer.body.decode()


def rest_json(port: int, method: str, path: str, body=None, **kwargs) -> tuple[int, dict]:
    """(HTTP status, parsed JSON body) of one request."""
    status, text = rest_call(port, method, path, body, **kwargs)
    return status, json.loads(text)


def raw_exchange(port: int, request: bytes, *, half_close: bool = False, timeout: float = 60) -> bytes:
    """Send request bytes as they are (maybe half-closing afterwards); everything the server answers
    until it closes the connection or sends a whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            received += part
            if b"\r\n\r\n" not in received:
                continue
            head, _, rest = received.partition(b"\r\n\r\n")
            length = [
                line.split(b":", 1)[1]
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            ]
            if length and len(rest) >= int(length[0]):
                break
        return received


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP response (0 if there was none)."""
    parts = response.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
