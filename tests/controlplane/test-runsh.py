#!/usr/bin/env python3
"""run.sh does what it says: up answers on 127.0.0.1 with the admin
kubeconfig and the kubectl wrapper; restart keeps the URL and the data and
closes open watches; compact makes an older continue token 410 (and, with
CORRAL_CP_WATCH_CACHE=off, an older watch at once); down stops every
process and removes the folder; a control plane whose owner process dies
stops itself.

usage: test-runsh.py RUN_SH
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH = sys.argv[1]
c = Checks()


def pids(d):
    out = []
    for n in ("etcd", "apiserver", "controller-manager"):
        try:
            with open(os.path.join(d, n + ".pid")) as f:
                out.append(int(f.read()))
        except OSError:
            out.append(None)
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


with ControlPlane(RUN_SH) as cp:
    c.check(cp.url.startswith("https://127.0.0.1:"), f"bound to 127.0.0.1: {cp.url}")
    with open(cp.path("url")) as f:
        c.check(f.read().strip() == cp.url, "DIR/url holds the URL")
    r = subprocess.run([cp.path("kubectl"), "get", "--raw", "/readyz"], capture_output=True, text=True)
    c.check(r.stdout.strip() == "ok", f"DIR/kubectl reaches /readyz: {r.stdout}{r.stderr}")
    r = subprocess.run(["sh", RUN_SH, "kubectl", cp.dir, "auth", "whoami", "-o", "json"], capture_output=True, text=True)
    who = json.loads(r.stdout or "{}").get("status", {}).get("userInfo", {})
    c.check(who.get("username") == "corral-admin" and "system:masters" in who.get("groups", []),
            f"run.sh kubectl is the cluster admin (client certificate): {who}")
    r = subprocess.run([cp.path("kubectl"), "version", "-o", "json"], capture_output=True, text=True)
    v = json.loads(r.stdout)
    c.check(v["serverVersion"]["gitVersion"] == v["clientVersion"]["gitVersion"] == "v1.37.2",
            f"kubectl and server are the release of go.mod: {v['clientVersion']['gitVersion']}, {v['serverVersion']['gitVersion']}")
    c.check(all(p and alive(p) for p in pids(cp.dir)), f"etcd, kube-apiserver, kube-controller-manager run: {pids(cp.dir)}")
    # the controller manager gives every new namespace its default ServiceAccount
    cp.kubectl("create", "namespace", "n1")
    cp.wait("the default ServiceAccount of n1", lambda: cp.kubectl("-n", "n1", "get", "sa", "default", check=False).returncode == 0, 30)
    cp.kubectl("-n", "n1", "run", "p", "--image=registry.example.com/a:1")
    cp.kubectl("-n", "n1", "run", "q", "--image=registry.example.com/a:1")
    st, pl = cp.json("GET", "/api/v1/pods?limit=1")
    cont, rv = pl["metadata"]["continue"], pl["metadata"]["resourceVersion"]
    cp.kubectl("-n", "n1", "label", "pod", "p", "x=1")

    # compact: the old continue token becomes 410 once the API server has seen it
    rev = cp.op("compact")
    c.check(rev.isdigit() and int(rev) > int(rv), f"compact prints the revision: {rev}")
    t = time.monotonic()
    try:
        cp.wait("the old continue token to expire", lambda: cp.json(
            "GET", "/api/v1/pods?limit=1&continue=" + urllib.parse.quote(cont))[0] == 410, 40)
        c.check(True, "compact: an older continue token gets 410")
        print(f"continue token 410 {time.monotonic() - t:.1f}s after compact")
    except RuntimeError as e:
        c.check(False, str(e))
    # restart: same URL, data kept, an open watch ends
    ended = {}
    th = threading.Thread(target=lambda: ended.setdefault("r", cp.request(
        "GET", f"/api/v1/pods?watch=1&timeoutSeconds=120&resourceVersion={rv}", timeout=150)))
    th.start()
    time.sleep(1)
    t = time.monotonic()
    out = cp.op("restart")
    took = time.monotonic() - t
    th.join(30)
    c.check(out == cp.url, f"restart keeps the URL: {out}")
    c.check(not th.is_alive() and ended.get("r", (0,))[0] == 200,
            "restart closes an open watch (its stream ends long before timeoutSeconds)")
    c.check(took < 30, f"restart in {took:.1f}s")
    print(f"restart took {took:.1f}s")
    c.check(cp.kubectl("-n", "n1", "get", "pod", "p", "q", check=False).returncode == 0, "restart keeps the data")

    d, ps = cp.dir, pids(cp.dir)

c.check(not os.path.exists(d), "down removes DIR")
time.sleep(0.5)
c.check(not any(p and alive(p) for p in ps), f"down stops every process: {[p for p in ps if p and alive(p)]}")

# without the watch cache, compaction alone expires an older watch
with ControlPlane(RUN_SH, env={"CORRAL_CP_WATCH_CACHE": "off"}) as cp:
    cp.kubectl("run", "p", "--image=registry.example.com/a:1")
    rv = cp.json("GET", "/api/v1/pods")[1]["metadata"]["resourceVersion"]
    for i in range(3):
        cp.kubectl("label", "pod", "p", f"x={i}", "--overwrite")
    cp.op("compact")
    st, _, body = cp.request("GET", f"/api/v1/pods?watch=1&timeoutSeconds=5&resourceVersion={rv}")
    ev = json.loads(body.split(b"\n")[0] or b"{}")
    c.check(st == 200 and ev.get("type") == "ERROR" and ev["object"].get("code") == 410,
            f"CORRAL_CP_WATCH_CACHE=off: a watch from before the compaction gets 410 at once: {st} {body[:200]!r}")

# the owner's death stops the control plane
owner = subprocess.Popen(["sleep", "600"])
d = tempfile.mkdtemp(prefix="corral-cp-owner-")
env = dict(os.environ, CORRAL_CP_OWNER=str(owner.pid), CORRAL_CP_CONTROLLERS="none")
r = subprocess.run(["sh", RUN_SH, "up", d], env=env, capture_output=True, text=True)
c.check(r.returncode == 0, f"up with an owner: {r.stderr}")
ps = [p for p in pids(d) if p]
owner.kill()
owner.wait()
end = time.monotonic() + 30
while time.monotonic() < end and any(alive(p) for p in ps):
    time.sleep(0.5)
c.check(not any(alive(p) for p in ps), "the control plane stops itself when its owner is gone")
subprocess.run(["sh", RUN_SH, "down", d])
c.check(not os.path.exists(d), "down after that still cleans up")

c.finish("controlplane.runsh")
