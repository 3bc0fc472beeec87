#!/usr/bin/python3
"""Record the raw AMI byte stream of one Asterisk Manager session.

usage: ami_record.py OUT [--user callevents] [--secret callevents]
                         [--host 127.0.0.1] [--port 5038]

Connects, sends a Login, and writes to OUT every byte Asterisk sends, exactly
as received (\\r\\n line endings), from the "Asterisk Call Manager/..." banner
and the Login response on -- a fake AMI server can replay OUT as is. The Login
we send (not part of OUT) is:
    Action: Login\\r\\nUsername: U\\r\\nSecret: S\\r\\nEvents: on\\r\\n\\r\\n
Prints "logged in" on stdout once the Login response is in. Stops on SIGTERM or
SIGINT (without sending Logoff), flushing OUT. Stdlib only; run it with
/usr/bin/python3 (the python3 on PATH may be a pyenv shim).
"""
import argparse
import signal
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--user", default="callevents")
ap.add_argument("--secret", default="callevents")
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=5038)
a = ap.parse_args()

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)

s = socket.create_connection((a.host, a.port), timeout=10)
s.settimeout(0.2)
out = open(a.out, "wb")
buf = b""
login_sent = logged_in = False
while not stop:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    if not data:
        print("ami_record: connection closed by Asterisk", file=sys.stderr)
        break
    out.write(data)
    out.flush()
    if logged_in:
        continue
    buf += data
    if not login_sent and b"\r\n" in buf:
        s.sendall(("Action: Login\r\nUsername: %s\r\nSecret: %s\r\nEvents: on\r\n\r\n"
                   % (a.user, a.secret)).encode())
        login_sent = True
    if b"Response: Success" in buf and b"\r\n\r\n" in buf.split(b"Response: Success", 1)[1]:
        logged_in = True
        print("logged in", flush=True)
    elif b"Response: Error" in buf:
        print("ami_record: login failed: %r" % buf, file=sys.stderr)
        sys.exit(1)
out.close()
s.close()
