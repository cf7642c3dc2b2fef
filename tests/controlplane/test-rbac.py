#!/usr/bin/env python3
"""deploy/rbac.yaml on a real kube-apiserver (RBAC authorizer): a token for
the corral-agent ServiceAccount minted through the TokenRequest API, as the
kubelet mints the one a pod mounts, can get, list and watch pods,
namespaces, Nodes, NetworkPolicies and AccessPolicies cluster-wide, create and
patch Events (drops recorded on pods), and nothing more: no other create,
update, patch or delete, no reading of Events, no Secrets.

and, in namespace default only, get, list and watch EndpointSlices (the
kubernetes Service's: the kube-apiserver entity, which agentctl then reads
with the agent's token).

usage: test-rbac.py RUN_SH REPO [AGENTCTL]
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH, REPO = sys.argv[1:3]
AGENTCTL = sys.argv[3] if len(sys.argv) > 3 else None
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
SLICE_SEL = "labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"
c = Checks()
NS, SA = "corral-system", "corral-agent"
READ = {"pods": "/api/v1/pods", "namespaces": "/api/v1/namespaces",
        "networkpolicies.networking.k8s.io": "/apis/networking.k8s.io/v1/networkpolicies",
        "accesspolicies.corral.dev": "/apis/corral.dev/v1/accesspolicies",
        "nodes": "/api/v1/nodes"}  # the AccessPolicy entities nodes and world
WRITE = {"events": {"create", "patch"}}  # drops as Events on pods (core/v1 Events)


def token_request(cp, sa, bound_pod=None):
    spec = {"expirationSeconds": 3600}
    if bound_pod:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": bound_pod["metadata"]["name"],
                                  "uid": bound_pod["metadata"]["uid"]}
    status, tr = cp.json("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{sa}/token",
                         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    c.check(status == 201 and tr.get("status", {}).get("token"), f"TokenRequest for {sa}: {status} {tr}")
    return tr["status"]["token"]


def can_i_list(cp, kubeconfig):
    """kubectl auth can-i --list, as {resource: verbs} and a set of non-resource rows."""
    out = cp.kubectl("auth", "can-i", "--list", kubeconfig=kubeconfig).stdout
    res, nonres = {}, set()
    for line in out.splitlines()[1:]:
        m = re.match(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$", line)
        if not m:
            c.check(False, f"can-i --list: a line not understood: {line!r}")
            continue
        resource, urls, names, verbs = m.groups()
        if resource:
            res.setdefault((resource, names), set()).update(verbs.split())
        else:
            nonres.add((urls, verbs))
    return res, nonres


with ControlPlane(RUN_SH) as cp:
    cp.kubectl("apply", "-f", os.path.join(REPO, "deploy/crd"), "-f", os.path.join(REPO, "deploy/rbac.yaml"))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesspolicies.corral.dev")
    # one object of each kind, so that lists are not empty
    cp.kubectl("create", "namespace", "team")
    cp.kubectl("-n", "team", "create", "-f", "-", input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
        "spec": {"podSelector": {}}}))
    cp.kubectl("-n", "team", "create", "-f", "-", input=json.dumps({
        "apiVersion": "corral.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "ap"}, "spec": {"application": "a"}}))
    cp.kubectl("-n", "team", "run", "p", "--image=registry.example.com/app:1")
    cp.kubectl("-n", "team", "create", "secret", "generic", "s", "--from-literal=k=v")
    cp.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]}}))

    # the kubernetes Service's EndpointSlice, as the API server's endpoint
    # reconciler writes it (this control plane runs without one)
    cp.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.50"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}))

    token = token_request(cp, SA)

    # who the token is, as the API server sees it
    status, rev = cp.json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token)
    ui = (rev or {}).get("status", {}).get("userInfo", {})
    c.check(status == 201 and ui.get("username") == f"system:serviceaccount:{NS}:{SA}",
            f"the token authenticates as the ServiceAccount: {status} {ui}")
    c.check({"system:serviceaccounts", f"system:serviceaccounts:{NS}", "system:authenticated"} <= set(ui.get("groups", [])),
            f"ServiceAccount groups: {ui.get('groups')}")

    # ---- what it can do, by real requests
    for res, path in READ.items():
        status, body = cp.json("GET", path, token=token)
        c.check(status == 200 and body.get("items"), f"list {res} cluster-wide: {status}")
        st, hdrs, data = cp.request("GET", path + "?watch=1&timeoutSeconds=1&resourceVersion=" +
                                    body["metadata"]["resourceVersion"], token=token)
        c.check(st == 200, f"watch {res} cluster-wide: {st} {data[:200]!r}")
    status, _ = cp.json("GET", "/api/v1/namespaces/team/pods/p", token=token)
    c.check(status == 200, f"get one pod: {status}")
    # the API server's endpoints, in namespace default only
    status, body = cp.json("GET", SLICES + "?" + SLICE_SEL, token=token)
    c.check(status == 200 and [i["metadata"]["name"] for i in body.get("items", [])] == ["kubernetes"],
            f"list the kubernetes Service's EndpointSlices in default: {status}")
    st, _, data = cp.request("GET", SLICES + "?" + SLICE_SEL + "&watch=1&timeoutSeconds=1&resourceVersion=" +
                             body["metadata"]["resourceVersion"], token=token)
    c.check(st == 200, f"watch them: {st} {data[:200]!r}")
    # an Event on a pod, created then patched, as the agent records drops
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "p.drop", "namespace": "team"},
          "involvedObject": {"kind": "Pod", "namespace": "team", "name": "p"}, "reason": "PolicyDrop",
          "message": "dropped", "type": "Warning", "count": 1, "source": {"component": "corral-agent"}}
    status, _ = cp.json("POST", "/api/v1/namespaces/team/events", ev, token=token)
    c.check(status == 201, f"create an Event: {status}")
    status, _, _ = cp.request("PATCH", "/api/v1/namespaces/team/events/p.drop", {"count": 2}, token=token,
                              content_type="application/merge-patch+json")
    c.check(status == 200, f"patch an Event's count: {status}")

    # ---- and what it cannot
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1"}]}}
    denied = [
        ("POST", "/api/v1/namespaces/team/pods", pod),
        ("PUT", "/api/v1/namespaces/team", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        ("PATCH", "/api/v1/namespaces/team/pods/p", {"metadata": {"labels": {"x": "y"}}}),
        ("PATCH", "/api/v1/namespaces/team/pods/p/status", {"status": {"phase": "Running"}}),
        ("DELETE", "/api/v1/namespaces/team/pods/p", None),
        ("DELETE", "/api/v1/namespaces/team/pods", None),
        ("POST", "/apis/networking.k8s.io/v1/namespaces/team/networkpolicies",
         {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"}, "spec": {"podSelector": {}}}),
        ("DELETE", "/apis/networking.k8s.io/v1/namespaces/team/networkpolicies/deny", None),
        ("POST", "/apis/corral.dev/v1/namespaces/team/accesspolicies",
         {"apiVersion": "corral.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "b"}, "spec": {"application": "b"}}),
        ("DELETE", "/apis/corral.dev/v1/namespaces/team/accesspolicies/ap", None),
        ("DELETE", "/api/v1/namespaces/team", None),
        ("GET", "/api/v1/namespaces/team/secrets/s", None),
        ("GET", "/api/v1/secrets", None),
        ("GET", "/api/v1/namespaces/team/secrets?watch=1&timeoutSeconds=1", None),
        ("GET", "/api/v1/configmaps", None),
        ("GET", "/apis/discovery.k8s.io/v1/endpointslices", None),
        ("GET", "/apis/discovery.k8s.io/v1/namespaces/team/endpointslices", None),
        ("DELETE", SLICES + "/kubernetes", None),
        ("PATCH", SLICES + "/kubernetes", {"metadata": {"labels": {"x": "y"}}}),
        ("PATCH", "/api/v1/nodes/n", {"metadata": {"labels": {"x": "y"}}}),
        ("DELETE", "/api/v1/nodes/n", None),
        ("GET", "/api/v1/namespaces/team/events", None),
        ("GET", "/api/v1/namespaces/team/events/p.drop", None),
        ("PUT", "/api/v1/namespaces/team/events/p.drop", ev),
        ("DELETE", "/api/v1/namespaces/team/events/p.drop", None),
        ("POST", "/apis/events.k8s.io/v1/namespaces/team/events", dict(ev, apiVersion="events.k8s.io/v1")),
        ("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{SA}/token",
         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    ]
    for method, path, body in denied:
        ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
        status, _, data = cp.request(method, path, body, token=token, content_type=ctype)
        reason = json.loads(data).get("reason") if data.startswith(b"{") else data[:100]
        c.check(status == 403 and reason == "Forbidden", f"{method} {path} must be 403 Forbidden, is {status} {reason}")
    status, _ = cp.json("GET", "/api/v1/namespaces/team/pods/p")
    c.check(status == 200, "the pod it could not delete is still there")

    # ---- the same as the authorizer answers it (SelfSubjectAccessReview,
    # what kubectl auth can-i asks), for every verb
    def can_i(verb, res, ns, sub=None):
        group, _, resource = "", res, res
        if "." in res:
            resource, group = res.split(".", 1)
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": ns or ""}
        if sub:
            attrs["subresource"] = sub
        status, r = cp.json("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                             "spec": {"resourceAttributes": attrs}}, token=token)
        return "yes" if status == 201 and r["status"].get("allowed") else "no"

    resources = [(r, None) for r in READ] + [(r, None) for r in ("secrets", "configmaps", "serviceaccounts", "events")]
    resources += [("nodes", "status"), ("nodes", "proxy"), ("pods", "status"), ("pods", "exec"), ("pods", "log"), ("serviceaccounts", "token"),
                  ("networkpolicies.networking.k8s.io", "status"), ("accesspolicies.corral.dev", "status")]
    for res, sub in resources:
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"):
            want = "yes" if not sub and ((res in READ and verb in ("get", "list", "watch")) or
                                         verb in WRITE.get(res, ())) else "no"
            for ns in ("", "team"):
                got = can_i(verb, res, ns, sub)
                c.check(got == want, f"can-i {verb} {res}{'/' + sub if sub else ''} in {ns or 'all namespaces'}: {got}, want {want}")
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"):
        for ns in ("", "team", "default"):
            want = "yes" if ns == "default" and verb in ("get", "list", "watch") else "no"
            got = can_i(verb, "endpointslices.discovery.k8s.io", ns)
            c.check(got == want, f"can-i {verb} endpointslices in {ns or 'all namespaces'}: {got}, want {want}")
    # and kubectl's own can-i, on a few
    kc = cp.token_kubeconfig(token)
    for args, want in ((["list", "pods", "-A"], "yes"), (["watch", "accesspolicies.corral.dev", "-A"], "yes"),
                       (["create", "pods", "-n", "team"], "no"), (["get", "secrets", "-A"], "no"),
                       (["update", "pods", "-n", "team", "--subresource=status"], "no"), (["*", "*", "-A"], "no"),
                       (["create", "events", "-n", "team"], "yes"), (["patch", "events", "-A"], "yes"),
                       (["get", "events", "-n", "team"], "no"), (["delete", "events", "-n", "team"], "no")):
        r = cp.kubectl("auth", "can-i", *args, kubeconfig=kc, check=False)
        c.check(r.stdout.strip() == want, f"kubectl auth can-i {' '.join(args)}: {r.stdout.strip()}, want {want}")

    # exactly what rbac.yaml adds: the rules of corral-agent minus those of a
    # ServiceAccount of the same namespace bound to nothing (the bootstrap
    # roles every account has: self reviews, discovery, ...)
    mine, mine_nr = can_i_list(cp, kc)
    cp.kubectl("-n", NS, "create", "serviceaccount", "nobody")
    base, base_nr = can_i_list(cp, cp.token_kubeconfig(token_request(cp, "nobody"), "nobody.kubeconfig"))
    added = {k: v - base.get(k, set()) for k, v in mine.items() if v - base.get(k, set())}
    want = {(r, ""): {"get", "list", "watch"} for r in READ}
    want.update({(r, ""): v for r, v in WRITE.items()})
    want[("endpointslices.discovery.k8s.io", "")] = {"get", "list", "watch"}  # can-i --list is of namespace default
    c.check(added == want, f"rbac.yaml grants exactly get/list/watch on the five resources and create/patch on "
                           f"events: {added}")
    c.check(mine_nr == base_nr, f"rbac.yaml grants no non-resource URL: {mine_nr - base_nr}")
    for (res, _), verbs in mine.items():
        c.check(verbs <= {"get", "list", "watch"} or (res.startswith("selfsubject") and verbs == {"create"}) or
                (res in WRITE and verbs == WRITE[res]),
                f"can-i --list: {res} {sorted(verbs)}")

    # ---- agentctl reads the cluster with the agent's token: the kube-apiserver
    # entity follows that EndpointSlice
    if AGENTCTL:
        d = os.path.join(cp.dir, "overlay")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "app.yaml"), "w") as f:
            f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: api-client, namespace: team, labels: {app: cli}}\n"
                    "status: {podIPs: [{ip: 10.9.0.5}]}\n---\n"
                    "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: cli, namespace: team}\n"
                    "spec: {application: cli, outbound: {external: [{entity: kube-apiserver, ports: [{port: 6443}]}, "
                    "{entity: nodes, ports: [{port: 10250}]}]}}\n")
        def explain(dst, port):
            r = subprocess.run([AGENTCTL, "explain", "--kubeconfig", kc, "--from", d, "team/api-client", dst,
                                "--port", str(port)], capture_output=True, text=True)
            return r.stdout.splitlines()[0] if r.stdout else r.stderr.strip()
        got = explain("192.0.2.50", 6443)
        c.check(got == "ALLOWED", f"agentctl with the agent's token: to the API server's endpoint: {got}")
        got = explain("192.0.2.51", 6443)
        c.check(got == "DENIED", f"agentctl: to another address: {got}")
        # the Node n (192.0.2.10) read from the cluster too (the nodes entity)
        got = explain("192.0.2.10", 10250)
        c.check(got == "ALLOWED", f"agentctl: to node n's address, entity nodes: {got}")

    # ---- a token bound to a pod (what the kubelet mounts) dies with the pod
    cp.kubectl("-n", NS, "create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent"},
        "spec": {"serviceAccountName": SA, "containers": [{"name": "c", "image": "registry.example.com/corral:1"}]}}))
    _, p = cp.json("GET", f"/api/v1/namespaces/{NS}/pods/agent")
    bound = token_request(cp, SA, bound_pod=p)
    status, _ = cp.json("GET", "/api/v1/pods", token=bound)
    c.check(status == 200, f"a pod-bound token lists pods: {status}")
    cp.kubectl("-n", NS, "delete", "pod", "agent")
    # the API server caches a token's authentication for 10 s, then looks the
    # pod up again: refused from then on
    t = time.monotonic()
    try:
        cp.wait("the pod-bound token to be refused", lambda: cp.json("GET", "/api/v1/pods", token=bound)[0] == 401, 20)
        c.check(True, f"after its pod is deleted, the pod-bound token is refused (401, after {time.monotonic() - t:.1f}s)")
        print(f"pod-bound token refused {time.monotonic() - t:.1f}s after its pod was deleted")
    except RuntimeError as e:
        c.check(False, str(e))
    status, _ = cp.json("GET", "/api/v1/pods", token=token)
    c.check(status == 200, f"an unbound token still works: {status}")
    status, body = cp.json("GET", "/api/v1/pods", token=token[:-4] + "AAAA")
    c.check(status == 401, f"a tampered token is refused: {status}")

c.finish("controlplane.rbac")
