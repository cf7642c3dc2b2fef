#!/usr/bin/env python3
"""The image of deploy/Dockerfile, built and run as the DaemonSet runs it.

Built with `docker build` on local stand-ins of its bases
(base-images.sh: no registry here), then:
- the image holds the two programs and no shell;
- it runs as deploy/daemonset.yaml says, the docker flags read from that
  file: capabilities dropped but NET_ADMIN, read-only root, no new
  privileges, Docker's default seccomp profile, uid 0, the network of a
  node (node-1 of the namespace cluster is the network namespace of a
  container the agent joins, as hostNetwork), the ServiceAccount's token
  (TokenRequest) and CA mounted where Kubernetes mounts them,
  KUBERNETES_SERVICE_HOST/PORT as the kubelet sets them (10.96.0.1:443 in
  the node, forwarded to the real API server as kube-proxy would), NODE_NAME,
  the ConfigMap's config.yaml, /tmp and /run/corral as volumes;
- against a real kube-apiserver it enforces a NetworkPolicy with real
  packets, keeps enforcing while its container restarts, and reports the
  drops through agentctl, both the one in the image (docker exec) and over
  the control socket on the mounted volume.

usage: test-image.py RUN_SH REPO AGENTCTL
"""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "controlplane"))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH, REPO, AGENTCTL = sys.argv[1:4]
CLUSTER = os.path.join(REPO, "tests/dataplane/cluster.sh")
TAG = os.environ.get("CORRAL_NETNS_TAG", "")
P = TAG + "crimg"
IMAGE = "corral-agent:test" + (f"-{TAG}" if TAG else "")  # work trees testing side by side
NODE_IP = "10.255.0.1"  # node-1's address in the namespace cluster (tests/dataplane/cluster.sh)
NODE, AGENT = f"corral-test-node-{P}", f"corral-test-agent-{P}"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
c = Checks()


def sh(*args, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


# ---------- build ----------

t = time.monotonic()
build_base, run_base = sh("sh", os.path.join(HERE, "base-images.sh")).stdout.split()
t_bases = time.monotonic() - t
t = time.monotonic()
# --network host: the build stage installs its compilers with apt
r = sh("docker", "build", "--network", "host", "--build-arg", f"BUILD_BASE={build_base}",
       "--build-arg", f"RUN_BASE={run_base}", "-f", os.path.join(REPO, "deploy/Dockerfile"), "-t", IMAGE, REPO,
       check=False)
if r.returncode != 0:
    print(r.stdout[-4000:], r.stderr[-4000:])
    sys.exit(1)
t_build = time.monotonic() - t
size = json.loads(sh("docker", "image", "inspect", IMAGE).stdout)[0]
print(f"image {IMAGE}: bases ready in {t_bases:.1f}s, built in {t_build:.1f}s, {size['Size'] / 1e6:.1f} MB")
cfg = size["Config"]
c.check(cfg.get("Entrypoint") == ["/usr/bin/corral-agent"] and cfg.get("User") == "0:0",
        f"entrypoint and user: {cfg.get('Entrypoint')} {cfg.get('User')}")

# what the image holds: both programs, no shell (kept from the rootfs-only test)
cid = sh("docker", "create", IMAGE).stdout.strip()
files = set(sh("sh", "-c", f"docker export {cid} | tar -t").stdout.split())
sh("docker", "rm", cid)
for b in ("usr/bin/corral-agent", "usr/bin/agentctl"):
    c.check(b in files, f"{b} in the image")
shells = sorted(f for f in files if os.path.basename(f.rstrip("/")) in ("sh", "bash", "dash", "busybox", "ash"))
c.check(not shells, f"no shell in the image: {shells}")
c.check(sh("docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", IMAGE, "-c", "true",
           check=False).returncode != 0, "the image cannot run /bin/sh")
r = sh("docker", "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/agentctl", IMAGE, "--help", check=False)
c.check("usage: agentctl" in r.stdout + r.stderr, f"agentctl runs from the image: {r.stdout[:200]}{r.stderr[:200]}")

# ---------- the DaemonSet, as docker flags ----------

docs = [d for f in ("daemonset.yaml",) for d in yaml.safe_load_all(open(os.path.join(REPO, "deploy", f))) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
config_yaml = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["config.yaml"]
pod = ds["spec"]["template"]["spec"]
ctr = pod["containers"][0]
sc = ctr["securityContext"]


def docker_flags(work):
    """docker run flags for what the DaemonSet asks, failing on what they cannot say."""
    f = ["--network", f"container:{NODE}"]
    c.check(pod.get("hostNetwork") is True, "DaemonSet: hostNetwork (here: the node container's network)")
    caps = sc.get("capabilities", {})
    c.check(caps.get("drop") == ["ALL"], f"DaemonSet drops every capability: {caps}")
    f += ["--cap-drop", "ALL"] + [a for cap in caps.get("add", []) for a in ("--cap-add", cap)]
    c.check(sc.get("privileged") is False, "DaemonSet: not privileged")
    if sc.get("readOnlyRootFilesystem"):
        f.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        f += ["--security-opt", "no-new-privileges"]
    # RuntimeDefault is Docker's default profile: nothing to add (and never unconfined)
    c.check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "DaemonSet: seccomp RuntimeDefault")
    f += ["--user", str(sc.get("runAsUser", 0))]
    vols = {v["name"]: v for v in pod["volumes"]}
    for m in ctr["volumeMounts"]:
        v = vols[m["name"]]
        if "emptyDir" in v and m["mountPath"] == "/tmp":
            f += ["--tmpfs", f"/tmp:size={v['emptyDir'].get('sizeLimit', '16Mi').replace('Mi', 'm')}"]
        elif "emptyDir" in v:  # a folder of the test: the control socket is reached from outside
            d = os.path.join(work, m["name"])
            os.makedirs(d)
            f += ["-v", f"{d}:{m['mountPath']}"]
        elif "configMap" in v:
            d = os.path.join(work, m["name"])
            os.makedirs(d)
            with open(os.path.join(d, "config.yaml"), "w") as fh:
                fh.write(config_yaml)
            f += ["-v", f"{d}:{m['mountPath']}:ro"]
        else:
            c.check(False, f"a volume the test does not know how to give: {v}")
    for e in ctr.get("env", []):
        if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            f += ["-e", f"{e['name']}=node-1"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP":
            f += ["-e", f"{e['name']}={NODE_IP}"]
        elif "value" in e:
            f += ["-e", f"{e['name']}={e['value']}"]
    # what the kubelet adds to every pod of a ServiceAccount
    f += ["-v", f"{work}/sa:{SA_DIR}:ro", "-e", "KUBERNETES_SERVICE_HOST=10.96.0.1", "-e", "KUBERNETES_SERVICE_PORT=443"]
    return f


# ---------- the API server, seen from the node at 10.96.0.1:443 ----------

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def listen_in_netns(path, addr):
    """A listening socket inside the network namespace at path."""
    me, ns = os.open("/proc/self/ns/net", os.O_RDONLY), os.open(path, os.O_RDONLY)
    try:
        if libc.setns(ns, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(64)
        return s
    finally:
        if libc.setns(me, CLONE_NEWNET) != 0:
            os._exit(99)  # never go on in the wrong namespace
        os.close(me)
        os.close(ns)


accepted = [0]


def forward(lsock, port):
    """Bytes both ways between the node's 10.96.0.1:443 and the API server."""
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        try:
            conn, _ = lsock.accept()
            accepted[0] += 1
        except OSError:
            return
        try:
            up = socket.create_connection(("127.0.0.1", port))
        except OSError:
            conn.close()
            continue
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()


# ---------- objects through the API ----------

def apply(cp, obj):
    """Server-side apply; a pod's status then written as its kubelet would."""
    kind, md = obj["kind"], obj["metadata"]
    path = {"Namespace": f"/api/v1/namespaces/{md['name']}",
            "Pod": f"/api/v1/namespaces/{md.get('namespace')}/pods/{md['name']}",
            "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{md.get('namespace')}/networkpolicies/{md['name']}"}[kind]
    status = obj.pop("status", None) if kind == "Pod" else None
    if kind == "Pod":
        for ct in obj["spec"]["containers"]:
            ct.setdefault("image", "registry.example.com/server:1")
    end = time.monotonic() + 30
    while True:  # a new namespace gets its default ServiceAccount a moment later
        st, _, body = cp.request("PATCH", path + "?fieldManager=corral-test&force=true", obj,
                                 content_type="application/apply-patch+yaml")
        if st in (200, 201) or time.monotonic() > end:
            break
        time.sleep(0.2)
    c.check(st in (200, 201), f"apply {kind} {md.get('namespace')}/{md['name']}: {st} {body[:300]!r}")
    if status:
        st, _, body = cp.request("PATCH", path + "/status", {"status": status},
                                 content_type="application/strategic-merge-patch+json")
        c.check(st == 200, f"status of pod {md['namespace']}/{md['name']}: {st} {body[:300]!r}")


def tcp(src, dst, timeout=0.5):
    """One TCP connection from pod src (e.g. y-a) to dst:80 (real packets)."""
    return sh("ip", "netns", "exec", f"{P}-{src}", "timeout", str(timeout), "bash", "-c",
              f"exec 3<>/dev/tcp/{dst}/80", check=False).returncode == 0


def until(src, dst, want, limit=15):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if tcp(src, dst, 0.3) == want:
            return time.monotonic() - t
    return None


def agentctl(work, *args):
    return sh(AGENTCTL, "--socket", os.path.join(work, "run", "agent.sock"), *args, check=False)


def synced(work):
    r = agentctl(work, "status", "-o", "json")
    return r.returncode == 0 and '"synced": true' in r.stdout


def wait_synced(work, limit=60):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        if synced(work):
            return time.monotonic() - t
        time.sleep(0.1)
    return None


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


work = tempfile.mkdtemp(prefix="corral-image-")
os.chmod(work, 0o755)
server = lsock = None


def cleanup():
    sh("docker", "rm", "-f", f"{AGENT}-cleanup", AGENT, NODE, check=False)
    sh("sh", CLUSTER, "down", P, check=False)
    if server:
        server.kill()
        server.wait()
    if lsock:
        lsock.close()
    shutil.rmtree(work, ignore_errors=True)


try:
    with ControlPlane(RUN_SH) as cp:
        port = int(cp.url.rsplit(":", 1)[1])
        cp.kubectl("apply", "-f", os.path.join(REPO, "deploy/crd"), "-f", os.path.join(REPO, "deploy/rbac.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesspolicies.corral.dev")
        # the ServiceAccount's token, as the kubelet mounts it (projected:
        # token, ca.crt, namespace)
        st, tr = cp.json("POST", "/api/v1/namespaces/corral-system/serviceaccounts/corral-agent/token",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": 3600}})
        c.check(st == 201, f"TokenRequest: {st}")
        os.makedirs(os.path.join(work, "sa"))
        with open(os.path.join(work, "sa", "token"), "w") as f:
            f.write(tr["status"]["token"])
        shutil.copy(cp.path("ca.crt"), os.path.join(work, "sa", "ca.crt"))
        with open(os.path.join(work, "sa", "namespace"), "w") as f:
            f.write("corral-system")

        # node-1: a container's network namespace, wired into the cluster
        sh("docker", "rm", "-f", AGENT, NODE, check=False)
        sh("docker", "run", "-d", "--name", NODE, "--network", "none", build_base, "sleep", "infinity")
        node_pid = json.loads(sh("docker", "inspect", NODE).stdout)[0]["State"]["Pid"]
        sh("sh", CLUSTER, "up", P, str(node_pid))
        sh("ip", "-n", f"{P}-n1", "addr", "add", "10.96.0.1/32", "dev", "lo")
        lsock = listen_in_netns(f"/run/netns/{P}-n1", ("10.96.0.1", 443))
        threading.Thread(target=forward, args=(lsock, port), daemon=True).start()
        server = subprocess.Popen(["ip", "netns", "exec", f"{P}-x-a", "python3", "-m", "http.server", "80"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        for d in yaml.safe_load_all(open(os.path.join(REPO, "tests/dataplane/base.yaml"))):
            if d:
                apply(cp, d)

        flags = docker_flags(work)
        args = ctr.get("args", [])
        print("docker run", " ".join(flags), IMAGE, " ".join(args))
        t0 = time.monotonic()
        sh("docker", "run", "-d", "--name", AGENT, *flags, IMAGE, *args)
        w = wait_synced(work)
        if not c.check(w is not None, "the agent in its container syncs"):
            print(sh("docker", "logs", AGENT, check=False).stderr[-3000:])
            raise SystemExit(1)
        print(f"agent container: started and enforcing in {time.monotonic() - t0:.2f}s")

        # it really runs as asked
        info = json.loads(sh("docker", "inspect", AGENT).stdout)[0]
        pst = proc_status(info["State"]["Pid"])
        c.check(int(pst["CapEff"], 16) == 1 << 12 and int(pst["CapBnd"], 16) == 1 << 12,
                f"CAP_NET_ADMIN alone: CapEff {pst['CapEff']} CapBnd {pst['CapBnd']}")
        c.check(pst["NoNewPrivs"] == "1", f"no new privileges: {pst['NoNewPrivs']}")
        c.check(pst["Seccomp"] == "2", f"a seccomp filter (Docker's default profile): Seccomp {pst['Seccomp']}")
        c.check(pst["Uid"].split()[0] == "0", f"uid 0: {pst['Uid']}")
        c.check(info["HostConfig"]["ReadonlyRootfs"] is True, "read-only root filesystem")
        c.check(not any("seccomp" in o for o in info["HostConfig"].get("SecurityOpt") or []),
                f"no seccomp override: {info['HostConfig'].get('SecurityOpt')}")
        r = sh("docker", "exec", AGENT, "agentctl", "status", "-o", "json", check=False)
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        c.check(st.get("source_state", {}).get("source") == "kube", f"agentctl in the image: {r.stdout[:300]}{r.stderr[:300]}")
        print("status:", json.dumps({k: st.get(k) for k in ("node", "synced", "source_state")})[:400])
        # on the node's address (HOST_IP), where the kubelet's probes and
        # Prometheus reach it
        mport = next(p["containerPort"] for p in ctr["ports"] if p["name"] == "metrics")
        ready = sh("ip", "netns", "exec", f"{P}-n1", "curl", "-s", f"http://{NODE_IP}:{mport}/readyz", check=False).stdout
        c.check(ready == "ready\n", f"/readyz on the node's address: {ready!r}")

        # enforcing with real packets: x/a (node-1) takes calls from namespace z only
        c.check(until("y-a", "10.1.1.1", True) is not None, "y/a -> x/a connects before any policy")
        # one TCP connection carries the four lists and watches (HTTP/2)
        c.check(accepted[0] == 1, f"the agent opened {accepted[0]} connection(s) to the API server, want 1")
        print(f"connections from the agent to the API server: {accepted[0]} (every list and watch multiplexed)")
        apply(cp, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "from-z", "namespace": "x"},
                   "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
                            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]}})
        d = until("y-a", "10.1.1.1", False)
        c.check(d is not None, "policy created at the API server: y/a -> x/a dropped")
        print(f"policy created -> y/a -> x/a dropped in {d * 1000 if d is not None else -1:.0f} ms")
        c.check(tcp("z-a", "10.1.1.1"), "z/a -> x/a still connects")

        # drops now: the Events writer (drops as Kubernetes Events, on by
        # default) has a connection of its own, so that a slow API server
        # never holds the watches
        c.check(accepted[0] <= 2, f"the agent opened {accepted[0]} connections to the API server, want at most 2")
        print(f"after drops: {accepted[0]} connections (lists and watches, and the drop Events writer)")

        # the container stopped, then started again: the ruleset stays in
        # force while no agent runs, and through the new one's first sync
        sh("docker", "stop", "-t", "10", AGENT)
        probes = wrong = 0
        for _ in range(3):
            wrong += tcp("y-a", "10.1.1.1", 0.2) + (not tcp("z-a", "10.1.1.1"))
            probes += 1
        start = subprocess.Popen(["docker", "start", AGENT], stdout=subprocess.DEVNULL)
        while start.poll() is None or not synced(work):
            wrong += tcp("y-a", "10.1.1.1", 0.2) + (not tcp("z-a", "10.1.1.1"))
            probes += 1
            if probes > 300:
                break
        c.check(start.returncode == 0 and wrong == 0, f"container stopped and started: {probes} probe pairs, {wrong} wrong")
        print(f"container stopped and started: {probes} probe pairs meanwhile, {wrong} wrong")

        # drops, from the control socket on the mounted volume and from the image's agentctl
        tcp("y-a", "10.1.1.1", 0.3)
        time.sleep(0.2)
        r = agentctl(work, "drops", "-o", "json")
        drops = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        if r.stdout.lstrip().startswith("["):
            drops = json.loads(r.stdout)
        hit = [x for x in drops if x.get("source_pod") == "y/a" and x.get("destination_pod") == "x/a"]
        c.check(hit and "NetworkPolicy x/from-z" in hit[0].get("policies", ""),
                f"drops over the mounted socket name y/a -> x/a and the policy: {r.stdout[:500]}{r.stderr[:300]}")
        r = sh("docker", "exec", AGENT, "agentctl", "drops", check=False)
        line = next((l for l in r.stdout.splitlines() if "y/a -> x/a" in l), None)
        c.check(line is not None, f"agentctl drops inside the container: {r.stdout[-500:]}{r.stderr[-300:]}")
        print("drop:", line)
        logs = sh("docker", "logs", AGENT, check=False)
        c.check("ready: enforcing on node node-1" in logs.stderr + logs.stdout, "the agent's log says it enforces")

        # the exact count of drops, from the kernel's counters (the metrics
        # thread's own netlink socket, under the container's seccomp profile)
        for _ in range(5):
            tcp("y-a", "10.1.1.1", 0.2)
        m = sh("ip", "netns", "exec", f"{P}-n1", "curl", "-s", f"http://{NODE_IP}:{mport}/metrics", check=False).stdout
        key = 'corral_dropped_packets_total{direction="ingress",reason="policy",namespace="x",policy="NetworkPolicy/from-z"} '
        n = int(next((l[len(key):] for l in m.splitlines() if l.startswith(key)), "0"))
        c.check(n >= 5, f"exact drop count for NetworkPolicy x/from-z: {n}")
        print(f"drops counted by the kernel for x/from-z: {n}")

        # uninstall: the agent stopped, deploy/uninstall.yaml's container
        # (same privileges, no API access) removes the table
        sh("docker", "stop", "-t", "10", AGENT)
        cl = next(d for d in yaml.safe_load_all(open(os.path.join(REPO, "deploy", "uninstall.yaml"))) if d)
        clc = cl["spec"]["template"]["spec"]["containers"][0]
        csc = clc["securityContext"]
        cflags = ["--network", f"container:{NODE}", "--cap-drop", "ALL"] + \
            [a for cap in csc["capabilities"]["add"] for a in ("--cap-add", cap)] + \
            ["--read-only", "--security-opt", "no-new-privileges", "--user", str(csc["runAsUser"]),
             "-e", f"HOST_IP={NODE_IP}"]
        c.check(cl["spec"]["template"]["spec"].get("automountServiceAccountToken") is False, "cleanup: no token")
        sh("docker", "rm", "-f", f"{AGENT}-cleanup", check=False)
        sh("docker", "run", "-d", "--name", f"{AGENT}-cleanup", *cflags, IMAGE, *clc["args"])
        cport = next(p["containerPort"] for p in clc["ports"] if p["name"] == "health")
        t = time.monotonic()
        ready = ""
        while time.monotonic() - t < 20 and ready != "ready\n":
            ready = sh("ip", "netns", "exec", f"{P}-n1", "curl", "-s", f"http://{NODE_IP}:{cport}/readyz",
                       check=False).stdout
            time.sleep(0.1)
        c.check(ready == "ready\n", f"the cleanup container is ready: {ready!r}")
        gone = sh("ip", "netns", "exec", f"{P}-n1", "nft", "list", "table", "inet", "corral", check=False).returncode != 0
        c.check(gone, "the cleanup container removed table inet corral")
        c.check(until("y-a", "10.1.1.1", True) is not None, "y/a -> x/a connects again: nothing enforced")
        logs = sh("docker", "logs", f"{AGENT}-cleanup", check=False)
        line = next((l for l in (logs.stdout + logs.stderr).splitlines() if "removed table" in l), "")
        print("cleanup:", line)
        c.check(line, "the cleanup container says what it removed")
        sh("docker", "rm", "-f", f"{AGENT}-cleanup", check=False)
finally:
    cleanup()

c.finish("deploy.image")
