#!/usr/bin/env python3
"""While the network-policy-api conformance suite sets up: removes, from
each StatefulSet of its base manifests as soon as it exists, the containers
that serve SCTP (agnhost porter with SERVE_SCTP_PORT_*), and deletes that
StatefulSet's pods so that they come back without them. This kernel has no
SCTP sockets (CONFIG_IP_SCTP unset): those servers exit at once, no pod
of the suite becomes Ready and its set-up gives up after 300 s without
running a test. Every other container, the policies and the tests are the
suite's own; its SCTP probes then fail (README "Conformance").

usage: strip-sctp.py KUBECTL SECONDS    (prints what it changed)
"""
import json
import subprocess
import sys
import time

kubectl, secs = sys.argv[1], float(sys.argv[2])
WANT = 5  # the suite's StatefulSets, one per namespace
done = set()
end = time.monotonic() + secs
while len(done) < WANT and time.monotonic() < end:
    r = subprocess.run([kubectl, "get", "statefulsets", "-A", "-o", "json"], capture_output=True, text=True)
    items = json.loads(r.stdout)["items"] if r.returncode == 0 else []
    for s in items:
        ns, name = s["metadata"]["namespace"], s["metadata"]["name"]
        if not ns.startswith("network-policy-conformance-") or (ns, name) in done:
            continue
        ctrs = s["spec"]["template"]["spec"]["containers"]
        sctp = [i for i, c in enumerate(ctrs)
                if any(e.get("name", "").startswith("SERVE_SCTP_PORT_") for e in c.get("env", []))]
        ops = [{"op": "test", "path": f"/spec/template/spec/containers/{i}/name", "value": ctrs[i]["name"]}
               for i in sctp]
        ops += [{"op": "remove", "path": f"/spec/template/spec/containers/{i}"} for i in reversed(sctp)]
        if ops:
            p = subprocess.run([kubectl, "-n", ns, "patch", "statefulset", name, "--type", "json", "-p",
                                json.dumps(ops)], capture_output=True, text=True)
            if p.returncode != 0:
                continue  # changed meanwhile: read it again
        sel = ",".join(f"{k}={v}" for k, v in s["spec"]["selector"].get("matchLabels", {}).items())
        subprocess.run([kubectl, "-n", ns, "delete", "pods", "-l", sel, "--wait=false"], capture_output=True)
        print(f"{ns}/{name}: SCTP server containers removed: {[ctrs[i]['name'] for i in sctp]}", flush=True)
        done.add((ns, name))
    time.sleep(0.5)
sys.exit(0 if len(done) == WANT else 1)
