"""Slow clients are cut off: a request that has not fully arrived `request_timeout_s`
after the connection opened (or the previous answer) is closed without an answer. Each
test runs on both HTTP parsers (`PAYGUARD_HTTP`): httptools, the default, and h11.

Behaviour, not speed: each test waits for the close with a generous margin and fails
only if the server never closes the connection."""

import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from auth_support import Server

from payguard.config import load_settings

TIMEOUT_S = 1
MARGIN_S = 10


PARSERS = ["httptools", "h11"]


@pytest.fixture(scope="module", params=PARSERS)
def strict(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("payguard-timeouts")
    settings = msgspec.structs.replace(
        load_settings(env={"PAYGUARD_DATA_DIR": str(data), "PAYGUARD_HTTP": request.param}),
        ruleset=Path(__file__).resolve().parents[2] / "rules" / "default.yaml",
        request_timeout_s=TIMEOUT_S,
        max_header_bytes=2048,
    )
    assert settings.http == request.param
    srv = Server(data, settings).start()
    try:
        yield srv
    finally:
        srv.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S + MARGIN_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; socket.timeout if it never does. A
    reset after the answer (the server closed while the client was still sending) ends
    the reading like a close."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        if not received:
            raise
    return received


def _send_until_refused(sock: socket.socket, chunks: list[bytes]) -> None:
    """Send the chunks one by one; a server that refuses the request part-way closes the
    connection, and the sends after that fail, which is what the test expects of it."""
    try:
        for chunk in chunks:
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_half_sent_headers_are_cut_off(strict: Server) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
        assert _read_until_closed(sock) == b""


def test_a_slow_body_is_cut_off(strict: Server) -> None:
    with _connect(strict) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n" + b'{"event_id": "slow'
        )
        assert _read_until_closed(sock) == b""


def test_a_silent_connection_is_cut_off(strict: Server) -> None:
    with _connect(strict) as sock:
        assert _read_until_closed(sock) == b""


def test_a_complete_request_is_answered_and_oversized_headers_refused(strict: Server) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 200")
    with _connect(strict) as sock:
        # headers still growing past max_header_bytes (2048 here): refused, not buffered
        _send_until_refused(sock, [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096])
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 400")
    with _connect(strict) as sock:
        # the same, a few bytes at a time
        pads = [b"X-Pad: " + b"b" * 93 + b"\r\n"] * 40
        _send_until_refused(sock, [b"GET /healthz HTTP/1.1\r\nHost: x\r\n", *pads])
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 400")


def test_headers_under_the_limit_and_a_large_body_are_answered(strict: Server) -> None:
    """The head limit counts the request line and headers only, not the body after them,
    and starts again for the next request on a keep-alive connection."""
    body = b'{"event_id": "' + b"x" * 3000 + b'"}'  # larger than max_header_bytes
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Pad: " + b"p" * 1500 + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with _connect(strict) as sock:
        for _ in range(3):
            sock.sendall(head + body)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 422"), answer[:80]  # decoded, then refused


@pytest.mark.parametrize("parser", PARSERS)
def test_connections_beyond_max_concurrency_get_503(tmp_path: Path, parser: str) -> None:
    settings = msgspec.structs.replace(
        load_settings(env={"PAYGUARD_DATA_DIR": str(tmp_path), "PAYGUARD_HTTP": parser}),
        ruleset=Path(__file__).resolve().parents[2] / "rules" / "default.yaml",
        max_concurrency=2,
        keep_alive_s=60,
    )
    server = Server(tmp_path, settings).start()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with _connect(server) as first:
            first.sendall(request)  # answered, and the connection stays open (keep-alive)
            assert first.recv(65536).startswith(b"HTTP/1.1 200")
            with _connect(server) as second:  # two connections: the limit
                second.sendall(request)
                assert second.recv(65536).startswith(b"HTTP/1.1 503")
    finally:
        server.stop()
