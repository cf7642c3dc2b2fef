#!/usr/bin/env python3
"""Real nodes (cluster.sh: two by default, each with its kubelet,
containerd, CNI bridge and kube-proxy in nftables mode, in network
namespaces joined by a wire; kube-scheduler on the real control plane)
with corral deployed by deploy/'s own manifests, and real packets between
their pods:

- pods are scheduled, get an address from their node's pod range, run the
  locally built agnhost image; pods of node-2 reach node-1's pods and
  Services through the wire;
- a ClusterIP and a NodePort Service reach their backend through
  kube-proxy (from two client pods);
- corral deployed from deploy/ (image imported into the node's runtime,
  kubectl apply of deploy/crd, rbac.yaml, daemonset.yaml unchanged): the
  pod runs with exactly the manifest's security context, its liveness and
  readiness probes pass, `kubectl logs` shows its structured logs, `kubectl
  exec ... agentctl status` answers (agentctl is in the image); one agent
  per node, each enforcing on its own node;
- a NetworkPolicy (default deny ingress for the server, allow from one
  client on port 80): through the ClusterIP and the NodePort, after
  kube-proxy's DNAT, the allowed client connects and the other does not;
  the server's HTTP readiness probe (from the kubelet, on the node) keeps
  passing while it is isolated; across nodes, node-1's agent drops the
  pod of node-2 the policy does not admit and passes the one it admits;
  an egress policy on that admitted pod of node-2 (to port 81 only) then
  drops its port-80 connections, which node-1 would still admit: node-2's
  agent enforces it; deleting the policies opens it again;
- `cluster.sh down` leaves nothing: no network namespace, no mount, no
  process, no folder.

usage: test-node.py CLUSTER_SH
Exit 77 (skipped) when the machine cannot run a node (no containerd, runc,
CNI plugins or Docker). CORRAL_CLUSTER_NODES=1: one node, no cross-node
checks.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "controlplane"))
from cp import Checks  # noqa: E402

CLUSTER = sys.argv[1]
NODE_IP = "10.99.0.1"
NODE2_IP = "10.99.0.2"
c = Checks()

for need in ("containerd", "runc", "ctr", "docker", "nsenter"):
    if shutil.which(need) is None and not os.path.exists(f"/usr/sbin/{need}"):
        print(f"skipped: {need} missing (scripts/install-deps.sh)")
        sys.exit(77)
if not os.path.exists("/usr/lib/cni/bridge"):
    print("skipped: CNI plugins missing (containernetworking-plugins)")
    sys.exit(77)


def sh(*args, check=True, input=None, timeout=600):
    r = subprocess.run(args, capture_output=True, text=True, input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r


work = tempfile.mkdtemp(prefix="corral-node-")
kubectl_path = os.path.join(work, "kubectl")


def kubectl(*args, check=True, input=None):
    return sh(kubectl_path, *args, check=check, input=input)


def down():
    t = time.monotonic()
    sh("sh", CLUSTER, "down", work, check=False)
    return time.monotonic() - t


def wait(what, fn, secs=120):
    end = time.monotonic() + secs
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not within {secs}s")
        time.sleep(1)


def connects(pod, addr, ns="t"):
    """agnhost connect from POD to ADDR (host:port), TCP, 2 s."""
    r = kubectl("-n", ns, "exec", pod, "--", "/agnhost", "connect", addr, "--timeout=2s", "--protocol=tcp",
                check=False)
    return r.returncode == 0


def settles(pod, addr, want, secs=30):
    """the connection's outcome becomes WANT within SECS (policies take
    effect asynchronously) and is WANT three times in a row."""
    end = time.monotonic() + secs
    streak = 0
    while time.monotonic() < end:
        streak = streak + 1 if connects(pod, addr) == want else 0
        if streak >= 3:
            return True
        time.sleep(0.5)
    return False


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
tag = os.environ.get("CORRAL_NETNS_TAG", "")
ns_names = [tag + "corral-node1", tag + "corral-node2"]
try:
    t = time.monotonic()
    r = sh("sh", CLUSTER, "up", work, check=False, timeout=3600)
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-6000:])
        raise RuntimeError("cluster.sh up failed")
    with open(os.path.join(work, "nodes")) as f:
        nodes = int(f.read())
    print(f"cluster up ({nodes} node(s) Ready) in {time.monotonic() - t:.1f}s", flush=True)

    for i in range(1, nodes + 1):
        node = json.loads(kubectl("get", "node", f"node-{i}", "-o", "json").stdout)
        addrs = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        c.check(addrs.get("InternalIP") == f"10.99.0.{i}", f"node-{i} address: {addrs}")
        c.check(node["spec"].get("podCIDRs") == [f"10.244.{i}.0/24"], f"node-{i} podCIDRs: {node['spec']}")
        c.check(node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://"),
                f"runtime: {node['status']['nodeInfo']['containerRuntimeVersion']}")

    # ---------- pods and Services, before corral ----------
    pods = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}}]}

    def pod(name, labels, command, env=None, probe=None, node="node-1"):
        ctr = {"name": "c", "image": "AGNHOST", "imagePullPolicy": "IfNotPresent", "command": command}
        if env:
            ctr["env"] = [{"name": k, "value": v} for k, v in env.items()]
        if probe:
            ctr["readinessProbe"] = probe
            ctr["ports"] = [{"containerPort": 80, "name": "http"}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "t", "labels": labels},
                "spec": {"containers": [ctr], "terminationGracePeriodSeconds": 1,
                         "nodeSelector": {"kubernetes.io/hostname": node}}}

    pods["items"] += [
        pod("server", {"app": "server"}, ["/agnhost", "porter"], {"SERVE_PORT_80": "server-80", "SERVE_PORT_81": "server-81"},
            {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 2, "failureThreshold": 1}),
        pod("client-a", {"role": "a"}, ["/agnhost", "pause"]),
        pod("client-b", {"role": "b"}, ["/agnhost", "pause"]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv", "namespace": "t"},
         "spec": {"selector": {"app": "server"}, "ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv-np", "namespace": "t"},
         "spec": {"type": "NodePort", "externalTrafficPolicy": "Local", "selector": {"app": "server"},
                  "ports": [{"port": 8081, "targetPort": 80, "protocol": "TCP"}]}},
    ]
    # on node-2: one client the policy below admits, one it does not
    if nodes == 2:
        pods["items"] += [pod("remote-a", {"role": "a", "side": "remote"}, ["/agnhost", "pause"], node="node-2"),
                          pod("remote-b", {"role": "b", "side": "remote"}, ["/agnhost", "pause"], node="node-2")]
    # the agnhost name the e2e suite expects, as imported into the runtime
    refs = sh("sh", CLUSTER, "exec", work, "ctr", "--address", f"{work}/containerd/containerd.sock",
              "-n", "k8s.io", "images", "ls", "-q").stdout.split()
    agn = [x for x in refs if x.startswith("registry.k8s.io/e2e-test-images/agnhost:")]
    c.check(len(agn) == 1 and any(x.startswith("registry.k8s.io/pause:") for x in refs),
            f"images in the runtime under the suite's names: {refs}")
    doc = json.dumps(pods).replace("AGNHOST", agn[0] if agn else "missing")
    t = time.monotonic()
    kubectl("apply", "-f", "-", input=doc)
    kubectl("-n", "t", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=180s")
    got = {p["metadata"]["name"]: p for p in json.loads(kubectl("-n", "t", "get", "pods", "-o", "json").stdout)["items"]}
    print(f"{len(got)} pods Ready in {time.monotonic() - t:.1f}s", flush=True)
    for n, p in got.items():
        want = "node-2" if n.startswith("remote-") else "node-1"
        ip = p["status"].get("podIP", "")
        c.check(ip.startswith(f"10.244.{want[-1]}."), f"pod {n} has an address from {want}'s pod range: {ip!r}")
        c.check(p["spec"].get("nodeName") == want, f"pod {n} scheduled on {want}: {p['spec'].get('nodeName')}")
    srv_ip = got["server"]["status"].get("podIP", "")
    cip = json.loads(kubectl("-n", "t", "get", "svc", "srv", "-o", "json").stdout)["spec"]["clusterIP"]
    np = json.loads(kubectl("-n", "t", "get", "svc", "srv-np", "-o", "json").stdout)["spec"]["ports"][0]["nodePort"]
    CIP, NP = f"{cip}:8080", f"{NODE_IP}:{np}"
    wait("the Service's endpoints", lambda: kubectl("-n", "t", "get", "endpointslices", "-l",
                                                     "kubernetes.io/service-name=srv", "-o", "json").stdout.count(srv_ip) > 0)
    for cl in ("client-a", "client-b"):
        c.check(settles(cl, f"{srv_ip}:80", True), f"{cl} -> server pod IP before any policy")
        c.check(settles(cl, CIP, True), f"{cl} -> ClusterIP {CIP} through kube-proxy before any policy")
        c.check(settles(cl, NP, True), f"{cl} -> NodePort {NP} through kube-proxy before any policy")
    remotes = ("remote-a", "remote-b") if nodes == 2 else ()
    for cl in remotes:
        c.check(settles(cl, f"{srv_ip}:80", True), f"{cl} (node-2) -> server pod IP (node-1) through the wire before any policy")
        c.check(settles(cl, CIP, True), f"{cl} (node-2) -> ClusterIP {CIP} through node-2's kube-proxy before any policy")
    r = kubectl("-n", "t", "exec", "client-a", "--", "/agnhost", "connect", "10.96.0.1:443", "--timeout=2s", check=False)
    c.check(r.returncode == 0, f"a pod reaches the API server through the kubernetes Service: {r.stderr[-300:]}")

    # ---------- corral from deploy/ ----------
    t = time.monotonic()
    r = sh("sh", CLUSTER, "deploy", work, check=False, timeout=3600)
    c.check(r.returncode == 0, f"cluster.sh deploy: {r.stdout[-2000:]}{r.stderr[-3000:]}")
    print(f"corral image built, imported and deployed in {time.monotonic() - t:.1f}s", flush=True)
    apods = json.loads(kubectl("-n", "corral-system", "get", "pods", "-o", "json").stdout)["items"]
    c.check(len(apods) == nodes and sorted(p["spec"].get("nodeName") for p in apods) == [f"node-{i}" for i in range(1, nodes + 1)],
            f"one agent pod per node: {[(p['metadata']['name'], p['spec'].get('nodeName')) for p in apods]}")
    with open(os.path.join(HERE, "..", "..", "deploy", "daemonset.yaml")) as f:
        ds = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "DaemonSet"][0]
    want_sc = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    for ap in apods:
        name = ap["metadata"]["name"]
        on = ap["spec"].get("nodeName")
        c.check(ap["spec"]["containers"][0]["securityContext"] == want_sc,
                f"the agent runs with the manifest's security context: {ap['spec']['containers'][0]['securityContext']}")
        c.check(ap["spec"].get("hostNetwork") is True, "hostNetwork")
        cs = ap["status"]["containerStatuses"][0]
        c.check(cs.get("ready") is True, f"the agent's readiness probe passes: {cs}")
        logs = kubectl("-n", "corral-system", "logs", name, check=False).stdout.splitlines()
        structured = [ln for ln in logs if re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (debug|info|warn|error) ", ln)]
        c.check(len(structured) == len(logs) and any(f"ready: enforcing on node {on}" in ln for ln in logs),
                f"kubectl logs shows the agent's structured logs, enforcing on {on}: {logs[-5:]}")
        r = kubectl("-n", "corral-system", "exec", name, "--", "agentctl", "status", "-o", "json", check=False)
        c.check(r.returncode == 0 and '"kube"' in r.stdout,
                f"kubectl exec agentctl status (agentctl is in the image, no shell needed): {r.stdout[:300]}{r.stderr[:300]}")
    # 30 s: the liveness probe (every 10 s) has run three times
    time.sleep(30)
    for ap in apods:
        name = ap["metadata"]["name"]
        ap = json.loads(kubectl("-n", "corral-system", "get", "pod", name, "-o", "json").stdout)
        cs = ap["status"]["containerStatuses"][0]
        c.check(cs.get("restartCount") == 0 and cs.get("ready") is True,
                f"{name}: liveness and readiness probes keep passing: restarts {cs.get('restartCount')}, ready {cs.get('ready')}")

    # ---------- a NetworkPolicy, enforced by corral on this node ----------
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "server-from-a", "namespace": "t"},
              "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}],
                                    "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]}]}}
    kubectl("apply", "-f", "-", input=json.dumps(policy))
    for what, addr in (("pod IP", f"{srv_ip}:80"), ("ClusterIP", CIP), ("NodePort", NP)):
        c.check(settles("client-b", addr, False), f"policy: client-b -> server via {what} {addr} is dropped")
        c.check(settles("client-a", addr, True), f"policy: client-a -> server via {what} {addr} still connects")
    # the kubelet's HTTP readiness probe (every 2 s, one failure makes it
    # unready) keeps passing for 20 s while the server is isolated
    end = time.monotonic() + 20
    ready_all = True
    while time.monotonic() < end:
        p = json.loads(kubectl("-n", "t", "get", "pod", "server", "-o", "json").stdout)
        ready_all &= p["status"]["containerStatuses"][0].get("ready") is True
        time.sleep(2)
    c.check(ready_all, "the isolated server's HTTP readiness probe from the node keeps passing")

    # ---------- across nodes: each node's agent enforces its own pods ----------
    if nodes == 2:
        # ingress at node-1 for traffic from node-2's pods
        c.check(settles("remote-b", f"{srv_ip}:80", False), "cross-node: remote-b (node-2) -> server (node-1) is dropped")
        c.check(settles("remote-b", CIP, False), "cross-node: remote-b (node-2) -> server by ClusterIP is dropped")
        c.check(settles("remote-a", f"{srv_ip}:80", True), "cross-node: remote-a (node-2) -> server (node-1) connects")
        c.check(settles("remote-a", CIP, True), "cross-node: remote-a (node-2) -> server by ClusterIP connects")
        # egress at node-2: remote-a may call the server on port 81 only;
        # node-1 still admits it on port 80 (client-a, same role, connects)
        egress = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": "remote-a-to-81", "namespace": "t"},
                  "spec": {"podSelector": {"matchLabels": {"role": "a", "side": "remote"}}, "policyTypes": ["Egress"],
                           "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "server"}}}],
                                       "ports": [{"port": 81, "protocol": "TCP"}]}]}}
        kubectl("apply", "-f", "-", input=json.dumps(egress))
        c.check(settles("remote-a", f"{srv_ip}:80", False),
                "cross-node egress: remote-a (node-2) -> server:80 is dropped by node-2's agent")
        c.check(settles("remote-a", f"{srv_ip}:81", True), "cross-node egress: remote-a (node-2) -> server:81 connects")
        c.check(settles("client-a", f"{srv_ip}:80", True), "client-a (node-1, not selected) -> server:80 still connects")
        a2 = [p["metadata"]["name"] for p in apods if p["spec"].get("nodeName") == "node-2"]
        if a2:
            r = kubectl("-n", "corral-system", "exec", a2[0], "--", "agentctl", "explain", "t/remote-a", "t/server",
                        "--port", "80", check=False)
            c.check(r.returncode != 0 and "DENIED" in r.stdout and "remote-a-to-81" in r.stdout,
                    f"node-2's agent explains the drop by the egress policy: {r.stdout[:600]}{r.stderr[:300]}")
        kubectl("-n", "t", "delete", "networkpolicy", "remote-a-to-81")
        c.check(settles("remote-a", f"{srv_ip}:80", True), "egress policy deleted: remote-a -> server:80 connects again")

    kubectl("-n", "t", "delete", "networkpolicy", "server-from-a")
    c.check(settles("client-b", CIP, True), "policy deleted: client-b -> ClusterIP connects again")
    if nodes == 2:
        c.check(settles("remote-b", f"{srv_ip}:80", True), "policy deleted: remote-b (node-2) -> server connects again")
finally:
    secs = down()
    print(f"cluster down in {secs:.1f}s", flush=True)
    left = []
    if os.path.exists(work):
        left.append(f"folder {work}")
    left += [f"network namespace {n}" for n in ns_names if os.path.exists(f"/run/netns/{n}")]
    with open("/proc/self/mounts") as f:
        left += [ln.split()[1] for ln in f if ln.split()[1].startswith(work + "/")]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if work.encode() in f.read():
                        left.append(f"process {p}")
            except OSError:
                pass
    c.check(not left, f"cluster.sh down leaves nothing: {left}")

c.finish("cluster.node")
