#!/usr/bin/env python3
"""A webhook receiver for the tests: every POST is verified with the Standard Webhooks
reference library (PyPI standardwebhooks, installed by scripts/standardwebhooks.sh) and
answered 204 when its signature holds, 400 when not. One JSON line per request is appended to
the file named by the first argument (the port is the second, else any free one): {"ok", "id", "type", "error"}. The port it listens on
(127.0.0.1) is printed on stdout. The secret is read from WEBHOOK_SECRET (whsec_...)."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

HOOK = Webhook(os.environ["WEBHOOK_SECRET"])
LOG = open(sys.argv[1], "a", encoding="utf-8")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        entry = {"ok": False, "id": self.headers.get("webhook-id"), "type": None, "error": None}
        try:
            payload = HOOK.verify(body, dict(self.headers.items()))
            entry["ok"] = True
            entry["type"] = payload.get("type")
        except Exception as e:  # noqa: BLE001 - any failure is a refusal, recorded
            entry["error"] = str(e)
        LOG.write(json.dumps(entry) + "\n")
        LOG.flush()
        self.send_response(204 if entry["ok"] else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
