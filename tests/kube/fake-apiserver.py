#!/usr/bin/env python3
"""A small Kubernetes API server for tests: list (limit/continue, expiring
continue tokens), watch (chunked events, bookmarks, timeoutSeconds, 410 as
an ERROR event or as HTTP 410 past the compaction point), bearer tokens
that can be rotated, label/field selectors, sendInitialEvents, and a switch
for each fault a list/watch client must survive.

    fake-apiserver.py [--tls CERT KEY] [--token TOKEN] [--port N]

It prints "listening PORT" on stdout once ready. Tests drive it over
/_ctl/* (JSON bodies):
    POST /_ctl/apply   {"resource": R, "object": {...}}       create or update
    POST /_ctl/delete  {"resource": R, "namespace": N, "name": X}
    POST /_ctl/wipe    {"resource": R, "namespace": N, "name": X}  vanish without an event
    POST /_ctl/load    {"path": FILE}                         objects of a List file, no events
    POST /_ctl/compact {}                                     forget the history
    POST /_ctl/token   {"token": T}                           rotate the bearer token
    POST /_ctl/fault   {"name": F, "count": N, ...}           inject a fault N times
    POST /_ctl/closeall {}                                    end every watch now
    POST /_ctl/config  {"absent": [R...], ...}                resources answered 404 (a CRD not installed)
    POST /_ctl/churn   {"rate": R, "seconds": T, "alive": K,  pod churn: R events a second for T s, copies of
                        "prefix": P}                          stored pods created (ADDED) and deleted (DELETED)
                                                              in turn, K of them alive at most, named P-N (P:
                                                              "churn"); progress in stats
    GET  /_ctl/stats                                          requests seen
With CORRAL_FAKE_TRACE=FILE it appends a line to FILE for each object
stored by /_ctl/apply or /_ctl/delete and each watch event written, with
the time (CLOCK_MONOTONIC seconds, as bench/flip.py reads the agent's and
the probe's): "T stored|written RESOURCE TYPE NS/NAME".
Resources R: pods, namespaces, networkpolicies, accesspolicies, nodes, endpointslices (namespace default).

Beside lists and watches it serves what the agent's Event recorder uses:
GET of one pod (/api/v1/namespaces/NS/pods/NAME), and core/v1 Events:
POST /api/v1/namespaces/NS/events (201; 409 if the name is taken; 422 when
involvedObject.namespace is not NS, as legacy validation requires), PATCH
.../events/NAME (a JSON merge patch; 404 if absent), and their lists
(/api/v1/events, /api/v1/namespaces/NS/events, fieldSelector as above).
The "events_status" fault answers writes of Events with its code.

Answers have the shapes a real kube-apiserver gives (recorded from one in
tests/kube/real-shapes/):
  - typed lists (PodList, NamespaceList, NetworkPolicyList) carry kind and
    apiVersion on the list only, never on the items (the items are typed Go
    structs whose TypeMeta the server leaves empty inside a list);
  - CRD lists (AccessPolicyList) carry kind and apiVersion on every item
    (custom resources are stored and served as unstructured JSON);
  - watch events always carry kind and apiVersion on the object;
  - BOOKMARK objects hold kind, apiVersion and metadata.resourceVersion,
    plus the zero values a typed object serialises (see bookmark_object).
The "poison" fault serves one stored object with a field changed (a value
the agent's decoder refuses), to test how the agent fails closed.
"""
import base64
import bisect
import collections
import copy
import gc
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = {
    "/api/v1/pods": ("pods", "Pod", "v1"),
    "/api/v1/namespaces": ("namespaces", "Namespace", "v1"),
    "/apis/networking.k8s.io/v1/networkpolicies": ("networkpolicies", "NetworkPolicy", "networking.k8s.io/v1"),
    "/apis/corral.dev/v1/accesspolicies": ("accesspolicies", "AccessPolicy", "corral.dev/v1"),
    "/api/v1/nodes": ("nodes", "Node", "v1"),
    # the API server's endpoints (the kube-apiserver entity); the agent asks
    # with labelSelector=kubernetes.io/service-name=kubernetes, which the
    # fake does not filter (hold only that Service's slices here)
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices": ("endpointslices", "EndpointSlice",
                                                                     "discovery.k8s.io/v1"),
}
KIND_OF = {r: (k, a) for r, k, a in PATHS.values()}
CRDS = {"accesspolicies"}  # served as unstructured JSON: items keep kind/apiVersion


def list_item(res, obj):
    """An object as it appears in a LIST of res (typed lists strip TypeMeta)."""
    obj = served(res, obj)
    if res in CRDS:
        return obj
    obj = dict(obj)
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    return obj


def served(res, obj):
    """The object as served: the poison fault, when armed for it, changes
    one field (path: dotted keys) to a value the agent refuses."""
    f = S.faults.get("poison")
    if not f or f.get("resource") != res or key_of(obj) != f.get("key"):
        return obj
    obj = json.loads(json.dumps(obj))
    cur = obj
    parts = f["path"].split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = f["value"]
    return obj


def merge_patch(target, patch):
    """RFC 7386: null removes a key, objects merge, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = v


def bookmark_object(res, rv, annotations=None):
    """What a real server sends as a BOOKMARK's object: the watched kind with
    only metadata.resourceVersion set; typed kinds also serialise their
    zero-valued fields (creationTimestamp null, empty spec/status)."""
    kind, api = KIND_OF[res]
    md = {"resourceVersion": str(rv)}
    if annotations:
        md["annotations"] = annotations
    obj = {"kind": kind, "apiVersion": api, "metadata": md}
    if res == "pods":
        obj.update({"spec": {"containers": None}, "status": {}})
    elif res in ("namespaces", "nodes"):  # nodes: not recorded from a real server (real-shapes/)
        obj.update({"spec": {}, "status": {}})
    elif res == "endpointslices":  # real-shapes/watch-bookmark-endpointslices.json
        obj.update({"addressType": "", "endpoints": None, "ports": None})
    elif res == "networkpolicies":
        obj["spec"] = {"podSelector": {}}  # NetworkPolicySpec.podSelector is not omitempty; no status
    return obj


class PodStore(dict):
    """The pods by namespace/name, indexed by spec.nodeName as the real
    server's watch cache is: an agent's read of its node's pods
    (fieldSelector spec.nodeName=N) filtered all 150,000 pods in Python,
    about half a second holding the lock (no request answered, no event
    written meanwhile)."""
    def __init__(self):
        super().__init__()
        self.by_node = collections.defaultdict(set)

    @staticmethod
    def node_of(obj):
        return (obj.get("spec") or {}).get("nodeName") or ""

    def __setitem__(self, k, obj):
        old = dict.get(self, k)
        if old is not None:
            self.by_node[self.node_of(old)].discard(k)
        dict.__setitem__(self, k, obj)
        self.by_node[self.node_of(obj)].add(k)

    def __delitem__(self, k):
        self.pop(k)

    def pop(self, k, *default):
        obj = dict.pop(self, k, None)
        if obj is None:
            if default:
                return default[0]
            raise KeyError(k)
        self.by_node[self.node_of(obj)].discard(k)
        return obj


class State:
    def __init__(self, token):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {r: PodStore() if r == "pods" else {} for r, _, _ in PATHS.values()}
        self.history = []  # (rv, resource, type, object)
        self.compacted = 0  # events at or below this rv are gone
        self.token = token
        self.faults = {}  # name -> {"count": n, ...}
        self.generation = 0  # bumped by closeall
        self.snapshots = {}
        self.stats = {"list": 0, "watch": 0, "unauthorized": 0, "by_resource": {}}
        self.bookmark_interval = 1.0
        self.initial_events = False
        self.absent = set()  # resources whose path is unknown (404), as before a CRD is installed
        self.events = {}  # "ns/name" -> core/v1 Event
        self.churned = set()  # keys of pods /_ctl/churn created: never copied again
        self.churn_nets = {}  # prefix -> the second octet of its pods' addresses

    def fault(self, name):
        """Consumes one occurrence of a fault; returns its parameters or None."""
        f = self.faults.get(name)
        if not f or f.get("count", 0) <= 0:
            return None
        f["count"] -= 1
        return f


S = None
TRACE = None


def trace(what, res, etype, obj):
    if TRACE:
        md = obj.get("metadata", {})
        TRACE.write("%.6f %s %s %s %s/%s\n" % (time.monotonic(), what, res, etype, md.get("namespace", ""),
                                              md.get("name", "")))
        TRACE.flush()


def churn(rate, seconds, alive, prefix):
    """/_ctl/churn: copies of stored pods (same namespace, labels and
    node), named churn-N with addresses in 10.250.0.0/16, created and,
    once `alive` exist, the oldest deleted in turn: `rate` events a second
    for `seconds`, paced against the clock."""
    rng = random.Random(7)
    with S.lock:
        templates = [k for k in S.objects["pods"] if k not in S.churned]
    live = collections.deque()
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        ahead = t0 + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        with S.lock:
            S.rv += 1
            if len(live) >= alive:
                obj = copy.deepcopy(S.objects["pods"].pop(live.popleft()))
                obj["metadata"]["resourceVersion"] = str(S.rv)
                S.history.append((S.rv, "pods", "DELETED", obj))
            else:
                src = S.objects["pods"].get(templates[rng.randrange(len(templates))])
                obj = copy.deepcopy(src)
                md = obj["metadata"]
                md["name"] = "%s-%d" % (prefix, i)
                md["uid"] = str(uuid.uuid4())
                md["resourceVersion"] = str(S.rv)
                # a /16 per prefix: 10.250 for "churn", 10.251, 10.252 ... for others in order of first use
                if prefix not in S.churn_nets:
                    S.churn_nets[prefix] = 250 if prefix == "churn" else \
                        251 + sum(1 for p in S.churn_nets if p != "churn")
                net = S.churn_nets[prefix]
                obj.setdefault("status", {})["podIPs"] = [{"ip": "10.%d.%d.%d" % (net, i // 256 % 256, i % 256)}]
                obj["status"]["podIP"] = obj["status"]["podIPs"][0]["ip"]
                obj["status"]["phase"] = "Running"
                S.objects["pods"][key_of(obj)] = obj
                live.append(key_of(obj))
                S.churned.add(key_of(obj))
                S.history.append((S.rv, "pods", "ADDED", obj))
            S.stats["churn"]["sent"] = i + 1
            S.stats["churn"]["rv_last"] = S.rv
            S.lock.notify_all()
    with S.lock:
        S.stats["churn"]["done"] = True
        S.stats["churn"]["seconds"] = time.monotonic() - t0


def key_of(obj):
    md = obj.get("metadata", {})
    return (md.get("namespace") or "") + "/" + md["name"]


def selector_ok(obj, query):
    """labelSelector (k=v, k!=v, k) and fieldSelector (metadata.name,
    metadata.namespace, spec.nodeName =/!=) as the API applies them."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (query.get("labelSelector", [""])[0]).split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif labels.get(term) is None:
            return False
    for term in filter(None, (query.get("fieldSelector", [""])[0]).split(",")):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        k = k.rstrip("=")
        cur = obj
        for part in k.split("."):
            cur = cur.get(part, "") if isinstance(cur, dict) else ""
        if (cur == v) == neg:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---------- helpers ----------
    def send_json(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, message, headers=None, details=None, metadata=None):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {}, "status": "Failure",
              "message": message, "reason": reason}
        if details:
            st["details"] = details
        st["code"] = code
        self.send_json(code, st, headers)

    def send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---------- control ----------
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        p = self.path
        if not p.startswith("/_ctl/"):
            return self.write_event("POST", p, raw)
        body = json.loads(raw or b"{}")
        with S.lock:
            if p == "/_ctl/apply":
                obj = body["object"]
                S.rv += 1
                obj.setdefault("metadata", {})["resourceVersion"] = str(S.rv)
                res = body["resource"]
                obj["kind"], obj["apiVersion"] = KIND_OF[res]
                old = S.objects[res].get(key_of(obj))
                obj["metadata"].setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
                t = "MODIFIED" if old else "ADDED"
                S.objects[res][key_of(obj)] = obj
                S.history.append((S.rv, res, t, obj))
                trace("stored", res, t, obj)
            elif p == "/_ctl/delete" or p == "/_ctl/wipe":
                res = body["resource"]
                k = (body.get("namespace") or "") + "/" + body["name"]
                obj = S.objects[res].pop(k, None)
                if obj and p == "/_ctl/delete":
                    S.rv += 1
                    obj = json.loads(json.dumps(obj))
                    obj["metadata"]["resourceVersion"] = str(S.rv)
                    S.history.append((S.rv, res, "DELETED", obj))
                    trace("stored", res, "DELETED", obj)
            elif p == "/_ctl/load":
                # a List manifest (corral-bench --write): every item, no events
                kinds = {k: r for r, k, _ in PATHS.values()}
                for obj in json.load(open(body["path"]))["items"]:
                    res = kinds.get(obj.get("kind"))
                    if res:
                        obj["apiVersion"] = KIND_OF[res][1]
                        S.rv += 1
                        obj.setdefault("metadata", {})["resourceVersion"] = str(S.rv)
                        S.objects[res][key_of(obj)] = obj
                # a loaded cluster is kept for the run: out of the cyclic
                # collector's reach (at 150,000 pods a full collection
                # walked tens of millions of objects, 0.5 s in which no
                # request was answered and no event written)
                gc.collect()
                gc.freeze()
            elif p == "/_ctl/compact":
                S.rv += 1
                S.compacted = S.rv
                S.history = []
            elif p == "/_ctl/token":
                S.token = body["token"]
            elif p == "/_ctl/fault":
                S.faults[body["name"]] = body
            elif p == "/_ctl/closeall":
                S.generation += 1
            elif p == "/_ctl/churn":
                S.stats["churn"] = {"sent": 0, "wanted": int(body["rate"] * body["seconds"]), "done": False,
                                    "started": time.time(), "rv_first": S.rv + 1}
                threading.Thread(target=churn, args=(body["rate"], body["seconds"], body.get("alive", 500),
                                                     body.get("prefix", "churn")),
                                 daemon=True).start()
            elif p == "/_ctl/config":
                S.bookmark_interval = body.get("bookmark_interval", S.bookmark_interval)
                S.initial_events = body.get("initial_events", S.initial_events)
                S.absent = set(body.get("absent", S.absent))
            else:
                return self.send_json(404, {})
            S.lock.notify_all()
        self.send_json(200, {"resourceVersion": str(S.rv)})

    # ---------- Events (what the agent's recorder writes) ----------
    def authorized(self):
        """The token check of every API request; answers and returns False
        when it fails."""
        auth = self.headers.get("Authorization", "")
        if S.token and not auth:
            self.status(403, "Forbidden", 'User "system:anonymous" cannot do this')
            return False
        if S.token and auth != "Bearer " + S.token:
            S.stats["unauthorized"] += 1
            self.status(401, "Unauthorized", "Unauthorized")
            return False
        return True

    def do_PATCH(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.write_event("PATCH", self.path, self.rfile.read(n))

    def write_event(self, method, path, raw):
        m = re.match(r"^/api/v1/namespaces/([^/]+)/events(?:/([^/?]+))?$", urllib.parse.urlparse(path).path)
        if not m or (method == "POST") != (m.group(2) is None):
            return self.send_text(404, "404 page not found\n")
        ns, name = m.group(1), m.group(2)
        with S.lock:
            if not self.authorized():
                return
            S.stats["event_" + method.lower()] = S.stats.get("event_" + method.lower(), 0) + 1
            f = S.fault("events_status")
            if f:
                return self.status(f["code"], "Injected", "injected fault")
            try:
                body = json.loads(raw)
            except ValueError:
                return self.status(400, "BadRequest", "the body is not JSON")
            if method == "PATCH":
                ct = self.headers.get("Content-Type", "")
                if ct not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    return self.status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
                ev = S.events.get(ns + "/" + name)
                if ev is None:
                    return self.status(404, "NotFound", 'events "%s" not found' % name,
                                       details={"name": name, "kind": "events"})
                merge_patch(ev, body)
            else:
                md = body.get("metadata") or {}
                name = md.get("name")
                if not name:
                    return self.status(422, "Invalid", "metadata.name: Required value")
                if md.get("namespace", ns) != ns:
                    return self.status(400, "BadRequest", "the namespace of the provided object does not match "
                                       "the namespace sent on the request")
                if (body.get("involvedObject") or {}).get("namespace", "") != ns:
                    return self.status(422, "Invalid", "involvedObject.namespace: Invalid value: does not match "
                                       "event.namespace")
                if ns + "/" + name in S.events:
                    return self.status(409, "AlreadyExists", 'events "%s" already exists' % name)
                ev = body
                md["namespace"] = ns
                md["uid"] = str(uuid.uuid4())
                md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                ev["metadata"] = md
                ev["kind"], ev["apiVersion"] = "Event", "v1"
                S.events[ns + "/" + name] = ev
            S.rv += 1
            ev["metadata"]["resourceVersion"] = str(S.rv)
            out = json.loads(json.dumps(ev))
        self.send_json(201 if method == "POST" else 200, out)

    def get_other(self, path, q):
        """One pod, and lists of Events; False if the path is neither."""
        m = re.match(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)$", path)
        e = re.match(r"^/api/v1(?:/namespaces/([^/]+))?/events$", path)
        if not m and not e:
            return False
        with S.lock:
            if not self.authorized():
                return True
            if m:
                obj = S.objects["pods"].get(m.group(1) + "/" + m.group(2))
                if obj is None:
                    self.status(404, "NotFound", 'pods "%s" not found' % m.group(2),
                                details={"name": m.group(2), "kind": "pods"})
                else:
                    self.send_json(200, served("pods", obj))
                return True
            items = [v for k, v in sorted(S.events.items())
                     if (not e.group(1) or k.startswith(e.group(1) + "/")) and selector_ok(v, q)]
            self.send_json(200, {"kind": "EventList", "apiVersion": "v1",
                                 "metadata": {"resourceVersion": str(S.rv)}, "items": items})
        return True

    # ---------- API ----------
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/_ctl/stats":
            with S.lock:
                return self.send_json(200, S.stats)
        if self.get_other(url.path, q):
            return
        if url.path not in PATHS or PATHS[url.path][0] in S.absent:
            return self.send_text(404, "404 page not found\n")  # as a real server, for unknown paths
        res, kind, api = PATHS[url.path]
        with S.lock:
            auth = self.headers.get("Authorization", "")
            if S.token and not auth:
                # a real server authenticates "no credentials" as
                # system:anonymous, then forbids: 403, not 401
                return self.status(403, "Forbidden", 'pods is forbidden: User "system:anonymous" cannot list '
                                   'resource "%s" at the cluster scope' % res, details={"kind": res})
            if S.token and auth != "Bearer " + S.token:
                S.stats["unauthorized"] += 1
                return self.status(401, "Unauthorized", "Unauthorized")
            f = S.fault("status")
            if f:
                h = {"Retry-After": str(f["retry_after"])} if "retry_after" in f else {}
                return self.status(f["code"], "Injected", "injected fault", h)
            if S.fault("reset_before"):
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        if q.get("watch", ["0"])[0] in ("1", "true"):
            return self.watch(res, kind, api, q)
        return self.list(res, kind, api, q)

    def list(self, res, kind, api, q):
        with S.lock:
            S.stats["list"] += 1
            S.stats["by_resource"][res] = S.stats["by_resource"].get(res, 0) + 1
            limit = int(q.get("limit", ["0"])[0] or 0)
            cont = q.get("continue", [""])[0]
            if cont:
                tok = json.loads(base64.b64decode(cont))
                if S.fault("expire_continue") or tok["rv"] <= S.compacted:
                    return self.status(410, "Expired", "The provided continue parameter is too old to display a "
                                       "consistent list result.", metadata={"continue": cont})
                rv, offset = tok["rv"], tok["offset"]
                items = S.snapshots.get(tok["id"], [])
            else:
                rv, offset = S.rv, 0
                store = S.objects[res]
                node = re.fullmatch(r"spec\.nodeName=([^,!]*)", q.get("fieldSelector", [""])[0])
                cands = ((k, store[k]) for k in store.by_node.get(node.group(1), ())) if node and res == "pods" \
                    else store.items()
                items = sorted(k for k, o in cands if selector_ok(o, q))
            page = items[offset:offset + limit] if limit else items[offset:]
            objs = [list_item(res, S.objects[res][k]) for k in page if k in S.objects[res]]
            md = {"resourceVersion": str(rv)}
            if res in CRDS:
                md["continue"] = ""  # CRD lists say it even when empty; typed lists leave it out
            if limit and offset + limit < len(items):
                # the list's snapshot stays here; the token only points at it
                sid = cont and tok["id"] or len(S.snapshots) + 1
                S.snapshots[sid] = items
                md["continue"] = base64.b64encode(json.dumps(
                    {"id": sid, "rv": rv, "offset": offset + limit}).encode()).decode()
                md["remainingItemCount"] = len(items) - offset - limit
            body = {"kind": kind + "List", "apiVersion": api, "metadata": md, "items": objs}
        self.send_json(200, body)

    def watch(self, res, kind, api, q):
        rv = q.get("resourceVersion", [""])[0]
        timeout = float(q.get("timeoutSeconds", ["30"])[0])
        bookmarks = q.get("allowWatchBookmarks", ["false"])[0] in ("1", "true")
        initial = q.get("sendInitialEvents", ["false"])[0] == "true"
        with S.lock:
            S.stats["watch"] += 1
            if initial and not S.initial_events:
                return self.status(422, "Invalid", "sendInitialEvents is not supported", details={
                    "group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
                        "reason": "FieldValueForbidden", "message": "Forbidden: sendInitialEvents is not supported",
                        "field": "sendInitialEvents"}]})
            start = int(rv) if rv else S.rv
            gone = rv and not initial and start < S.compacted
            # a v1.37 server answers an expired watch with 200 and one ERROR
            # event (real-shapes/410-watch-cached.json); HTTP 410 on a watch is
            # what older servers sent: a fault kept for the client's sake
            if gone and S.fault("gone_as_status"):
                return self.status(410, "Expired", "too old resource version")
            gen = S.generation
            empty = S.fault("empty_watch")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if empty:
            return self.end_chunks()
        ev_err = None
        with S.lock:
            ev_err = S.fault("error_event")
        if ev_err:
            # what a real server answers a watch from just before the
            # compaction revision with the watch cache off
            # (real-shapes/watch-etcd-at-compact-rev.json): a 500 event
            self.chunk(json.dumps({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Internal error occurred: etcd event received with PrevKv=nil", "reason": "InternalError",
                "code": ev_err.get("code", 500)}}).encode() + b"\n")
            return self.end_chunks()
        if gone:
            self.chunk(json.dumps({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version: %s (%d)" % (rv, S.compacted), "reason": "Expired",
                "code": 410}}).encode() + b"\n")
            return self.end_chunks()
        pending = []
        if initial:
            with S.lock:
                for k in sorted(S.objects[res]):
                    pending.append({"type": "ADDED", "object": served(res, S.objects[res][k])})
                pending.append({"type": "BOOKMARK", "object": bookmark_object(
                    res, S.rv, {"k8s.io/initial-events-end": "true"})})
                start = S.rv
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        sent = start
        try:
            while True:
                with S.lock:
                    idle = S.fault("idle")
                    if idle:
                        # hold the connection open and say nothing
                        S.lock.wait(idle.get("seconds", 3600))
                        return
                    # the history is in rv order: start past what was sent
                    for (erv, eres, etype, eobj) in S.history[bisect.bisect_right(S.history, sent,
                                                                                  key=lambda h: h[0]):]:
                        if eres == res:
                            if selector_ok(eobj, q):
                                pending.append({"type": etype, "object": served(res, eobj)})
                            sent = erv
                    if not pending:
                        now = time.monotonic()
                        if now >= deadline or S.generation != gen:
                            break
                        if bookmarks and now - last_bookmark >= S.bookmark_interval:
                            last_bookmark = now
                            pending.append({"type": "BOOKMARK", "object": bookmark_object(res, max(sent, start))})
                        else:
                            S.lock.wait(min(0.2, deadline - now))
                            continue
                    faults = {n: S.fault(n) for n in ("split", "batch", "truncate", "malformed", "unknown_type",
                                                       "reset_mid")}
                events, pending = pending, []
                self.send_events(events, faults)
                if faults["truncate"] or faults["reset_mid"]:
                    return
                if faults["malformed"] or faults["unknown_type"]:
                    return self.end_chunks()
            self.end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_events(self, events, faults):
        lines = [json.dumps(e).encode() + b"\n" for e in events]
        if faults["malformed"]:
            lines.insert(0, b'{"type": "ADDED", "object": {"metadata": {"name": "x", \n')
        if faults["unknown_type"]:
            lines.insert(0, json.dumps({"type": "SURPRISE", "object": {}}).encode() + b"\n")
        if faults["batch"]:
            self.chunk(b"".join(lines))  # several events in one chunk
        elif faults["split"]:
            for line in lines:  # every event in three pieces
                third = max(1, len(line) // 3)
                for part in (line[:third], line[third:2 * third], line[2 * third:]):
                    self.chunk(part)
                    time.sleep(0.01)
        elif faults["truncate"]:
            data = b"".join(lines)
            self.chunk(data[:len(data) - 5])  # the last event cut short, then EOF
            self.end_chunks()
        elif faults["reset_mid"]:
            data = b"".join(lines)
            self.chunk(data[:len(data) // 2])
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            for e, line in zip(events, lines):
                self.chunk(line)
                if e["type"] != "BOOKMARK":
                    trace("written", e["object"].get("kind", ""), e["type"], e["object"])


def main():
    global S
    args = sys.argv[1:]
    cert = key = None
    token = ""
    port = 0
    while args:
        a = args.pop(0)
        if a == "--tls":
            cert, key = args.pop(0), args.pop(0)
        elif a == "--token":
            token = args.pop(0)
        elif a == "--port":
            port = int(args.pop(0))
    S = State(token)
    global TRACE
    if os.environ.get("CORRAL_FAKE_TRACE"):
        TRACE = open(os.environ["CORRAL_FAKE_TRACE"], "a")
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
