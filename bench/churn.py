#!/usr/bin/env python3
"""Sustained pod churn against the agent (issue 16: >= 2,000 events/s
without falling behind, the queue depth reported).

    churn.py API-PORT AGENT-SOCKET RATE SECONDS SIZE [PREFIX [ALIVE]]

The test API server (tests/kube/fake-apiserver.py, /_ctl/churn) creates
and deletes copies of its pods at RATE events a second for SECONDS; every
100 ms this samples how many it has sent, how many pod events the agent
has decoded (status source_state.watch_changes.pods) and how many of them
the kernel has acknowledged (status changes.pod.count: each watch event
is a change, counted once the transaction carrying it is acknowledged).
The differences are the queue depths. One JSON line per figure, named
PREFIX_... (PREFIX: churn; it also names the pods, PREFIX-N), with at most
ALIVE (500) copies alive at once."""
import json
import socket
import sys
import time
import urllib.request

port, sock, rate, seconds, size = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
prefix = sys.argv[6] if len(sys.argv) > 6 else "churn"
alive = int(sys.argv[7]) if len(sys.argv) > 7 else 500


def status():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b'{"cmd": "status"}\n')
    buf = b""
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        buf += b
    s.close()
    d = json.loads(buf.split(b"\n")[0])["data"]
    return d["source_state"]["watch_changes"]["pods"], d["changes"]["pod"]["count"], d["changes"]["pod"]


def server():
    with urllib.request.urlopen("http://127.0.0.1:%s/_ctl/stats" % port) as r:
        return json.load(r).get("churn", {})


def emit(metric, value, unit):
    print(json.dumps({"bench": "agent-kube", "size": size, "metric": metric, "value": value, "unit": unit}))


d0, k0, _ = status()
req = urllib.request.Request("http://127.0.0.1:%s/_ctl/churn" % port,
                             data=json.dumps({"rate": rate, "seconds": seconds, "prefix": prefix,
                                                 "alive": alive}).encode())
t0 = time.monotonic()
urllib.request.urlopen(req).read()
wanted = int(rate * seconds)
max_decode = max_kernel = 0
samples = []
t_sent = t_done = None
while True:
    d, k, _ = status()  # the agent first: depths are then never under-counted
    c = server()
    now = time.monotonic()
    sent = c.get("sent", 0)
    dec, ker = d - d0, k - k0
    max_decode = max(max_decode, sent - dec)
    max_kernel = max(max_kernel, sent - ker)
    samples.append((now - t0, sent, dec, ker))
    if c.get("done") and t_sent is None:
        t_sent = now
    if ker >= wanted:
        t_done = now
        break
    if now - t0 > seconds + 60:
        break
    time.sleep(0.1)
_, _, hist = status()
srv = server()
for t, sent, dec, ker in samples[:: max(1, len(samples) // 12)]:
    print(prefix + ": %5.1f s: server sent %6d, agent decoded %6d, in the kernel %6d" % (t, sent, dec, ker),
          file=sys.stderr)
emit(prefix + "_offered_events_per_s", rate, "events/s")
emit(prefix + "_server_events_per_s", round(srv.get("sent", 0) / srv.get("seconds", seconds), 1), "events/s")
emit(prefix + "_decode_queue_max", max_decode, "events")
emit(prefix + "_kernel_queue_max", max_kernel, "events")
if t_done is None:
    emit(prefix + "_kept_up", "no: %d of %d events in the kernel %.0f s after the churn began" % (
        samples[-1][3], wanted, samples[-1][0]), "")
    sys.exit(1)
emit(prefix + "_applied_events_per_s", round(wanted / (t_done - t0), 1), "events/s")
emit(prefix + "_catch_up_after_last_event_ms", round(max(0.0, (t_done - (t_sent or t_done))) * 1e3, 1), "ms")
emit(prefix + "_pod_change_p99_ms", round(hist.get("p99_ms", 0), 3), "ms")
