#!/usr/bin/python3
"""e2e_receiver.py LOG PORTFILE -- a Call Event receiver for e2e.sh (stdlib only).

Listens on 127.0.0.1 on a free port, writes that port to PORTFILE once it
accepts connections, and appends every request to LOG as one JSON line:
  {"t": unix time, "method", "path", "query": {...}, "form": {...},
   "params": query+form merged, "order": their names in order, "event": X-CallEvents-Event,
   "webhookId": webhook-id, "attempt": X-CallEvents-Attempt, "test": X-CallEvents-Test}
Answers 200 to everything. Stops on SIGTERM/SIGINT.
"""
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG, PORTFILE = sys.argv[1], sys.argv[2]
lock = threading.Lock()


def parse(qs):
    # keep_blank_values: all ten parameters are sent, empty when unknown
    out = {}
    for k, v in urllib.parse.parse_qsl(qs, keep_blank_values=True):
        out[k] = v
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        query = parse(u.query)
        form = {}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype == "application/x-www-form-urlencoded":
            form = parse(body.decode("utf-8", "replace"))
        order = [k for k, _ in urllib.parse.parse_qsl(u.query, keep_blank_values=True)]
        if form:
            order += [k for k, _ in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)]
        rec = {
            "t": round(time.time(), 3),
            "method": self.command,
            "path": u.path,
            "query": query,
            "form": form,
            "params": {**query, **form},
            "order": order,
            "event": self.headers.get("X-CallEvents-Event"),
            "webhookId": self.headers.get("webhook-id"),
            "attempt": self.headers.get("X-CallEvents-Attempt"),
            "test": self.headers.get("X-CallEvents-Test"),
        }
        line = json.dumps(rec) + "\n"
        with lock:
            with open(LOG, "a") as f:
                f.write(line)
                f.flush()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    do_GET = do_POST = do_PUT = do_HEAD = handle_any

    def log_message(self, fmt, *args):
        pass


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=srv.shutdown).start())
    open(LOG, "a").close()
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
