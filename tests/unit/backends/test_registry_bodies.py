"""Answer bodies over a real socket: a registry whose answer never ends is cut off at the cap.

``tests/reliability/test_hostile_images.py`` runs every kind of answer against an in-memory
transport; this runs the two ways a body can lie (no end, chunked; a ``Content-Length`` that
is too small) through httpx's real HTTP/1.1 transport, on a loopback server that counts what
it managed to send before the client hung up. (Over HTTP/1.1 a ``Content-Length`` is obeyed:
the rest of such a body is never read as part of the answer.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lifecycle.backends.registry import RegistryStore, RetryPolicy
from lifecycle.errors import ImageError
from lifecycle.oci.media import OCI_MANIFEST
from lifecycle.oci.models import MAX_MANIFEST_BYTES

_PIECE = b" " * (64 << 10)
_SOCKET_SLACK = 16 << 20  # what kernel buffers can hold on top of what the client read


class _Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sent: list[int]
    chunked: bool

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", OCI_MANIFEST)
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", "100")  # a lie: the body goes on
        self.end_headers()
        total = 0
        try:
            while total < 1 << 30:
                if self.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(_PIECE), _PIECE))
                else:
                    self.wfile.write(_PIECE)
                total += len(_PIECE)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.sent.append(total)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=[True, False], ids=["chunked", "content-length-lies"])
def endless(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[int], bool]]:
    sent: list[int] = []
    handler = type("Handler", (_Endless,), {"sent": sent, "chunked": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", sent, request.param
    finally:
        server.shutdown()
        server.server_close()


def test_an_endless_manifest_is_cut_off_at_its_cap_over_http(endless: tuple[str, list[int], bool]) -> None:
    host, sent, chunked = endless
    retry = RetryPolicy(attempts=1, timeout=30.0)
    with RegistryStore(host, retry=retry) as store, pytest.raises(ImageError) as raised:
        store.image("app:1")
    message = str(raised.value)
    assert "\n" not in message
    if not chunked:  # not a JSON object: the 100 bytes it announced, all spaces
        assert "the manifest the registry served is not a JSON object" in message
    else:
        assert f"/v2/app/manifests/1 goes on, more than the {MAX_MANIFEST_BYTES} bytes allowed" in message
    for _ in range(200):  # the server notices the hang-up when its next write fails
        if sent:
            break
        threading.Event().wait(0.05)
    assert sent and sent[0] < MAX_MANIFEST_BYTES + _SOCKET_SLACK, sent
