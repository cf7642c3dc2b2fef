#!/usr/bin/env python3
"""Drops as Events on a real kube-apiserver: deploy/rbac.yaml's service
account token, an agent (--source kube) enforcing in the namespace cluster
(tests/dataplane/cluster.sh), pods whose status the test sets (there is no
kubelet), a NetworkPolicy that isolates x/a, and real TCP connections from
y/b dropped on node-1:

  - one Event on x/a (reason PolicyDrop, its uid: kubectl describe pod
    shows it) whose count rises as the drops go on;
  - many flows at once: no more Events than the rate limit allows;
  - --drop-events false: none.

usage: test-events.py RUN_SH REPO AGENT CLUSTER_SH   (needs root; 77 without)"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH, REPO, AGENT, CLUSTER = sys.argv[1:5]
if os.geteuid() != 0:
    print("needs root (network namespaces): skipped")
    sys.exit(77)
c = Checks()
P = os.environ.get("CORRAL_NETNS_TAG", "") + "crcpev"
NS, SA = "corral-system", "corral-agent"


def knock(src, dst_ip, port, n=1):
    """n TCP connection attempts from pod namespace src (dropped: each times out)."""
    code = ("import socket\nfor _ in range(%d):\n s=socket.socket(); s.settimeout(0.15)\n"
            " try: s.connect((%r, %d))\n except OSError: pass\n s.close()\n" % (n, dst_ip, port))
    subprocess.run(["ip", "netns", "exec", "%s-%s" % (P, src), "python3", "-c", code], check=True)


def events(cp):
    out = cp.kubectl("-n", "x", "get", "events", "--field-selector", "reason=PolicyDrop", "-o", "json").stdout
    return json.loads(out)["items"]


agent = None
subprocess.run(["sh", CLUSTER, "up", P], check=True)
try:
    with ControlPlane(RUN_SH) as cp:
        cp.kubectl("apply", "-f", os.path.join(REPO, "deploy/crd"), "-f", os.path.join(REPO, "deploy/rbac.yaml"))
        for ns in ("x", "y"):
            cp.kubectl("create", "namespace", ns)
        for ns, pod, ip in (("x", "a", "10.1.1.1"), ("y", "b", "10.1.2.2")):
            cp.kubectl("-n", ns, "create", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": {"pod": pod}},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "registry.example.com/app:1"}]}}))
            cp.kubectl("-n", ns, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(
                {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}))
        cp.kubectl("-n", "x", "create", "-f", "-", input=json.dumps({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
            "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"]}}))
        status, tr = cp.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{SA}/token",
                             {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                              "spec": {"expirationSeconds": 3600}})
        kc = cp.token_kubeconfig(tr["status"]["token"], "agent.kubeconfig")
        sock = cp.path("agent.sock")

        def start(*extra):
            global agent
            if agent:
                agent.terminate()
                agent.wait()
            log = open(cp.path("agent.log"), "a")
            agent = subprocess.Popen([AGENT, "--source", "kube", "--kubeconfig", kc, "--node-name", "node-1",
                                      "--netns", "/run/netns/%s-n1" % P, "--socket", sock, "--debounce-ms", "5",
                                      "--metrics-address", "", *extra], stdout=log, stderr=log)
            cp.wait("the agent to sync", lambda: b'"synced": true' in subprocess.run(
                [os.path.join(os.path.dirname(AGENT), "agentctl"), "--socket", sock, "status", "-o", "json"],
                capture_output=True).stdout, 30)

        start("--drop-events-per-minute", "3")
        pod_uid = json.loads(cp.kubectl("-n", "x", "get", "pod", "a", "-o", "json").stdout)["metadata"]["uid"]

        # ---- one Event, its count rising
        knock("y-b", "10.1.1.1", 80, 3)
        evs = cp.wait("an Event", lambda: events(cp), 20)
        c.check(len(evs) == 1, f"one Event for one flow: {len(evs)}")
        e = evs[0]
        io = e["involvedObject"]
        c.check(io["kind"] == "Pod" and io["name"] == "a" and io.get("uid") == pod_uid,
                f"on pod x/a, with its uid: {io}")
        c.check(e["type"] == "Warning" and "ingress TCP/80 from y/b (10.1.2.2) dropped: isolated by NetworkPolicy x/deny"
                in e["message"], f"the message names peer, port and policy: {e['message']}")
        c.check(e["source"].get("component") == "corral-agent" and e["source"].get("host") == "node-1", f"source: {e['source']}")
        first = e["count"]
        describe = cp.kubectl("-n", "x", "describe", "pod", "a").stdout
        c.check("PolicyDrop" in describe and "corral-agent" in describe, "kubectl describe pod shows it:\n" +
                describe[describe.find("Events:"):])
        print(describe[describe.find("Events:"):])
        time.sleep(21)  # a token of the bucket (3 a minute) back
        knock("y-b", "10.1.1.1", 80, 3)
        evs = cp.wait("the count to rise", lambda: [x for x in events(cp) if x["count"] > first], 30)
        c.check(len(events(cp)) == 1 and evs[0]["metadata"]["name"] == e["metadata"]["name"],
                f"the same Event, count {first} -> {evs[0]['count']}")

        # ---- many flows at once, a fresh agent: its bucket's 3 writes make
        # 3 new Events, the other flows wait for tokens
        start("--drop-events-per-minute", "3")
        t = time.monotonic()
        for port in range(81, 91):
            knock("y-b", "10.1.1.1", port, 1)
        time.sleep(2)
        new = [x for x in events(cp) if "TCP/80 " not in x["message"]]
        secs = time.monotonic() - t
        st = json.loads(subprocess.run([os.path.join(os.path.dirname(AGENT), "agentctl"), "--socket", sock, "status",
                                        "-o", "json"], capture_output=True, text=True).stdout)
        de = st["source_state"]["drop_events"]
        print(f"10 flows in {secs:.1f} s: {len(new)} new Events; agent: {de}")
        c.check(len(new) == 3, f"3 new Events, as the rate limit allows: {len(new)}")
        c.check(de["written"] == 3 and de["pending"] == 10 - 3 and de["failed"] == 0,
                f"the other flows wait for a token: {de}")

        # ---- disabled
        start("--drop-events", "false")
        before = len(events(cp))
        knock("y-b", "10.1.1.1", 99, 3)
        time.sleep(3)
        c.check(len(events(cp)) == before and not [x for x in events(cp) if "TCP/99" in x["message"]],
                "--drop-events false: no Event")
finally:
    if agent:
        agent.terminate()
        agent.wait()
    subprocess.run(["sh", CLUSTER, "down", P])
c.finish("controlplane.events")
