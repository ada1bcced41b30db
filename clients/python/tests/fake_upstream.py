"""A small OpenAI-style streaming server the tests run in-process.

It stands in for an upstream (the `fake/openai` model of prism-test.toml points at it) and, to
test what the client does when the gateway's own stream is cut, for the gateway itself. The last
user message picks the behaviour:
  "cut"      two content chunks, then the body ends cleanly without `data: [DONE]`
  "error"    one content chunk, then an error event (`upstream_error`)
  "endless"  a content chunk every 20 ms until the client goes away (`closed` counts those)
  otherwise  a complete stream (role, two content chunks, finish, usage, `[DONE]`)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1735689600,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeUpstream:
    def __init__(self, port: int = 0) -> None:
        self.requests = 0
        self.closed = 0
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                state.requests += 1
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                messages = body.get("messages") or [{}]
                last = str(messages[-1].get("content", "")).strip()
                model = body.get("model", "fake")
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("x-request-id", "req_fake")
                self.send_header("connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(_chunk(model, {"role": "assistant", "content": ""}))
                    if last == "endless":
                        while True:
                            self.wfile.write(_chunk(model, {"content": "more "}))
                            self.wfile.flush()
                            time.sleep(0.02)
                    self.wfile.write(_chunk(model, {"content": "Hello "}))
                    if last == "error":
                        # Past the first content, so the gateway has committed the stream.
                        self.wfile.flush()
                        time.sleep(0.2)
                        error = {"error": {"message": "upstream failed (fake)", "type": "upstream_error", "code": "upstream_status_500"}}
                        self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
                        return
                    self.wfile.write(_chunk(model, {"content": "world"}))
                    if last == "cut":
                        return
                    self.wfile.write(_chunk(model, {}, "stop"))
                    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
                    self.wfile.write(
                        f"data: {json.dumps({'id': 'chatcmpl-fake', 'object': 'chat.completion.chunk', 'created': 1735689600, 'model': model, 'choices': [], 'usage': usage})}\n\n".encode()
                    )
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    state.closed += 1
                finally:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
