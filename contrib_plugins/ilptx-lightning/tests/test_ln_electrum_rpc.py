"""ElectrumRpc without a daemon: a refused connection and an HTTP error are one BackendError naming the command, and
the request is Electrum's JSON-RPC shape (named params, basic auth)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ln_regtest import free_port

from ilptx_lightning.backend import BackendError
from ilptx_lightning.electrum import ElectrumRpc


def test_refused_connection_is_a_backend_error():
    """Nothing listening: BackendError 'Electrum nodeid: ConnectionRefusedError ...'."""
    with pytest.raises(BackendError, match="Electrum nodeid: .*(Refused|refused)"):
        ElectrumRpc(f"http://127.0.0.1:{free_port()}", "u", "p", timeout_s=5).call("nodeid")


class _Daemon(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers["Authorization"], body))
        if self.headers["Authorization"] != "Basic dTpw":  # u:p
            self.send_response(401)
            self.end_headers()
            return
        answer = {"id": body["id"], "jsonrpc": "2.0", "error": {"code": 1, "message": "Request not found"}} \
            if body["method"] == "get_request" else {"id": body["id"], "jsonrpc": "2.0", "result": "02" + "ab" * 32}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_request_shape_auth_and_errors():
    """Named params and basic auth are sent; an error answer and HTTP 401 are BackendErrors with Electrum's words."""
    server = HTTPServer(("127.0.0.1", 0), _Daemon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert ElectrumRpc(url, "u", "p").call("nodeid") == "02" + "ab" * 32
        with pytest.raises(BackendError, match="Electrum get_request: Request not found"):
            ElectrumRpc(url, "u", "p").call("get_request", request_id="ff")
        with pytest.raises(BackendError, match="HTTP 401"):
            ElectrumRpc(url, "u", "wrong").call("nodeid")
        auth, body = _Daemon.seen[1]
        assert auth == "Basic dTpw" and body["method"] == "get_request" and body["params"] == {"request_id": "ff"}
        assert body["jsonrpc"] == "2.0" and isinstance(body["id"], int)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
