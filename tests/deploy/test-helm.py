#!/usr/bin/env python3
"""The Helm chart (deploy/helm/corral), with Helm built from its Go module
(tests/helm/helm.sh: helm.sh/helm/v3 pinned in tests/helm/go.mod):

- `helm lint --strict` passes, with the defaults and with every option on;
- `helm template` with the default values renders exactly the objects of
  deploy/rbac.yaml, deploy/daemonset.yaml and deploy/crd/ (compared as
  data; config.yaml as the YAML it holds), so the two install paths
  install the same thing; with the monitoring values on, exactly
  deploy/monitoring/*.yaml (and the dashboard's JSON); with
  cleanup.enabled, deploy/uninstall.yaml's DaemonSet instead of the agents;
- each value does what values.yaml says (image digest, namespace, metrics
  port, config, resources, tolerations, update strategy, node selector).

A difference names the object and the path of the first field that
differs: change the chart's template and the file of deploy/ together.

usage: test-helm.py REPO
"""
import glob
import json
import os
import subprocess
import sys
import time

import yaml

REPO = sys.argv[1]
HELM_SH = os.path.join(REPO, "tests", "helm", "helm.sh")
CHART = os.path.join(REPO, "deploy", "helm", "corral")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


t = time.monotonic()
r = subprocess.run(["sh", HELM_SH, "build"], capture_output=True, text=True)
if r.returncode != 0:
    print(f"FAIL: building helm: {r.stderr[-3000:]}")
    sys.exit(1)
HELM = r.stdout.strip()
print(f"helm: {HELM} ready in {time.monotonic() - t:.1f}s{' (built: ' + r.stderr.strip().splitlines()[-1] + ')' if 'built in' in r.stderr else ''}")


def helm(*args):
    r = subprocess.run([HELM, *args], capture_output=True, text=True)
    # the chart's crds/ and files/ link to deploy/ (one copy of each); helm
    # says so on every load
    err = "\n".join(l for l in r.stderr.splitlines() if "found symbolic link in path" not in l)
    return r.returncode, r.stdout, err


def render(*sets):
    rc, out, err = helm("template", "corral", CHART, "--include-crds", *sets)
    if not check(rc == 0, f"helm template {' '.join(sets)}: {err}"):
        return {}
    docs = {}
    for d in yaml.safe_load_all(out):
        if d:
            key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
            check(key not in docs, f"helm template {' '.join(sets)}: {key} twice")
            docs[key] = d
    return docs


def load(*paths):
    docs = {}
    for p in paths:
        for d in yaml.safe_load_all(open(p)):
            if d:
                docs[(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])] = d
    return docs


def normal(d):
    """An object as data; a ConfigMap's *.yaml values as the YAML they hold."""
    if d.get("kind") == "ConfigMap":
        d = json.loads(json.dumps(d))
        for k, v in d.get("data", {}).items():
            if k.endswith(".yaml"):
                d["data"][k] = yaml.safe_load(v)
    return d


def first_difference(a, b, path=""):
    if type(a) is not type(b):
        return f"{path or '.'}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'the chart' if k in a else 'deploy/'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in the chart, {len(b)} in deploy/"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: chart {a!r}, deploy/ {b!r}"


def same(chart, files, what):
    for k in sorted(set(chart) | set(files)):
        if k not in files:
            check(False, f"{what}: the chart renders {k}, which deploy/ does not have")
        elif k not in chart:
            check(False, f"{what}: deploy/ has {k}, which the chart does not render")
        else:
            d = first_difference(normal(chart[k]), normal(files[k]))
            check(d is None, f"{what}: {k[0]} {k[2]} differs at {d}")


# ---------- lint ----------
everything = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true",
              "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.dashboard.enabled=true"]
for sets in ([], everything, ["--set", "cleanup.enabled=true"], ["--set", "namespace.create=false"]):
    rc, out, err = helm("lint", "--strict", CHART, *sets)
    check(rc == 0, f"helm lint --strict {' '.join(sets)}:\n{out}{err}")

# ---------- the defaults are deploy/ ----------
D = os.path.join(REPO, "deploy")
base = load(os.path.join(D, "rbac.yaml"), os.path.join(D, "daemonset.yaml"), *glob.glob(os.path.join(D, "crd", "*.yaml")))
default = render()
same(default, base, "default values")
print(f"default values: {len(default)} objects, the same as deploy/ ({len(base)})")

mon = load(*glob.glob(os.path.join(D, "monitoring", "*.yaml")))
full = render(*everything)
dash = full.pop(("ConfigMap", "corral-system", "corral-dashboard"), None)
same({k: v for k, v in full.items() if k not in default}, mon, "monitoring values")
if check(dash is not None, "metrics.dashboard.enabled: no dashboard ConfigMap"):
    check(dash["metadata"]["labels"].get("grafana_dashboard") == "1", "dashboard ConfigMap: Grafana sidecar label")
    check(json.loads(dash["data"]["corral-dashboard.json"]) ==
          json.load(open(os.path.join(D, "monitoring", "corral-dashboard.json"))),
          "the dashboard ConfigMap holds deploy/monitoring/corral-dashboard.json")
print(f"monitoring values: {len(mon)} objects, the same as deploy/monitoring/, and the dashboard")

cl = render("--set", "cleanup.enabled=true")
check(("DaemonSet", "corral-system", "corral-agent") not in cl, "cleanup.enabled: the agents' DaemonSet goes")
same({k: v for k, v in cl.items() if k[0] == "DaemonSet"}, load(os.path.join(D, "uninstall.yaml")), "cleanup.enabled")

# ---------- each value does what values.yaml says ----------


def agent(docs):
    return docs.get(("DaemonSet", docs and next(iter(k[1] for k in docs if k[0] == "DaemonSet")) or "", "corral-agent"))


v = render("--set", "image.digest=sha256:" + "ab" * 32, "--set", "namespace.name=netsec", "--set", "metrics.port=9500",
           "--set", "config.appLabels=app.kubernetes.io/name\\,app", "--set", "config.logLevel=debug",
           "--set", "resources.limits.memory=1Gi", "--set-json", "tolerations=[]",
           "--set", "updateStrategy.rollingUpdate.maxUnavailable=25%", "--set", "nodeSelector.kubernetes\\.io/os=linux",
           "--set", "image.pullPolicy=Always")
ds = v.get(("DaemonSet", "netsec", "corral-agent"))
if check(ds is not None, f"namespace.name: the DaemonSet in netsec: {sorted(v)}"):
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(c["image"] == "ghcr.io/corral-dev/corral-agent@sha256:" + "ab" * 32, f"image.digest: {c['image']}")
    check(c.get("imagePullPolicy") == "Always", "image.pullPolicy")
    check([p["containerPort"] for p in c["ports"]] == [9500], "metrics.port: the container port")
    check(c["resources"]["limits"]["memory"] == "1Gi" and c["resources"]["requests"]["memory"] == "64Mi",
          f"resources: {c['resources']}")
    check("tolerations" not in pod, "tolerations: []")
    check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux"}, "nodeSelector")
    check(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "25%", "updateStrategy")
cfg = yaml.safe_load(v.get(("ConfigMap", "netsec", "corral-agent"), {}).get("data", {}).get("config.yaml", "{}"))
check(cfg == {"appLabels": "app.kubernetes.io/name,app", "podCidrs": "", "apiServerAddresses": "", "dnsDefault": True, "logRate": 10, "logLevel": "debug",
              "dnsProxyPort": 15053, "dnsServiceAddresses": "", "dropEvents": True, "dropEventsPerMinute": 6,
              "metricsAddress": "$(HOST_IP):9500"}, f"config: {cfg}")
svc = v.get(("Service", "netsec", "corral-agent-metrics"))
check(svc and svc["spec"]["ports"][0]["port"] == 9500, "metrics.port: the Service's port")
check(("Namespace", "", "netsec") in v, "namespace.name: the Namespace made")
crb = v.get(("ClusterRoleBinding", "", "corral-agent"), {})
check(crb.get("subjects", [{}])[0].get("namespace") == "netsec", "namespace.name: the binding's subject")
# every namespaced object in netsec, but the Role that reads the kubernetes
# Service's EndpointSlices (and its binding), which lives where they do
apiserver = {("Role", "default", "corral-agent-apiserver"), ("RoleBinding", "default", "corral-agent-apiserver")}
check(not [k for k in v if k[1] not in ("", "netsec") and k not in apiserver] and apiserver <= set(v),
      f"namespace.name: every object in netsec, the apiserver Role in default: {sorted(v)}")
rb = v.get(("RoleBinding", "default", "corral-agent-apiserver"), {})
check(rb.get("subjects", [{}])[0].get("namespace") == "netsec", "namespace.name: the Role binding's subject")
nn = render("--set", "namespace.create=false")
check(not [k for k in nn if k[0] == "Namespace"], "namespace.create=false: no Namespace")
cfg = yaml.safe_load(render("--set", "config.metricsAddress=")[("ConfigMap", "corral-system", "corral-agent")]
                     ["data"]["config.yaml"])
check(cfg.get("metricsAddress") in ("", None), f"config.metricsAddress set by hand wins: {cfg.get('metricsAddress')}")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("helm: all passed")
