"""A local HTTP server for download tests (127.0.0.1 only, a random free port).

Serves in-memory files with byte ranges (``Range: bytes=a-`` and ``bytes=a-b``, as
browsers, yt-dlp and ffmpeg send them) and can misbehave on purpose: fail a path with
503 a number of times, cut a transfer short once, or ignore range requests.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
TYPES = {".mp4": "video/mp4", ".json": "application/json", ".csv": "text/csv"}


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)  # "/name" -> content
    fail: dict[str, int] = field(default_factory=dict)  # "/name" -> 503s still to send
    cut_once: dict[str, int] = field(default_factory=dict)  # "/name" -> bytes, then close
    ignore_range: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, range
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self, path: str) -> list[str | None]:
        """The Range header of every GET of ``path`` (None: no range)."""
        return [r for m, p, r in self.requests if m == "GET" and p == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def _serve(self, body: bool) -> None:
        state: Behaviour = self.server.behaviour
        path = self.path.split("?", 1)[0]
        header = self.headers.get("Range")
        with state.lock:
            state.requests.append((self.command, path, header))
            failing = state.fail.get(path, 0)
            if failing:
                state.fail[path] = failing - 1
            cut = state.cut_once.pop(path, None) if body and not failing else None
        if failing:
            self.send_response(503, "Service Unavailable")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state.files.get(path)
        if data is None:
            self.send_response(404, "Not Found")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end, status = 0, len(data) - 1, 200
        match = _RANGE.match(header or "")
        if match and path not in state.ignore_range:
            start = int(match.group(1))
            end = min(int(match.group(2)), len(data) - 1) if match.group(2) else len(data) - 1
            if start >= len(data):
                self.send_response(416, "Range Not Satisfiable")
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        chunk = data[start : end + 1]
        self.send_response(status)
        suffix = path[path.rfind(".") :] if "." in path else ""
        self.send_header("Content-Type", TYPES.get(suffix, "application/octet-stream"))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        if cut is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if not body:
            return
        if cut is not None:
            self.wfile.write(chunk[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        try:
            self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # ffmpeg closes after seeking
            self.close_connection = True

    def do_GET(self):  # noqa: N802 (BaseHTTPRequestHandler's name)
        self._serve(body=True)

    def do_HEAD(self):  # noqa: N802
        self._serve(body=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients (ffmpeg) drop connections after seeking: not an error here


class LocalServer:
    """``with LocalServer() as server:`` ... ``server.url("/a.json")``.

    ``handler``: another request handler class (tests/local_openai.py's chat server); it
    reaches this object as ``self.server.owner``.
    """

    def __init__(self, behaviour: Behaviour | None = None, handler=_Handler):
        self.behaviour = behaviour or Behaviour()
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.behaviour = self.behaviour
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
