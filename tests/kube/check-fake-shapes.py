#!/usr/bin/env python3
"""The fake API server answers in the shapes a real kube-apiserver does.

    check-fake-shapes.py FAKE-APISERVER.py REAL-SHAPES-DIR

For each situation recorded from a real server (tests/kube/real-shapes/,
made by tests/controlplane/record-shapes.sh) the same situation is made
on the fake and what does not vary between runs is compared: the status
code, the content type, the keys of lists, their metadata and items
(kind/apiVersion on items or not), the event types and the key structure
of watch objects, bookmark objects and Status objects. Values that are
data (names, versions, messages, timestamps) are not compared. Prints one
line per situation and a total; exits 1 on any difference."""
import http.client
import json
import subprocess
import sys
import time

fake, shapes = sys.argv[1], sys.argv[2]
TOKEN = "t0k"
srv = subprocess.Popen([sys.executable, fake, "--token", TOKEN], stdout=subprocess.PIPE, text=True)
port = int(srv.stdout.readline().split()[1])
failures = []
checked = 0


def real(name):
    with open("%s/%s.json" % (shapes, name)) as f:
        return json.load(f)


def req(method, path, body=None, token=TOKEN):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read().decode()
    ct = r.getheader("Content-Type", "")
    c.close()
    return r.status, ct, data


def ctl(path, body):
    st, _, _ = req("POST", "/_ctl/" + path, body)
    assert st == 200, path


def skeleton(v, depth=0):
    """Keys and types, not values: what a decoder relies on."""
    if isinstance(v, dict):
        if depth > 3:
            return "{...}"
        return {k: skeleton(x, depth + 1) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [skeleton(v[0], depth + 1)] if v else []
    return type(v).__name__


def status_code(d):
    return int(d["status_line"].split()[1])


def content_type(d):
    for k, v in d["headers"]:
        if k.lower() == "content-type":
            return v.split(";")[0]
    return ""


def compare(name, what, want, got):
    global checked
    checked += 1
    if want != got:
        failures.append("%s: %s differs\n    real: %s\n    fake: %s" % (name, what, want, got))


def status_keys(o):
    return sorted(k for k in o if k != "details")


def list_shape(o):
    items = o.get("items") or []
    return {"top": sorted(o), "kind": o.get("kind"), "apiVersion": o.get("apiVersion"),
            "metadata": sorted(k for k in o["metadata"] if k != "remainingItemCount" or True),
            "items_have_kind": sorted({("kind" in i, "apiVersion" in i) for i in items})}


RES = {"pods": "/api/v1/pods", "namespaces": "/api/v1/namespaces",
       "networkpolicies": "/apis/networking.k8s.io/v1/networkpolicies",
       "accesspolicies": "/apis/corral.dev/v1/accesspolicies",
       "endpointslices": "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"}
OBJ = {
    "endpointslices": {"metadata": {"name": "kubernetes", "namespace": "default",
                                    "labels": {"kubernetes.io/service-name": "kubernetes"}},
                       "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
                       "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
    "namespaces": {"metadata": {"name": "shop", "labels": {"t": "1"}}},
    "pods": {"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
             "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
             "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}},
    "networkpolicies": {"metadata": {"name": "np", "namespace": "shop"}, "spec": {"podSelector": {}}},
    "accesspolicies": {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"application": "web"}},
}

try:
    for res, obj in OBJ.items():
        ctl("apply", {"resource": res, "object": json.loads(json.dumps(obj))})
    ctl("apply", {"resource": "pods", "object": dict(OBJ["pods"], metadata={"name": "db", "namespace": "shop"})})
    ctl("apply", {"resource": "pods", "object": dict(OBJ["pods"], metadata={"name": "api", "namespace": "shop"})})

    # lists: typed lists without kind/apiVersion on items, CRD lists with
    for res in RES:
        name = "list-" + res
        r = real(name)
        st, ct, body = req("GET", RES[res])
        compare(name, "status", status_code(r), st)
        compare(name, "content type", content_type(r), ct.split(";")[0])
        want, got = list_shape(r["json"]), list_shape(json.loads(body))
        compare(name, "list shape", want, got)
        print("list %-16s items carry kind/apiVersion: %s" % (res, got["items_have_kind"]))
    # one node's pods (the provisional read: fieldSelector spec.nodeName)
    r = real("list-pods-field-selector")
    st, ct, body = req("GET", RES["pods"] + "?fieldSelector=spec.nodeName%3Dn1")
    compare("list-pods-field-selector", "status", status_code(r), st)
    compare("list-pods-field-selector", "list shape", list_shape(r["json"]), list_shape(json.loads(body)))
    compare("list-pods-field-selector", "only the node's pods", True,
            all(i["spec"]["nodeName"] == "n1" for i in json.loads(body)["items"]) and len(json.loads(body)["items"]) > 0)
    r = real("list-pods-page1")
    st, ct, body = req("GET", RES["pods"] + "?limit=2")
    compare("list-pods-page1", "paginated list metadata", sorted(r["json"]["metadata"]), sorted(json.loads(body)["metadata"]))

    # an expired continue token
    ctl("fault", {"name": "expire_continue", "count": 1})
    cont = json.loads(body)["metadata"]["continue"]
    st, ct, body = req("GET", RES["pods"] + "?limit=2&continue=" + cont)
    r = real("410-list-continue")
    compare("410-list-continue", "status", status_code(r), st)
    compare("410-list-continue", "Status keys", status_keys(r["json"]), status_keys(json.loads(body)))
    compare("410-list-continue", "reason", r["json"]["reason"], json.loads(body)["reason"])
    compare("410-list-continue", "metadata keys", sorted(r["json"]["metadata"]), sorted(json.loads(body)["metadata"]))

    # 401 with a wrong token, 403 without any
    for name, tok in (("401-bad-token", "wrong"), ("401-anonymous-list", None)):
        r = real(name)
        st, ct, body = req("GET", RES["pods"], token=tok)
        compare(name, "status", status_code(r), st)
        compare(name, "content type", content_type(r), ct.split(";")[0])
        compare(name, "Status keys", status_keys(r["json"]), status_keys(json.loads(body)))
        compare(name, "reason", r["json"]["reason"], json.loads(body)["reason"])
    r = real("404-path")
    st, ct, body = req("GET", "/apis/corral.dev/v1/nothings")
    compare("404-path", "status and type", (status_code(r), content_type(r), r["body"].strip()),
            (st, ct.split(";")[0], body.strip()))

    # a CRD not installed: its path is unknown (text 404); one object that
    # does not exist: a NotFound Status
    ctl("config", {"absent": ["accesspolicies"]})
    r = real("404-crd-not-installed")
    st, ct, body = req("GET", RES["accesspolicies"])
    compare("404-crd-not-installed", "status and type", (status_code(r), content_type(r), r["body"].strip()),
            (st, ct.split(";")[0], body.strip()))
    ctl("config", {"absent": []})
    r = real("404-object")
    st, ct, body = req("GET", "/api/v1/namespaces/shop/pods/nothing")
    compare("404-object", "status, type, Status keys and reason",
            (status_code(r), content_type(r), status_keys(r["json"]), r["json"]["reason"]),
            (st, ct.split(";")[0], status_keys(json.loads(body)), json.loads(body)["reason"]))

    # watches: events carry kind/apiVersion; bookmarks are skeletons
    ctl("config", {"bookmark_interval": 0.3})
    for res in RES:
        name = "watch-" + res
        r = real(name)
        _, _, lst = req("GET", RES[res])
        rv = json.loads(lst)["metadata"]["resourceVersion"]
        o = json.loads(json.dumps(OBJ[res]))
        o["metadata"]["labels"] = {"changed": "yes"}
        ctl("apply", {"resource": res, "object": o})
        ctl("delete", {"resource": res, "namespace": o["metadata"].get("namespace"), "name": o["metadata"]["name"]})
        st, ct, body = req("GET", "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=%s" % (RES[res], rv))
        events = [json.loads(x) for x in body.splitlines() if x.strip()]
        compare(name, "status", status_code(r), st)
        compare(name, "content type", content_type(r), ct.split(";")[0])
        want = sorted({(e["type"], "kind" in e["object"], "apiVersion" in e["object"]) for e in r["events"]
                       if e["type"] in ("MODIFIED", "DELETED")})
        got = sorted({(e["type"], "kind" in e["object"], "apiVersion" in e["object"]) for e in events
                      if e["type"] in ("MODIFIED", "DELETED")})
        compare(name, "event types with kind/apiVersion", want, got)
        ctl("apply", {"resource": res, "object": json.loads(json.dumps(OBJ[res]))})
        bname = "watch-bookmark-" + res
        try:
            rb = real(bname)
        except FileNotFoundError:
            continue
        wantb = [skeleton(e["object"]) for e in rb["events"] if e["type"] == "BOOKMARK"][:1]
        gotb = [skeleton(e["object"]) for e in events if e["type"] == "BOOKMARK"][:1]
        compare(bname, "bookmark object", wantb, gotb)
        print("bookmark %-12s %s" % (res, json.dumps(gotb)))

    # the initial-events stream and its end bookmark
    ctl("config", {"initial_events": True})
    r = real("watch-sendinitialevents")
    st, ct, body = req("GET", RES["pods"] + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                       "&allowWatchBookmarks=true&timeoutSeconds=1")
    events = [json.loads(x) for x in body.splitlines() if x.strip()]
    compare("watch-sendinitialevents", "event types",
            sorted({e["type"] for e in r["events"]}), sorted({e["type"] for e in events}))
    endb = lambda evs: [skeleton(e["object"]) for e in evs if e["type"] == "BOOKMARK"
                        and e["object"]["metadata"].get("annotations")][:1]
    compare("watch-sendinitialevents", "end bookmark", endb(r["events"]), endb(events))
    ctl("config", {"initial_events": False})
    r = real("sendinitialevents-no-rvmatch")
    st, ct, body = req("GET", RES["pods"] + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                       "&allowWatchBookmarks=true&timeoutSeconds=1")
    compare("422 (sendInitialEvents refused)", "status and Status keys", (status_code(r), sorted(r["json"])),
            (st, sorted(json.loads(body))))

    # an expired watch: 200 and one ERROR event with a 410 Status
    r = real("410-watch-cached")
    _, _, lst = req("GET", RES["pods"])
    old = int(json.loads(lst)["metadata"]["resourceVersion"]) - 1
    ctl("compact", {})
    st, ct, body = req("GET", "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=%d" % (RES["pods"], old))
    events = [json.loads(x) for x in body.splitlines() if x.strip()]
    compare("410-watch-cached", "status", status_code(r), st)
    compare("410-watch-cached", "ERROR event", [(e["type"], skeleton(e["object"])) for e in r["events"]],
            [(e["type"], skeleton(e["object"])) for e in events])
finally:
    srv.kill()

for f in failures:
    print("DIFFERS " + f)
print("fake API server vs real shapes: %d checks, %d differ" % (checked, len(failures)))
sys.exit(1 if failures else 0)
