"""A small HTTP backend for the API Gateway e2e tests: echoes what it received (method, path,
query, headers, body) as JSON, sleeps on /slow?ms=N, and counts requests."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Backend:
    def __init__(self):
        self.requests = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = {
                    "method": self.command,
                    "path": parts.path,
                    "rawQuery": parts.query,
                    "query": parse_qs(parts.query, keep_blank_values=True),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "bodyLength": len(body),
                }
                backend.requests.append(seen)
                if parts.path.endswith("/slow"):
                    ms = int(parse_qs(parts.query).get("ms", ["1000"])[0])
                    time.sleep(ms / 1000)
                out = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                # a backend CORS header API Gateway must drop when CORS is configured
                self.send_header("Access-Control-Allow-Origin", "https://backend.example")
                self.send_header("X-Backend", "yes")
                try:
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if self.command != "HEAD":
                    try:
                        self.wfile.write(out)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the gateway gave up (integration timeout)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
