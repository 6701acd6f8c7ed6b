"""The HTTP target of the load-balancer e2e tests: a server on 127.0.0.1 answering JSON with
its name, the path and the headers it received (`/slow?s=N` sleeps first, `/health` answers
`health_status`)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend:
    """An HTTP server on 127.0.0.1 that answers with its name, the path and the headers it got.
    `/slow?s=N` sleeps N seconds first; `/health` answers `health_status`."""

    def __init__(self, name="target", port=0):
        self.name = name
        self.health_status = 200
        backend = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/slow"):
                    time.sleep(float(self.path.split("s=")[1]))
                status = backend.health_status if self.path == "/health" else 200
                body = json.dumps({"name": backend.name, "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
