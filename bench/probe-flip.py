#!/usr/bin/env python3
"""Waits for "go" on stdin, then connects to HOST:PORT every 2 ms (20 ms
timeout) until the outcome is WANT (open|closed); prints the milliseconds
from "go" to the first probe that saw it, or "timeout" after LIMIT seconds
(10). With HOLD (1), WANT must be seen by HOLD probes in a row, and the
first of them counts: one probe lost to a starved server is not a verdict.
Run inside a pod's namespace.
usage: probe-flip.py HOST PORT open|closed [LIMIT [HOLD]]"""
import socket, sys, time
host, port, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
limit = float(sys.argv[4]) if len(sys.argv) > 4 else 10
hold = int(sys.argv[5]) if len(sys.argv) > 5 else 1
first, seen_n = None, 0
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
while time.monotonic() - t0 < limit:
    start = time.monotonic()
    s = socket.socket()
    s.settimeout(0.02)
    try:
        s.connect((host, port))
        ok = True
    except OSError:
        ok = False
    s.close()
    if ok == (want == "open"):
        # a drop is seen when the probe sent at `start` got no answer
        seen = start if not ok else time.monotonic()
        first = first if seen_n else seen
        seen_n += 1
        if seen_n >= hold:
            print("%.1f" % ((first - t0) * 1000), flush=True)
            sys.exit(0)
    else:
        seen_n = 0
    time.sleep(0.002)
print("timeout", flush=True)
sys.exit(1)
