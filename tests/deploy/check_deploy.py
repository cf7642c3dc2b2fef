#!/usr/bin/env python3
"""Checks deploy/: every manifest parses; the DaemonSet's security context
and the RBAC verbs are what least privilege asks (so they cannot regress
silently); the Dockerfile follows the image rules; the AccessPolicy CRD
has its group, version, printer columns and descriptions. (That the CRD
schema and the agent's validation agree is tested against a real API
server: tests/controlplane/test-crd.py.)

usage: check_deploy.py REPO AGENTCTL
"""
import glob
import os
import re
import subprocess
import sys

import yaml

REPO, AGENTCTL = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------- every manifest parses ----------
docs = {}
for path in sorted(glob.glob(os.path.join(REPO, "deploy", "**", "*.yaml"), recursive=True)):
    if os.path.relpath(path, os.path.join(REPO, "deploy")).startswith("helm" + os.sep):
        continue  # the chart's templates (tests/deploy/test-helm.py renders them)
    try:
        docs[path] = load_all(path)
    except yaml.YAMLError as e:
        check(False, f"{path}: does not parse: {e}")
    for d in docs.get(path, []):
        check(isinstance(d, dict) and "apiVersion" in d and "kind" in d, f"{path}: a document without apiVersion/kind")


def find(kind, name=None):
    out = []
    for path, ds in docs.items():
        for d in ds:
            if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name):
                out.append(d)
    return out


# ---------- DaemonSet ----------
ds = find("DaemonSet", "corral-agent")
if check(len(ds) == 1, "exactly one DaemonSet corral-agent"):
    spec = ds[0]["spec"]["template"]["spec"]
    check(spec.get("hostNetwork") is True, "DaemonSet: hostNetwork")
    check(spec.get("priorityClassName") == "system-node-critical", "DaemonSet: priorityClassName system-node-critical")
    check({"operator": "Exists"} in spec.get("tolerations", []), "DaemonSet: tolerates every taint")
    check(spec.get("serviceAccountName") == "corral-agent", "DaemonSet: its own service account")
    upd = ds[0]["spec"].get("updateStrategy", {})
    mu = upd.get("rollingUpdate", {}).get("maxUnavailable")
    # a percentage (rounded up: one node at a time on small clusters) so
    # that large clusters roll in reasonable time, but never many at once
    check(upd.get("type") == "RollingUpdate" and (mu == 1 or (isinstance(mu, str) and re.fullmatch(r"\d+%", mu)
                                                               and 0 < int(mu[:-1]) <= 25)),
          f"DaemonSet: rolling update, maxUnavailable 1 or a percentage up to 25%, not {mu}")
    cs = spec["containers"]
    check(len(cs) == 1 and not spec.get("initContainers"), "DaemonSet: one container, no init containers")
    c = cs[0]
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is False, "container: privileged false")
    check(sc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation false")
    check(sc.get("readOnlyRootFilesystem") is True, "container: readOnlyRootFilesystem")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container: drops ALL capabilities")
    check(sc.get("capabilities", {}).get("add") == ["NET_ADMIN"], "container: adds NET_ADMIN and nothing else")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "container: seccomp RuntimeDefault")
    check(not spec.get("hostPID") and not spec.get("hostIPC"), "DaemonSet: no hostPID/hostIPC")
    res = c.get("resources", {})
    check(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"), "container: memory request and limit")

    def mib(q):
        m = re.fullmatch(r"(\d+)(Mi|Gi)", str(q))
        return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1) if m else 0
    # README "Sizing": the largest measured cluster (150,000 pods) needs
    # 178 MB resident; the limit leaves room for the initial lists' peak
    check(mib(res.get("limits", {}).get("memory")) >= 384, f"container: memory limit >= 384Mi (README Sizing), not "
          f"{res.get('limits', {}).get('memory')}")
    check(res.get("requests", {}).get("cpu") and res.get("limits", {}).get("cpu"), "container: cpu request and limit")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check(c.get(probe, {}).get("httpGet", {}).get("path") == path, f"container: {probe} on {path}")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "container: NODE_NAME from the downward API")
    check(any(p.get("name") == "metrics" for p in c.get("ports", [])), "container: metrics port")
    # metrics on the node's address (Prometheus can reach it), not 0.0.0.0
    # and not loopback (the declared port would be a lie)
    check(env.get("HOST_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP",
          "container: HOST_IP from the downward API (status.hostIP)")
    cms = find("ConfigMap", "corral-agent")
    cfg = yaml.safe_load(cms[0]["data"]["config.yaml"]) if cms else {}
    port = next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == "metrics"), None)
    check(cfg.get("metricsAddress") == f"$(HOST_IP):{port}",
          f"ConfigMap: metricsAddress is $(HOST_IP):{port}, not {cfg.get('metricsAddress')}")
    for probe in ("livenessProbe", "readinessProbe"):
        hg = c.get(probe, {}).get("httpGet", {})
        check("host" not in hg and hg.get("port") in ("metrics", port), f"container: {probe} on the pod's address, "
              f"metrics port: {hg}")
    svc = find("Service", "corral-agent-metrics")
    if check(len(svc) == 1, "a Service corral-agent-metrics"):
        sp = svc[0]["spec"]
        check(sp.get("clusterIP") == "None", "metrics Service: headless")
        check(sp.get("selector") == ds[0]["spec"]["selector"]["matchLabels"], "metrics Service: selects the agents")
        check([(p.get("name"), p.get("targetPort")) for p in sp.get("ports", [])] == [("metrics", "metrics")],
              "metrics Service: one port, metrics")
    for kind in ("ServiceMonitor", "PodMonitor"):
        for mon in find(kind):
            sel = mon["spec"]["selector"]["matchLabels"]
            eps = mon["spec"].get("endpoints") or mon["spec"].get("podMetricsEndpoints")
            check(sel == ds[0]["spec"]["selector"]["matchLabels"] and [e["port"] for e in eps] == ["metrics"],
                  f"{kind}: selects the agents' metrics port")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    check("/tmp" in mounts and "emptyDir" in vols.get(mounts["/tmp"]["name"], {}), "/tmp is an emptyDir")
    check(any("emptyDir" in vols.get(m["name"], {}) and "corral" in p for p, m in mounts.items() if p != "/tmp"),
          "the control-socket directory is an emptyDir")
    check(not any("hostPath" in v for v in vols.values()), "no hostPath volumes")
    args = " ".join(c.get("args", []))
    check("--source=kube" in args, "agent runs with --source=kube")

# ---------- the uninstall DaemonSet ----------
cl = find("DaemonSet", "corral-cleanup")
if check(len(cl) == 1, "exactly one DaemonSet corral-cleanup (deploy/uninstall.yaml)"):
    spec = cl[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    sc = c.get("securityContext", {})
    check(len(spec["containers"]) == 1 and spec.get("hostNetwork") is True, "cleanup: one container, host network")
    check(spec.get("automountServiceAccountToken") is False and not spec.get("serviceAccountName"),
          "cleanup: no API access at all")
    check({"operator": "Exists"} in spec.get("tolerations", []), "cleanup: every node")
    check(sc.get("capabilities") == {"drop": ["ALL"], "add": ["NET_ADMIN"]} and sc.get("privileged") is False and
          sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True and
          sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "cleanup: the agent's least privilege")
    check("--cleanup=watch" in c.get("args", []), "cleanup: runs corral-agent --cleanup=watch")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "cleanup: ready once removed")
    check(not any("hostPath" in v for v in spec.get("volumes", [])), "cleanup: no hostPath volumes")

# ---------- RBAC ----------
roles = find("ClusterRole", "corral-agent")
if check(len(roles) == 1, "exactly one ClusterRole corral-agent"):
    want = {("", "pods"), ("", "namespaces"), ("networking.k8s.io", "networkpolicies"), ("corral.dev", "accesspolicies"),
            ("", "nodes"), ("", "events")}
    got = set()
    for rule in roles[0]["rules"]:
        # read the five resources (nodes: the nodes and world entities); write Events (drops on pods): create and patch, nothing else
        verbs = {"create", "patch"} if rule.get("resources") == ["events"] else {"get", "list", "watch"}
        check(set(rule.get("verbs", [])) == verbs, f"ClusterRole {rule.get('resources')}: exactly {sorted(verbs)}, not {rule.get('verbs')}")
        check("*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", []), "ClusterRole: no wildcards")
        check(not rule.get("nonResourceURLs"), "ClusterRole: no non-resource URLs")
        for g in rule.get("apiGroups", []):
            for r in rule.get("resources", []):
                got.add((g, r))
    check(got == want, f"ClusterRole: exactly {sorted(want)}, got {sorted(got)}")
# one Role, in namespace default: read the kubernetes Service's EndpointSlices (the kube-apiserver entity)
nsroles = find("Role")
if check(len(nsroles) == 1 and nsroles[0]["metadata"].get("namespace") == "default",
         "one Role, in namespace default"):
    check(nsroles[0]["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                                   "verbs": ["get", "list", "watch"]}],
          f"Role: get, list, watch endpointslices only, not {nsroles[0]['rules']}")
rb = find("RoleBinding")
check(len(rb) == 1 and rb[0]["metadata"].get("namespace") == "default" and rb[0]["roleRef"]["kind"] == "Role" and
      rb[0]["roleRef"]["name"] == nsroles[0]["metadata"]["name"] and
      [(x["name"], x.get("namespace")) for x in rb[0]["subjects"]] == [("corral-agent", "corral-system")],
      "RoleBinding binds that Role to the agent's service account only")
check(len(find("ClusterRoleBinding")) == 1, "one ClusterRoleBinding")
for b in find("ClusterRoleBinding"):
    check(b["roleRef"]["name"] == "corral-agent" and [s["name"] for s in b["subjects"]] == ["corral-agent"],
          "ClusterRoleBinding binds corral-agent to its service account only")

# ---------- Dockerfile ----------
with open(os.path.join(REPO, "deploy", "Dockerfile")) as f:
    dockerfile = f.read()
lines = [l.strip() for l in dockerfile.splitlines()]
# bases given as build arguments: their defaults are what a release uses
args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, re.M))
# FROM [--platform=...] IMAGE [AS NAME], the platform flag set aside
platforms = [re.match(r"FROM\s+--platform=(\S+)", l, re.I) for l in lines if l.upper().startswith("FROM ")]
froms = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), re.sub(r"--platform=\S+\s+", "", l))
         for l in lines if l.upper().startswith("FROM ")]
check(all("${" not in l for l in froms), f"Dockerfile: every base argument has a default: {froms}")
check(len(froms) >= 2, "Dockerfile: multi-stage")
for l in froms:
    image = l.split()[1]
    check("@sha256:" in image or ":" in image.split("/")[-1], f"Dockerfile: base image without tag or digest: {image}")
    if image.endswith(":latest") or ":latest-" in image:
        check(re.search(r"-debian\d+", image), f"Dockerfile: {image} floats on latest without naming its release")
check(froms[0].split()[1].startswith("debian:12"), "Dockerfile: build stage on Debian 12")
# amd64 and arm64: the build stage runs on the builder's platform and
# cross-compiles for TARGETARCH; the run base is a multi-platform tag, not
# one architecture's
check(platforms[0] and "BUILDPLATFORM" in platforms[0].group(1), "Dockerfile: the build stage on $BUILDPLATFORM")
check(re.search(r"^ARG TARGETARCH\s*$", dockerfile, re.M) and "build-rootfs.sh /rootfs /tmp/build \"${TARGETARCH" in dockerfile,
      "Dockerfile: builds for TARGETARCH (no default: BuildKit sets it)")
check(not re.search(r"-(amd64|arm64)\b", froms[-1]), f"Dockerfile: the run base is chosen by platform: {froms[-1]}")
check("distroless" in froms[-1], "Dockerfile: run stage is distroless")
last = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
check(not any(l.upper().startswith("RUN ") for l in lines[last:]), "Dockerfile: no RUN in the run stage (no shell there)")
check(any(l.upper().startswith("COPY --FROM=") for l in lines[last:]), "Dockerfile: the run stage copies from the build stage")
check(any(l.upper().startswith("USER ") for l in lines[last:]), "Dockerfile: an explicit USER")
check(re.search(r'^ENTRYPOINT \["', dockerfile, re.M), "Dockerfile: ENTRYPOINT in exec form")
check("--pull" in dockerfile, "Dockerfile: says to build with --pull")
check("NET_ADMIN" in dockerfile, "Dockerfile: explains what privilege the agent keeps")
check(not re.search(r"^ADD\s+https?://", dockerfile, re.M | re.I), "Dockerfile: no ADD of URLs")
check("build-rootfs.sh" in dockerfile, "Dockerfile: builds with deploy/build-rootfs.sh (the script CI runs)")

# ---------- the CRD ----------
# Whether its schema refuses what the agent refuses is checked against a
# real API server (tests/controlplane/test-crd.py); here only its shape.
crds = find("CustomResourceDefinition", "accesspolicies.corral.dev")


def agent_accepts(path):
    r = subprocess.run([AGENTCTL, "check", path], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


if check(len(crds) == 1, "exactly one AccessPolicy CRD"):
    crd = crds[0]
    ver = crd["spec"]["versions"][0]
    schema = ver["schema"]["openAPIV3Schema"]
    check(crd["spec"]["group"] == "corral.dev" and ver["name"] == "v1", "CRD: corral.dev/v1")
    check(len(ver.get("additionalPrinterColumns", [])) >= 2, "CRD: printer columns")

    def described(s, path):
        if path != "" and "description" not in s and path not in (".apiVersion", ".kind", ".metadata"):
            check(False, f"CRD schema: {path or '.'} has no description")
        for k, sub in s.get("properties", {}).items():
            described(sub, f"{path}.{k}")
        if "items" in s:
            described(s["items"], f"{path}[]")
    described(schema, "")

# every example passes agentctl check as a folder
for d in sorted(glob.glob(os.path.join(REPO, "deploy/examples/*/"))):
    ok, out = agent_accepts(d)
    check(ok, f"agentctl check {os.path.relpath(d, REPO)}: {out}")

# the NetworkPolicy version of the three-tier example means the same
for port in (8080, 5432, 9090, 53):
    m = []
    for d in ("three-tier", "three-tier-netpol"):
        r = subprocess.run([AGENTCTL, "matrix", "--from", os.path.join(REPO, "deploy/examples", d), "--port", str(port),
                            "-o", "json"], capture_output=True, text=True)
        m.append(r.stdout)
    check(m[0] == m[1] and '"pods"' in m[0], f"three-tier and three-tier-netpol differ on TCP/{port}")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print(f"deploy: {sum(len(v) for v in docs.values())} documents in {len(docs)} files checked")
