#!/usr/bin/env python3
"""One verdict change, timed from the API call that causes it: makes the
API requests (in this namespace) while probing DST from a pod's network
namespace, and prints one JSON object:
  {"call": T, "returned": T, "flip": T, "ms": MS, "probes": N, "step_ms": S}
T are CLOCK_MONOTONIC seconds (time.monotonic(), the clock the agent's
debug "latency" lines and the test API server's CORRAL_FAKE_TRACE use):
call when the first request was sent, returned when the last answered,
flip the send time of the first probe that saw WANT (HOLD in a row),
before the send time of the probe before it (the verdict changed in
between: a gap wider than STEP is this process kept from running); MS is
flip - call. The verdict changed between the probe before it and it: a
probe is sent every STEP ms (default 1), each on its own socket without
waiting for the previous one, so the resolution is one step, not a
connect's timeout (bash /dev/tcp with 0.3 s, or connect-then-sleep).
A probe is "open" when it is answered (SYN-ACK or RST), "closed" when
TIMEOUT ms (default 30) pass without an answer (a drop).

usage: flip.py NETNS HOST:PORT open|closed URL [--hold N] [--step MS] [--timeout MS]
               [--cacert F --cert F --key F] -- METHOD PATH BODY [CONTENT-TYPE] [-- METHOD ...]
NETNS a name under /run/netns; URL the API server's (http or https)."""
import ctypes
import errno
import http.client
import json
import os
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse

CLONE_NEWNET = 0x40000000


def parse(argv):
    o = {"hold": 1, "step": 1.0, "timeout": 30.0, "cacert": None, "cert": None, "key": None}
    netns, dst, want, url = argv[:4]
    rest = argv[4:]
    reqs = []
    while rest:
        a = rest.pop(0)
        if a == "--":
            cut = rest.index("--") if "--" in rest else len(rest)
            reqs.append(rest[:cut])
            rest = rest[cut:]
        else:
            v = rest.pop(0)
            o[a[2:]] = v if a[2:] in ("cacert", "cert", "key") else float(v)
    host, port = dst.rsplit(":", 1)
    return netns, (host, int(port)), want, url, reqs, o


def connect_api(url, o):
    u = urllib.parse.urlparse(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=o["cacert"])
        if o["cert"]:
            ctx.load_cert_chain(o["cert"], o["key"])
        c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    else:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.connect()  # here, before setns: the API server is in this namespace
    return c


def call_api(c, reqs, out):
    out["call"] = time.monotonic()
    for r in reqs:
        method, path, body = r[0], r[1], r[2]
        ctype = r[3] if len(r) > 3 else "application/json"
        c.request(method, path, body=body.encode(), headers={"Content-Type": ctype})
        resp = c.getresponse()
        resp.read()
        out.setdefault("status", []).append(resp.status)
    out["returned"] = time.monotonic()


def main():
    netns, dst, want, url, reqs, o = parse(sys.argv[1:])
    api = connect_api(url, o)
    fd = os.open("/run/netns/" + netns, os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        sys.exit("flip.py: setns %s: %s" % (netns, os.strerror(ctypes.get_errno())))
    os.close(fd)
    step, timeout, hold = o["step"] / 1e3, o["timeout"] / 1e3, int(o["hold"])
    out = {}
    th = threading.Thread(target=call_api, args=(api, reqs, out))
    sent = []      # send time of probe i
    result = {}    # i -> True (answered) / False (no answer within timeout)
    live = {}      # fd -> (i, socket)
    ep = select.epoll()
    t_next = time.monotonic()
    limit = t_next + 10
    th.start()
    flip, done, run, before = None, 0, 0, None
    while flip is None and time.monotonic() < limit:
        now = time.monotonic()
        if now >= t_next:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            i = len(sent)
            sent.append(time.monotonic())
            rc = s.connect_ex(dst)
            if rc in (0, errno.ECONNREFUSED):
                result[i] = True
                s.close()
            else:
                live[s.fileno()] = (i, s)
                ep.register(s.fileno(), select.EPOLLOUT)
            t_next += step
        for f, _ in ep.poll(max(0.0, t_next - time.monotonic())):
            i, s = live.pop(f)
            ep.unregister(f)
            result[i] = True  # answered: SYN-ACK or RST
            s.close()
        now = time.monotonic()
        for f in [f for f, (i, s) in live.items() if now - sent[i] > timeout]:
            i, s = live.pop(f)
            ep.unregister(f)
            result[i] = False
            s.close()
        # the first run of HOLD probes with WANT, every probe before it decided
        while done in result and flip is None:
            if result[done] == (want == "open") and sent[done] >= out.get("call", float("inf")):
                run += 1
                if run == hold:
                    flip = sent[done - hold + 1]
                    before = sent[done - hold] if done >= hold else None
            else:
                run = 0
            done += 1
    th.join()
    if flip is None:
        print(json.dumps({"error": "timeout", **out}), flush=True)
        sys.exit(1)
    print(json.dumps({"call": out["call"], "returned": out["returned"], "flip": flip, "before": before,
                      "ms": round((flip - out["call"]) * 1e3, 2), "probes": len(sent), "step_ms": o["step"],
                      "status": out.get("status")}), flush=True)


if __name__ == "__main__":
    main()
