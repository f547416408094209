"""A local OpenAI-compatible chat-completions server for tests (127.0.0.1, a free port;
the server of tests/local_http.py with a chat handler).

Every ``POST`` is recorded in ``server.requests`` (``path``, ``auth``: the Authorization
header, ``body``: the JSON request) and answered by ``server.reply(body)``, which returns
``(status, content)``: a str is the assistant's message, wrapped in a chat-completion
payload; a dict is sent as the JSON body; bytes are sent as they are (a broken server).
With ``key`` set, a request without ``Authorization: Bearer <key>`` is answered 401
and never reaches ``reply``.

The server runs in a thread of the test process, so workflow jobs started by the test
(snakemake subprocesses) reach it too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from local_http import LocalServer

Reply = Callable[[dict], tuple[int, str | dict | bytes]]


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def do_POST(self):  # noqa: N802 (BaseHTTPRequestHandler's name)
        owner: ChatServer = self.server.owner
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization")
        with owner.behaviour.lock:
            owner.requests.append({"path": self.path, "auth": auth, "body": body})
        if owner.key is not None and auth != f"Bearer {owner.key}":
            status, content = 401, {"error": {"message": "invalid API key"}}
        else:
            status, content = owner.reply(body)
        if isinstance(content, str):
            content = {"choices": [{"message": {"role": "assistant", "content": content}}]}
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)  # a client that timed out and left: the server ignores it


class ChatServer(LocalServer):
    """``with ChatServer(reply, key=...) as server:`` ... ``server.base_url``."""

    def __init__(self, reply: Reply, *, key: str | None = None):
        super().__init__(handler=_ChatHandler)
        self.reply = reply
        self.key = key
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return self.url("/v1")
