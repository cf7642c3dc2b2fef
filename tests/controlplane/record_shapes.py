#!/usr/bin/env python3
"""Records what a real kube-apiserver answers in each situation the corral
kube client meets (the fake API server of tests/kube must answer in the
same shapes). One JSON file per situation in OUTDIR; see the README written
there. Driven by record-shapes.sh.

Every exchange is made over HTTP/1.1 with a small client of our own that
keeps what a library would hide: the status line, every header in order,
the size and arrival time of each chunk of a chunked body, and the body's
exact bytes.

usage: record_shapes.py RUN_SH OUTDIR
"""
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane  # noqa: E402

RUN_SH, OUT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
written = []


def exchange(cp, method, path, token=None, body=None, content_type="application/json", timeout=60, admin=True):
    """One HTTP/1.1 request; returns a dict with everything seen on the wire."""
    host, port = cp.host.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=cp.path("ca.crt"))
    if admin and token is None:
        ctx.load_cert_chain(cp.path("pki/admin.crt"), cp.path("pki/admin.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=timeout), server_hostname=host)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {cp.host}", "User-Agent: corral-record-shapes",
             "Accept: application/json", "Connection: close"]
    if token is not None:
        lines.append("Authorization: Bearer " + token)
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    t0 = time.monotonic()
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
    f = s.makefile("rb")
    status_line = f.readline().decode().rstrip("\r\n")
    headers = []
    while True:
        h = f.readline().decode().rstrip("\r\n")
        if not h:
            break
        k, _, v = h.partition(":")
        headers.append([k, v.strip()])
    hd = {k.lower(): v for k, v in headers}
    data, chunks = b"", None
    if hd.get("transfer-encoding") == "chunked":
        chunks = []
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            piece = f.read(size)
            f.readline()
            chunks.append({"t": round(time.monotonic() - t0, 2), "bytes": size})
            data += piece
    elif "content-length" in hd:
        data = f.read(int(hd["content-length"]))
    else:
        data = f.read()
    s.close()
    _, code, reason = (status_line.split(" ", 2) + [""])[:3]
    return {"request": {"method": method, "path": path,
                        "auth": "bearer token" if token is not None else ("client certificate (cluster admin)" if admin else "none"),
                        **({"body": json.loads(body)} if body else {})},
            "status_line": status_line, "status": int(code), "headers": headers,
            **({"chunks": chunks} if chunks is not None else {}),
            "body": data.decode(), "duration_s": round(time.monotonic() - t0, 2)}


def parsed(rec):
    """Adds the body parsed: JSON, or one JSON per line for a watch stream."""
    ctype = dict((k.lower(), v) for k, v in rec["headers"]).get("content-type", "")
    b = rec["body"]
    if "watch=1" in rec["request"]["path"] and rec["status"] == 200:
        rec["events"] = [json.loads(l) for l in b.split("\n") if l.strip()]
        rec["body_ends_with_newline"] = b.endswith("\n")
    elif ctype.startswith("application/json") and b:
        rec["json"] = json.loads(b)
    return rec


def save(name, what, rec, **notes):
    rec = parsed(rec)
    doc = {"situation": what, **notes, **rec}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    written.append(name)
    evs = [e["type"] for e in rec.get("events", [])]
    print(f"{name}: {rec['status']} {'events ' + ','.join(evs) if evs else ''}", flush=True)
    return rec


def watch_async(cp, path, **kw):
    """Starts a watch in a thread; join() returns its exchange."""
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("r", exchange(cp, "GET", path, **kw)))
    th.start()
    time.sleep(0.5)  # the watch is established before the changes are made

    def join():
        th.join()
        return box["r"]
    return join


def rv_of(cp, path):
    st, body = cp.json("GET", path)
    assert st == 200, (path, st, body)
    return body["metadata"]["resourceVersion"]


def pod(name, node="node-1", labels=None, image="registry.example.com/app:1"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": image,
                                                        "ports": [{"name": "http", "containerPort": 8080}]}]}}


def kubelet_status(cp, ns, name, ip, ip6=None):
    """What a kubelet writes through the status subresource once the pod runs."""
    ips = [{"ip": ip}] + ([{"ip": ip6}] if ip6 else [])
    body = {"status": {"phase": "Running", "podIP": ip, "podIPs": ips, "hostIP": "10.0.0.1",
                       "hostIPs": [{"ip": "10.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    status, _, data = cp.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", body,
                                 content_type="application/strategic-merge-patch+json")
    assert status == 200, data


def main():
    t_start = time.monotonic()
    with ControlPlane(RUN_SH) as cp:
        RES = {"pods": "/api/v1/pods", "namespaces": "/api/v1/namespaces",
               "networkpolicies": "/apis/networking.k8s.io/v1/networkpolicies",
               "accesspolicies": "/apis/corral.dev/v1/accesspolicies"}
        repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))

        # 404 for a CRD's path before the CRD is installed (the agent may
        # start before deploy/crd is applied)
        save("404-crd-not-installed", "LIST of AccessPolicies before the CRD is installed",
             exchange(cp, "GET", RES["accesspolicies"]))

        cp.kubectl("apply", "-f", os.path.join(repo, "deploy/crd"), "-f", os.path.join(repo, "deploy/rbac.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesspolicies.corral.dev")
        cp.wait("AccessPolicies served", lambda: cp.json("GET", RES["accesspolicies"])[0] == 200)
        for ns in ("shop", "team"):
            cp.kubectl("create", "namespace", ns)
            cp.kubectl("label", "namespace", ns, "tier=apps")
        for i, (ns, name) in enumerate((("shop", "web"), ("shop", "db"), ("team", "api"))):
            cp.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod(name)))
            # team/api is dual-stack (two podIPs)
            kubelet_status(cp, ns, name, f"10.244.1.{10 + i}", "fd00:10:244:1::12" if name == "api" else None)
        cp.kubectl("-n", "shop", "create", "-f", "-", input=json.dumps({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db-from-web"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                  "ports": [{"protocol": "TCP", "port": 5432}]}]}}))
        cp.kubectl("-n", "team", "create", "-f", "-", input=json.dumps({
            "apiVersion": "corral.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "api"},
            "spec": {"application": "api", "inbound": {"rules": [{"application": "web", "namespace": "shop",
                                                                  "ports": [{"port": 8080}]}]}}}))

        # ---- LIST
        for res, path in RES.items():
            save(f"list-{res}", f"LIST {path} (resourceVersion unset: a consistent read)", exchange(cp, "GET", path))
        save("list-pods-rv0", "LIST /api/v1/pods?resourceVersion=0 (may be served from the watch cache)",
             exchange(cp, "GET", RES["pods"] + "?resourceVersion=0"))
        save("list-pods-label-selector", "LIST with a label selector",
             exchange(cp, "GET", RES["pods"] + "?labelSelector=" + urllib.parse.quote("app in (web,api)")))
        save("list-pods-field-selector", "LIST of one node's pods (fieldSelector spec.nodeName=node-1, resourceVersion "
             "unset: a consistent read, as the agent's read for provisional verdicts)",
             exchange(cp, "GET", RES["pods"] + "?fieldSelector=" + urllib.parse.quote("spec.nodeName=node-1")))
        p1 = save("list-pods-page1", "paginated LIST, first page (limit=2)", exchange(cp, "GET", RES["pods"] + "?limit=2"))
        cont = p1["json"]["metadata"]["continue"]
        save("list-pods-page2", "paginated LIST, next page with the continue token",
             exchange(cp, "GET", RES["pods"] + "?limit=2&continue=" + urllib.parse.quote(cont)))

        # ---- WATCH: ADDED, MODIFIED (labels, status as a kubelet), DELETED
        rv = rv_of(cp, RES["pods"])
        j = watch_async(cp, f"{RES['pods']}?watch=1&allowWatchBookmarks=true&timeoutSeconds=8&resourceVersion={rv}")
        cp.kubectl("-n", "shop", "create", "-f", "-", input=json.dumps(pod("cart")))
        cp.kubectl("-n", "shop", "label", "pod", "cart", "version=2")
        kubelet_status(cp, "shop", "cart", "10.244.1.20")
        # a pod on a node is deleted gracefully: first marked (deletionTimestamp),
        # removed once its kubelet confirms; there is none here, so force it
        cp.kubectl("-n", "shop", "delete", "pod", "cart", "--wait=false")
        time.sleep(0.3)
        cp.kubectl("-n", "shop", "delete", "pod", "cart", "--grace-period=0", "--force")
        save("watch-pods", "WATCH pods from a LIST's resourceVersion: create, label, kubelet status, graceful "
             "delete (marked), forced delete; allowWatchBookmarks, timeoutSeconds=8 (a BOOKMARK 2 s before the end)",
             j(), note="pods without nodeName are deleted at once (DELETED only)")

        rv = rv_of(cp, RES["namespaces"])
        j = watch_async(cp, f"{RES['namespaces']}?watch=1&allowWatchBookmarks=true&timeoutSeconds=15&resourceVersion={rv}")
        cp.kubectl("create", "namespace", "tmp")
        cp.kubectl("label", "namespace", "tmp", "tier=tmp")
        cp.kubectl("delete", "namespace", "tmp", "--wait=false")
        save("watch-namespaces", "WATCH namespaces: create, label, delete (Terminating, emptied by the namespace "
             "controller of kube-controller-manager, then DELETED); timeoutSeconds=15", j())

        for res, ns, obj, patch in (
            ("networkpolicies", "team", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                         "metadata": {"name": "np"}, "spec": {"podSelector": {}}},
             {"spec": {"policyTypes": ["Ingress", "Egress"]}}),
            ("accesspolicies", "team", {"apiVersion": "corral.dev/v1", "kind": "AccessPolicy",
                                        "metadata": {"name": "ap"}, "spec": {"application": "x"}},
             {"spec": {"inbound": {"rules": [{"application": "y"}]}}})):
            rv = rv_of(cp, RES[res])
            j = watch_async(cp, f"{RES[res]}?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion={rv}")
            kind = obj["kind"].lower()
            cp.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj))
            cp.kubectl("-n", ns, "patch", kind, obj["metadata"]["name"], "--type=merge", "-p", json.dumps(patch))
            cp.kubectl("-n", ns, "delete", kind, obj["metadata"]["name"])
            save(f"watch-{res}", f"WATCH {res}: create, patch, delete", j())

        # ---- BOOKMARK. The server sends one (2 s before the deadline, and
        # about every minute) only when it moves the client forward: a watch
        # of a resource that had no change since the watch's resourceVersion,
        # while other resources changed (the global resourceVersion moved on).
        for i, res in enumerate(("pods", "namespaces", "accesspolicies")):
            rv = rv_of(cp, RES[res])
            cp.kubectl("-n", "team", "create", "configmap", f"bump-{i}")
            rv_of(cp, RES[res])  # a consistent read: the watch cache catches up with etcd
            save(f"watch-bookmark-{res}", "a WATCH of a resource with no change, allowWatchBookmarks=true, "
                 "timeoutSeconds=5, from a resourceVersion older than the global one: one BOOKMARK 2 s before the deadline",
                 exchange(cp, "GET", f"{RES[res]}?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion={rv}"))
        # ---- the kubernetes Service's EndpointSlices (the kube-apiserver
        # entity): list and watch in namespace default with the Service's
        # label; this control plane runs --endpoint-reconciler-type=none, so
        # the slice is written here, as the reconciler would
        es = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
        sel = "labelSelector=" + urllib.parse.quote("kubernetes.io/service-name=kubernetes")
        eslice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "kubernetes"}},
                  "addressType": "IPv4",
                  "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
                  "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}
        cp.kubectl("apply", "-f", "-", input=json.dumps(eslice))
        save("list-endpointslices", "LIST of the kubernetes Service's EndpointSlices in default (label selector)",
             exchange(cp, "GET", es + "?" + sel))
        rv = rv_of(cp, es + "?" + sel)
        j = watch_async(cp, f"{es}?watch=1&allowWatchBookmarks=true&timeoutSeconds=4&resourceVersion={rv}&{sel}")
        eslice["endpoints"][0]["addresses"] = ["10.0.0.2"]
        cp.kubectl("apply", "-f", "-", input=json.dumps(eslice))
        cp.kubectl("-n", "default", "delete", "endpointslice", "kubernetes")
        save("watch-endpointslices", "WATCH of the kubernetes Service's EndpointSlices in default (label selector): "
             "its address changed, then deleted", j())
        rv = rv_of(cp, es + "?" + sel)
        cp.kubectl("-n", "team", "create", "configmap", "bump-es")
        rv_of(cp, es + "?" + sel)
        save("watch-bookmark-endpointslices", "a WATCH of EndpointSlices with no change, allowWatchBookmarks=true, "
             "timeoutSeconds=5, from an older resourceVersion: one BOOKMARK 2 s before the deadline",
             exchange(cp, "GET", f"{es}?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion={rv}&{sel}"))
        save("watch-quiet-no-bookmark", "a WATCH from the current resourceVersion with nothing changing anywhere: "
             "no BOOKMARK (it would not move the client forward); the stream just ends at timeoutSeconds",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&allowWatchBookmarks=true&timeoutSeconds=4&resourceVersion={rv_of(cp, RES['pods'])}"))
        rv = rv_of(cp, RES["pods"])
        cp.kubectl("-n", "team", "create", "configmap", "bump-x")
        rv_of(cp, RES["pods"])
        save("watch-no-bookmarks", "the first WATCH above without allowWatchBookmarks: no BOOKMARK",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&timeoutSeconds=4&resourceVersion={rv}"))

        # ---- streaming initial list (WatchList)
        save("watch-sendinitialevents", "WATCH with sendInitialEvents=true, resourceVersionMatch=NotOlderThan, "
             "resourceVersion unset: ADDED for each object, then the BOOKMARK annotated k8s.io/initial-events-end",
             exchange(cp, "GET", RES["pods"] + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                      "&allowWatchBookmarks=true&timeoutSeconds=4"))
        save("watch-sendinitialevents-crd", "the same for a CRD (AccessPolicies)",
             exchange(cp, "GET", RES["accesspolicies"] + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                      "&allowWatchBookmarks=true&timeoutSeconds=4"))
        save("watch-sendinitialevents-rv0", "sendInitialEvents=true with resourceVersion=0",
             exchange(cp, "GET", RES["pods"] + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                      "&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=3"))
        for name, q, what in (
            ("no-bookmarks", "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=3",
             "without allowWatchBookmarks"),
            ("no-rvmatch", "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=3",
             "without resourceVersionMatch"),
            ("rvmatch-exact", "watch=1&sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true&timeoutSeconds=3",
             "with resourceVersionMatch=Exact"),
            ("on-list", "sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "on a LIST (no watch=1)"),
            ("bad-value", "watch=1&sendInitialEvents=maybe&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=3",
             "with a value that is not a boolean")):
            save(f"sendinitialevents-{name}", f"an invalid sendInitialEvents request: {what}",
                 exchange(cp, "GET", f"{RES['pods']}?{q}"))

        # ---- errors
        save("404-object", "GET of an object that does not exist", exchange(cp, "GET", "/api/v1/namespaces/shop/pods/nothing"))
        save("404-path", "a path no API serves", exchange(cp, "GET", "/apis/corral.dev/v1/nothings"))
        save("401-bad-token", "a bearer token the server does not know", exchange(cp, "GET", RES["pods"], token="not-a-token"))
        save("401-anonymous-list", "no credentials at all (anonymous): not 401, the anonymous user is authenticated "
             "and then forbidden", exchange(cp, "GET", RES["pods"], admin=False))
        cp.kubectl("-n", "corral-system", "create", "serviceaccount", "nobody")
        _, tr = cp.json("POST", "/api/v1/namespaces/corral-system/serviceaccounts/nobody/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        nobody = tr["status"]["token"]
        save("403-list", "LIST with a valid token that has no rights (ServiceAccount bound to nothing)",
             exchange(cp, "GET", RES["pods"], token=nobody))
        save("403-watch", "WATCH with a valid token that has no rights",
             exchange(cp, "GET", RES["networkpolicies"] + "?watch=1&timeoutSeconds=2", token=nobody))
        _, tr = cp.json("POST", "/api/v1/namespaces/corral-system/serviceaccounts/corral-agent/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        agent = tr["status"]["token"]
        save("list-pods-as-agent", "LIST pods as the corral-agent ServiceAccount (deploy/rbac.yaml)",
             exchange(cp, "GET", RES["pods"], token=agent))
        save("403-secrets-as-agent", "the corral-agent token reading Secrets",
             exchange(cp, "GET", "/api/v1/secrets", token=agent))

        # ---- 410: an expired continue token, a watch from before a compaction
        p1 = exchange(cp, "GET", RES["pods"] + "?limit=1")
        cont = json.loads(p1["body"])["metadata"]["continue"]
        old_rv = rv_of(cp, RES["pods"])
        for i in range(3):
            cp.kubectl("-n", "shop", "label", "pod", "web", f"gen={i}", "--overwrite")
        compacted = cp.op("compact")
        save("list-continue-after-compact", "continue token from before an etcd compaction, asked at once "
             "(the API server may still answer it from its watch cache's snapshots)",
             exchange(cp, "GET", RES["pods"] + "?limit=1&continue=" + urllib.parse.quote(cont)),
             compacted_at=compacted)
        save("watch-cached-after-compact", "WATCH from a resourceVersion older than the compaction, watch cache on, "
             "before any restart: the cache still holds those events and serves them",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&timeoutSeconds=2&resourceVersion={old_rv}"),
             compacted_at=compacted)
        save("list-exact-rv-after-compact", "LIST at an exact resourceVersion older than the compaction",
             exchange(cp, "GET", f"{RES['pods']}?resourceVersion={old_rv}&resourceVersionMatch=Exact"),
             compacted_at=compacted)
        # the watch cache drops its snapshots older than etcd's compaction when
        # it next polls etcd (every 15 s)
        time.sleep(16)
        save("410-list-continue-cache-compacted", "continue token from before an etcd compaction, 16 s later "
             "(the watch cache has dropped its older snapshots): HTTP 410",
             exchange(cp, "GET", RES["pods"] + "?limit=1&continue=" + urllib.parse.quote(cont)), compacted_at=compacted)
        save("410-list-exact-rv", "LIST at an exact resourceVersion older than the compaction, 16 s later",
             exchange(cp, "GET", f"{RES['pods']}?resourceVersion={old_rv}&resourceVersionMatch=Exact"),
             compacted_at=compacted)
        save("watch-cached-after-compact-16s", "WATCH from a resourceVersion older than the compaction, 16 s "
             "later, watch cache on, no restart",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&timeoutSeconds=2&resourceVersion={old_rv}"),
             compacted_at=compacted)
        cp.op("restart")

        # Right after a restart (once /readyz is ok) a resource's watch cache may
        # still be filling: 429 with Retry-After. Kept when seen.
        def after_restart(name, what, path, **notes):
            seen429 = False
            for _ in range(100):
                rec = exchange(cp, "GET", path)
                if rec["status"] != 429:
                    return save(name, what, rec, **notes)
                if not seen429:
                    seen429 = True
                    save("429-storage-reinitializing", "a request right after the API server restarted, before this "
                         "resource's watch cache is filled (recorded when it happens)", rec)
                time.sleep(0.2)
            raise RuntimeError(f"{path}: still 429 after 20 s")

        after_restart("410-watch-crd-cached", "WATCH of a CRD (AccessPolicies) from a resourceVersion older than the compaction, after a "
                      "restart: HTTP 200 and one ERROR event (asked first: a CRD's cache is often not filled yet)",
                      f"{RES['accesspolicies']}?watch=1&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion={old_rv}",
                      compacted_at=compacted)
        after_restart("410-list-continue", "continue token from before a compaction, after the API server restarted",
                      RES["pods"] + "?limit=1&continue=" + urllib.parse.quote(cont), compacted_at=compacted)
        after_restart("410-watch-cached", "WATCH from a resourceVersion older than the compaction, after a restart "
                      "(watch cache on, as in production): HTTP 200 and one ERROR event",
                      f"{RES['pods']}?watch=1&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion={old_rv}",
                      compacted_at=compacted)
        save("sendinitialevents-old-rv", "sendInitialEvents=true, NotOlderThan a resourceVersion older than the compaction: "
             "served (not 410)",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                      f"&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion={old_rv}"), compacted_at=compacted)
        save("watch-bad-rv", "WATCH with a resourceVersion that is not a number (the server answers 500, not 400)",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&timeoutSeconds=2&resourceVersion=abc"))
        save("watch-future-rv", "WATCH from a resourceVersion the server has not reached yet",
             exchange(cp, "GET", f"{RES['pods']}?watch=1&timeoutSeconds=5&resourceVersion=99999999"))

        # ---- HTTP/2: ALPN, and several watches at once on one connection (curl -Z)
        r = subprocess.run(["curl", "-sv", "--no-progress-meter", "--http2", "-Z", "--cacert", cp.path("ca.crt"),
                            "--cert", cp.path("pki/admin.crt"), "--key", cp.path("pki/admin.key"),
                            "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                            f"{cp.url}/api/v1/pods?watch=1&timeoutSeconds=2",
                            f"{cp.url}/api/v1/namespaces?watch=1&timeoutSeconds=2",
                            f"{cp.url}/apis/corral.dev/v1/accesspolicies?watch=1&timeoutSeconds=2"],
                           capture_output=True, text=True)
        lines = [l for l in r.stderr.splitlines()
                 if re.search(r"ALPN|HTTP/2|HTTP/1|using HTTP|Re-using|Connected to|multiplex|< content-type|< HTTP|^> GET", l, re.I)]
        doc = {"situation": "curl -v --http2 -Z: three watches started together",
               "curl_version": subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
               "negotiated_h2": bool(re.search(r"ALPN: server accepted h2|ALPN, server accepted to use h2", r.stderr)),
               "tcp_connections": len(re.findall(r"\* Connected to", r.stderr)),
               "multiplexed": "multiplex" in r.stderr.lower() or "Re-using existing connection" in r.stderr,
               "curl_verbose_lines": lines}
        with open(os.path.join(OUT, "http2-alpn.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        written.append("http2-alpn")
        print(f"http2-alpn: h2 {doc['negotiated_h2']}, {doc['tcp_connections']} TCP connection(s) for 3 watches", flush=True)

        version = json.loads(cp.request("GET", "/version")[2])

    # ---- without the watch cache (--watch-cache=false): watches served by etcd
    with ControlPlane(RUN_SH, env={"CORRAL_CP_WATCH_CACHE": "off"}) as cp:
        cp.kubectl("create", "namespace", "shop")
        cp.kubectl("-n", "shop", "create", "-f", "-", input=json.dumps(pod("web")))
        old_rv = rv_of(cp, "/api/v1/pods")
        for i in range(3):
            cp.kubectl("-n", "shop", "label", "pod", "web", f"gen={i}", "--overwrite")
        compacted = cp.op("compact")
        save("410-watch-etcd", "WATCH from a resourceVersion older than the compaction, watch cache off "
             "(--watch-cache=false): served by etcd", exchange(cp, "GET", f"/api/v1/pods?watch=1&allowWatchBookmarks=true"
                                                               f"&timeoutSeconds=3&resourceVersion={old_rv}"),
             compacted_at=compacted)
        # from exactly one version before the compaction: etcd still has the
        # event at the compaction revision but not the object before it
        rv = rv_of(cp, "/api/v1/pods")
        cp.kubectl("-n", "shop", "label", "pod", "web", "gen=3", "--overwrite")
        cp.op("compact")
        save("watch-etcd-at-compact-rev", "WATCH, watch cache off, from the version just before the compaction "
             "revision: an ERROR event with a 500 Status (InternalError), not 410",
             exchange(cp, "GET", f"/api/v1/pods?watch=1&timeoutSeconds=3&resourceVersion={rv}"))
        rv = rv_of(cp, "/api/v1/pods")
        cp.kubectl("-n", "shop", "create", "configmap", "bump")
        save("watch-bookmark-etcd", "the bookmark WATCH (no change to pods, others changed, allowWatchBookmarks, "
             "timeoutSeconds=5) with the watch cache off",
             exchange(cp, "GET", f"/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion={rv}"))
        save("sendinitialevents-etcd", "sendInitialEvents=true with the watch cache off",
             exchange(cp, "GET", "/api/v1/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                      "&allowWatchBookmarks=true&timeoutSeconds=3"))

    with open(os.path.join(OUT, "VERSION.json"), "w") as f:
        json.dump({"server": version, "files": sorted(n[:-5] for n in os.listdir(OUT)
                                                      if n.endswith(".json") and n != "VERSION.json")}, f, indent=1)
        f.write("\n")
    print(f"{len(written)} situations recorded in {OUT} in {time.monotonic() - t_start:.0f}s "
          f"(kube-apiserver {version.get('gitVersion')})")


if __name__ == "__main__":
    main()
