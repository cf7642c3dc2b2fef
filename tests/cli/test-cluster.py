#!/usr/bin/env python3
"""agentctl with the live cluster as its source, against the fake API
server (tests/kube/fake-apiserver.py) loaded with the shop example:

  - matrix, explain, dump and diff read from the cluster give what they
    give from --from on the same objects;
  - --from DIR with the cluster: DIR's objects replace the cluster's of the
    same kind, namespace and name, the rest stays;
  - the same binary as kubectl-corral (kubectl's flags, the context's
    namespace) and kubectl_complete-corral;
  - credentials, certificates, RBAC and an unreachable server are named;
  - a cluster without the AccessPolicy CRD is read, with a warning;
  - objects the decoder refuses are enforced fail-closed and named by check.

usage: test-cluster.py FAKE-APISERVER.py AGENTCTL REPO"""
import json
import os
import shutil
import subprocess
import sys
import ssl
import tempfile
import urllib.request

import yaml

FAKE, CTL, REPO = sys.argv[1:4]
SHOP = os.path.join(REPO, "deploy/examples/shop")
RES = {"Namespace": "namespaces", "Pod": "pods", "NetworkPolicy": "networkpolicies", "AccessPolicy": "accesspolicies"}
failures = []
tmp = tempfile.mkdtemp(prefix="corral-cluster-test-")


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def serve(*args):
    p = subprocess.Popen([sys.executable, FAKE, *args], stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline().split()[1])


SCHEME = "http"


def ctl(port, path, body):
    r = urllib.request.Request("%s://127.0.0.1:%d/_ctl/%s" % (SCHEME, port, path), json.dumps(body).encode())
    urllib.request.urlopen(r, context=ssl._create_unverified_context() if SCHEME == "https" else None).read()


def load(port, folder):
    for f in sorted(os.listdir(folder)):
        for doc in yaml.safe_load_all(open(os.path.join(folder, f))):
            if doc and doc.get("kind") in RES:
                ctl(port, "apply", {"resource": RES[doc["kind"]], "object": doc})


def ordered(folder, out):
    """The folder's objects, one file per resource, in the order the API
    server lists them (resource by resource, by namespace and name): the
    ruleset's chain and set numbers follow the order objects are read in."""
    os.mkdir(out)
    docs = [d for f in sorted(os.listdir(folder)) for d in yaml.safe_load_all(open(os.path.join(folder, f)))
            if d and d.get("kind") in RES]
    for i, kind in enumerate(RES):
        objs = sorted((d for d in docs if d["kind"] == kind),
                      key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"]["name"]))
        with open(os.path.join(out, "%d-%s.yaml" % (i, RES[kind])), "w") as f:
            yaml.safe_dump_all(objs, f)
    return out


def kubeconfig(name, server, token="t0k", namespace=None, extra_cluster=""):
    p = os.path.join(tmp, name)
    ns = ", namespace: %s" % namespace if namespace else ""
    with open(p, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "clusters: [{name: k, cluster: {server: '%s'%s}}]\n"
                "users: [{name: u, user: {token: %s}}]\n"
                "contexts: [{name: c, context: {cluster: k, user: u%s}}, {name: other, context: {cluster: k, user: u}}]\n"
                % (server, extra_cluster, token, ns))
    return p


def run(*args, prog=CTL, env=None, stdin=None):
    e = dict(os.environ)
    e.pop("KUBECONFIG", None)
    e.update(env or {})
    r = subprocess.run([prog, *args], capture_output=True, text=True, env=e, input=stdin)
    return r.returncode, r.stdout, r.stderr


srv, port = serve("--token", "t0k")
try:
    load(port, SHOP)
    K = kubeconfig("k", "http://127.0.0.1:%d" % port)

    # ---- the same answers as from the folder
    for p in ("8080", "5432", "80"):
        a, b = run("matrix", "--kubeconfig", K, "--port", p, "-o", "json"), run("matrix", "--from", SHOP, "--port", p, "-o", "json")
        check(a[0] == 0 and a[1] == b[1], "matrix --port %s from the cluster equals --from: %s" % (p, a[2] or ""))
    a, b = run("matrix", "--kubeconfig", K), run("matrix", "--from", SHOP)
    check(a[1] == b[1], "matrix text from the cluster equals --from")
    for src, dst, port_ in (("team-shop/checkout", "team-pay/payments", "8080"), ("team-pay/payments", "team-ledger/ledger", "5432"),
                            ("team-shop/frontend", "team-shop/checkout", "8080")):
        a = run("explain", "--kubeconfig", K, src, dst, "--port", port_)
        b = run("explain", "--from", SHOP, src, dst, "--port", port_)
        check(a[:2] == b[:2], "explain %s -> %s from the cluster equals --from (exit %d)" % (src, dst, a[0]))
    same = ordered(SHOP, os.path.join(tmp, "ordered"))
    for node in ("node-1", "node-2"):
        a, b = run("dump", "--kubeconfig", K, "--node", node), run("dump", "--from", same, "--node", node)
        check(a[0] == 0 and a[1] == b[1], "dump --node %s from the cluster equals --from (objects in the same order)" % node)
    rc, out, err = run("dump", "--kubeconfig", K, "--node", "nosuchnode")
    check(rc == 2 and "no pod is on node \"nosuchnode\"" in err, "dump --node nosuchnode from the cluster: %s" % err.strip())
    rc, out, err = run("check", "--kubeconfig", K)
    check(rc == 0 and "11 objects in 0 files and the cluster: 0 errors" in out, "check of the cluster: %s" % out.strip())

    # ---- overlay: a folder on top of the cluster
    fix = os.path.join(tmp, "fix")
    os.mkdir(fix)
    with open(os.path.join(fix, "checkout.yaml"), "w") as f:
        f.write("apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: checkout, namespace: team-shop}\n"
                "spec:\n  application: checkout\n  inbound: {rules: [{application: frontend, ports: [{port: 8080}]}]}\n"
                "  outbound: {rules: [{application: payments, namespace: team-pay, ports: [{port: 8080}]}]}\n")
    full = os.path.join(tmp, "full")
    shutil.copytree(SHOP, full)
    shutil.copy(os.path.join(fix, "checkout.yaml"), os.path.join(full, "checkout.yaml"))
    rc, out, _ = run("explain", "--kubeconfig", K, "--from", fix, "team-shop/checkout", "team-pay/payments", "--port", "8080")
    check(rc == 0 and out.startswith("ALLOWED"), "overlay: the folder's AccessPolicy replaces the cluster's (ALLOWED, exit 0)")
    rc, out, _ = run("explain", "--kubeconfig", K, "team-shop/checkout", "team-pay/payments", "--port", "8080")
    check(rc == 1 and out.startswith("DENIED"), "the cluster alone: DENIED, exit 1")
    a = run("matrix", "--kubeconfig", K, "--from", fix, "--port", "8080", "-o", "json")
    b = run("matrix", "--from", full, "--port", "8080", "-o", "json")
    check(a[1] == b[1], "overlay matrix equals the folder with the change applied")
    a = run("diff", "--kubeconfig", K, "--to", fix, "-o", "json")
    b = run("diff", "--from", SHOP, "--to", full, "-o", "json")
    ca, cb = json.loads(a[1])["changes"], json.loads(b[1])["changes"]
    check(ca == cb and len(ca) == 1 and ca[0]["after"] == "allowed", "diff against the cluster equals diff of folders: %s" % ca)
    rc, _, _ = run("diff", "--kubeconfig", K, "--to", fix, "--fail-on", "added")
    check(rc == 1, "diff --fail-on added against the cluster exits 1")
    # a new pod in the folder: added, the others kept
    with open(os.path.join(fix, "new.yaml"), "w") as f:
        f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: team-shop, labels: {app: frontend}}\n"
                "status: {podIPs: [{ip: 10.200.1.99}]}\n")
    rc, out, _ = run("matrix", "--kubeconfig", K, "--from", fix, "-o", "json")
    check(json.loads(out)["pods"] == ["team-ledger/ledger-0", "team-pay/payments-0", "team-shop/checkout-0",
                                      "team-shop/extra", "team-shop/frontend-0"], "overlay adds the folder's new pod")

    # ---- the kubectl plugin
    bindir = os.path.join(tmp, "bin")
    os.mkdir(bindir)
    plugin = os.path.join(bindir, "kubectl-corral")
    os.symlink(os.path.abspath(CTL), plugin)
    os.symlink(os.path.abspath(CTL), os.path.join(bindir, "kubectl_complete-corral"))
    env = {"KUBECONFIG": K}
    rc, out, err = run("explain", "-n", "team-shop", "checkout", "team-pay/payments", "--port", "8080", prog=plugin, env=env)
    check(rc == 1 and out.startswith("DENIED\nteam-shop/checkout-0"), "kubectl corral explain -n team-shop checkout ...: %s" % (err or out[:60]))
    rc, out, _ = run("-n", "team-shop", "explain", "frontend", "checkout", "--port", "8080", "-o", "json", prog=plugin, env=env)
    check(rc == 0 and json.loads(out)["allowed"] is True, "flags before the command, -o json")
    rc, out, _ = run("explain", "frontend", "checkout", "--port", "8080", "-o", "yaml", prog=plugin,
                     env={"KUBECONFIG": kubeconfig("kns", "http://127.0.0.1:%d" % port, namespace="team-shop")})
    check(rc == 0 and yaml.safe_load(out)["allowed"] is True, "the context's namespace is the default, -o yaml")
    rc, out, _ = run("matrix", "--context", "other", "--port", "8080", prog=plugin, env=env)
    check(rc == 0 and "team-shop/frontend-0" in out, "--context picks a context")
    rc, out, _ = run("--kubeconfig", K, "matrix", "-o", "csv", "--port", "5432", prog=plugin)
    check(rc == 0 and "team-pay/payments-0,team-ledger/ledger-0,TCP,5432,allowed" in out, "--kubeconfig before the command, -o csv")
    rc, out, _ = run("--version", prog=plugin)
    check(rc == 0 and out.startswith("kubectl-corral "), "kubectl corral --version: %s" % out.strip())
    rc, out, _ = run("explain", "--help", prog=plugin)
    check(rc == 0 and out.startswith("usage: kubectl corral explain SRC DST"), "kubectl corral explain --help")
    rc, out, _ = run("matrix", "-o", "", prog=os.path.join(bindir, "kubectl_complete-corral"), env=env)
    check(out.split() == ["txt", "json", "yaml", "md", "csv", "dot", "svg", ":4"], "kubectl_complete-corral completes -o: %s" % out.split())
    rc, out, _ = run("--context", "", prog=os.path.join(bindir, "kubectl_complete-corral"), env=env)
    check(out.split() == ["c", "other", ":4"], "kubectl_complete-corral completes --context from the kubeconfig: %s" % out.split())

    # ---- the AccessPolicy CRD not installed: read without, and said
    ctl(port, "config", {"absent": ["accesspolicies"]})
    rc, out, err = run("explain", "--kubeconfig", K, "team-shop/checkout", "team-pay/payments", "--port", "8080")
    check(rc == 0 and "CRD (accesspolicies.corral.dev) is not installed" in err, "no CRD: a warning, no AccessPolicy: %s" % err.strip())
    ctl(port, "config", {"absent": []})

    # ---- an object the decoder refuses: fail-closed, named
    ctl(port, "fault", {"name": "poison", "resource": "networkpolicies", "key": "team-shop/frontend-ingress",
                        "path": "spec.podSelector", "value": "not a selector", "count": 1000})
    rc, out, err = run("check", "--kubeconfig", K)
    check(rc == 1 and "NetworkPolicy team-shop/" in out, "check names an unreadable cluster object: %s" % out.strip()[:200])
    ctl(port, "fault", {"name": "poison", "count": 0})

    # ---- errors named
    rc, _, err = run("matrix", "--kubeconfig", kubeconfig("bad", "http://127.0.0.1:%d" % port, token="wrong"))
    check(rc == 2 and "refused our credentials (401 Unauthorized)" in err and "context \"c\"" in err, "a wrong token: %s" % err.strip())
    with open(os.path.join(tmp, "anon"), "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
                "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" % port)
    rc, _, err = run("matrix", "--kubeconfig", os.path.join(tmp, "anon"))
    check(rc == 2 and "list namespaces: forbidden (403)" in err, "no credentials: 403 named: %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", kubeconfig("down", "http://127.0.0.1:1"))
    check(rc == 2 and "cannot reach the API server at http://127.0.0.1:1" in err, "an unreachable server: %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", K, "--context", "nope")
    check(rc == 2 and "context \"nope\" does not exist" in err, "an unknown context: %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", os.path.join(tmp, "none"))
    check(rc == 2 and "kubeconfig" in err, "a missing kubeconfig: %s" % err.strip())

    # ---- exec credential plugins (what managed clusters' kubeconfigs use)
    with open(os.path.join(tmp, "cred.sh"), "w") as f:
        f.write('#!/bin/sh\n[ "$EXTRA" = yes ] || exit 4\n'
                'echo "$KUBERNETES_EXEC_INFO" | grep -q \'"kind":"ExecCredential"\' || exit 5\n'
                '[ "$1" = fail ] && exit 3\n'
                'printf \'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", '
                '"status": {"token": "%s"}}\' "$1"\n')
    os.chmod(os.path.join(tmp, "cred.sh"), 0o755)

    def exec_kubeconfig(name, command, arg):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
                    "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: %s, "
                    "args: [%s], env: [{name: EXTRA, value: 'yes'}], installHint: 'install it from example.com'}}}]\n"
                    "contexts: [{name: c, context: {cluster: k, user: u}}]\n" % (port, command, arg))
        return p
    rc, out, err = run("matrix", "--kubeconfig", exec_kubeconfig("exec-ok", "./cred.sh", "t0k"), "--port", "8080", "-o", "json")
    check(rc == 0 and json.loads(out)["pods"], "an exec plugin's token (command relative to the kubeconfig, env, "
          "KUBERNETES_EXEC_INFO): %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", exec_kubeconfig("exec-wrong", "./cred.sh", "wrong"))
    check(rc == 2 and "401" in err, "an exec plugin's token refused: 401 named: %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", exec_kubeconfig("exec-fail", "./cred.sh", "fail"))
    check(rc == 2 and "exec plugin ./cred.sh failed (exit status 3)" in err, "an exec plugin that fails: %s" % err.strip())
    rc, _, err = run("matrix", "--kubeconfig", exec_kubeconfig("exec-none", "no-such-plugin-au", "x"))
    check(rc == 2 and "exec plugin no-such-plugin-au: not found: install it from example.com" in err,
          "an exec plugin that is not installed: its installHint: %s" % err.strip())
finally:
    srv.kill()

# ---- TLS: a server whose certificate the kubeconfig's CA did not sign
fx = os.path.join(tmp, "tls")
os.mkdir(fx)
subprocess.run(["sh", os.path.join(os.path.dirname(os.path.abspath(FAKE)), "tls-fixtures.sh"), fx], check=True)
SCHEME = "https"
srv, port = serve("--token", "t0k", "--tls", os.path.join(fx, "server.crt"), os.path.join(fx, "server.key"))
try:
    load(port, SHOP)
    good = kubeconfig("tls-good", "https://127.0.0.1:%d" % port, extra_cluster=", certificate-authority: %s" % os.path.join(fx, "ca.crt"))
    rc, out, err = run("matrix", "--kubeconfig", good, "--port", "8080", "-o", "json")
    check(rc == 0 and json.loads(out)["pods"], "HTTPS with the right CA: %s" % err.strip())
    bad = kubeconfig("tls-bad", "https://127.0.0.1:%d" % port, extra_cluster=", certificate-authority: %s" % os.path.join(fx, "other-ca.crt"))
    rc, _, err = run("matrix", "--kubeconfig", bad)
    check(rc == 2 and "cannot verify the API server" in err and "certificate-authority" in err, "a CA that did not sign it: %s" % err.strip())
finally:
    srv.kill()
    shutil.rmtree(tmp, ignore_errors=True)

print("agentctl and the live cluster: %d failed" % len(failures))
sys.exit(1 if failures else 0)
