#!/usr/bin/env python3
"""deploy/monitoring/: the alerts and the dashboard, checked.

- prometheusrule.yaml: its rules pass `promtool check rules` (PromQL and
  the annotations' templates), and `promtool test rules` fires each alert
  on made-up series when it should, and not before (alerts-test.yaml);
- corral-dashboard.json: a Grafana dashboard (uid, title, schemaVersion,
  unique panel ids, grid positions inside 24 columns, a Prometheus data
  source variable every panel and target uses), every expression valid
  PromQL (promtool, as recording rules);
- every metric the rules and the dashboard query is one the agent serves:
  an agent runs in a network namespace on deploy/examples/shop and its
  /metrics is read; every label they group or select by is one that metric
  carries (node comes from the monitors' relabeling).

usage: test-monitoring.py REPO CORRAL-AGENT     (root: the agent's namespace)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

REPO, AGENT = sys.argv[1], sys.argv[2]
MON = os.path.join(REPO, "deploy", "monitoring")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


if os.geteuid() != 0:
    print("skipped: needs root (the agent in a network namespace)")
    sys.exit(77)
if not shutil.which("promtool"):
    print("FAIL: promtool missing (Debian's prometheus package: scripts/install-deps.sh)")
    sys.exit(1)

tmp = tempfile.mkdtemp(prefix="corral-monitoring-")


def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=tmp)
    return r.returncode, r.stdout + r.stderr


# ---------- the alerts ----------
rule = yaml.safe_load(open(os.path.join(MON, "prometheusrule.yaml")))
check(rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1", "a PrometheusRule")
spec = rule["spec"]
with open(os.path.join(tmp, "full.yaml"), "w") as f:
    yaml.safe_dump(spec, f)
rc, out = promtool("check", "rules", "full.yaml")
check(rc == 0, f"promtool check rules: {out}")
alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
for a in alerts:
    check(a.get("labels", {}).get("severity") in ("critical", "warning", "info"), f"{a['alert']}: a severity")
    check("summary" in a.get("annotations", {}) and "description" in a.get("annotations", {}),
          f"{a['alert']}: summary and description")
# the unit tests, on the rules without their annotations (promtool test
# compares annotations whole; check rules has parsed their templates)
for g in spec["groups"]:
    for r in g["rules"]:
        r.pop("annotations", None)
with open(os.path.join(tmp, "rules.yaml"), "w") as f:
    yaml.safe_dump(spec, f)
shutil.copy(os.path.join(REPO, "tests", "deploy", "alerts-test.yaml"), tmp)
rc, out = promtool("test", "rules", "alerts-test.yaml")
check(rc == 0, f"promtool test rules alerts-test.yaml:\n{out}")
tested = set(re.findall(r"alertname: (\w+)", open(os.path.join(tmp, "alerts-test.yaml")).read()))
for a in alerts:
    check(a["alert"] in tested, f"{a['alert']}: no unit test in alerts-test.yaml")
print(f"alerts: {len(alerts)} rules checked and unit-tested with promtool")

# ---------- the dashboard ----------
dash = json.load(open(os.path.join(MON, "corral-dashboard.json")))
for k in ("uid", "title", "schemaVersion", "panels", "templating"):
    check(k in dash, f"dashboard: no {k}")
variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
check(variables.get("datasource", {}).get("type") == "datasource" and
      variables["datasource"].get("query") == "prometheus", "dashboard: a Prometheus data source variable")
ids, exprs = set(), []
cells = set()
for p in dash["panels"]:
    check(p.get("id") not in ids, f"panel id {p.get('id')} twice")
    ids.add(p.get("id"))
    check(p.get("type") in ("stat", "timeseries", "table", "gauge", "bargauge", "text", "row"),
          f"panel {p.get('title')}: type {p.get('type')}")
    g = p.get("gridPos", {})
    check(all(isinstance(g.get(k), int) for k in "hwxy") and g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0,
          f"panel {p.get('title')}: gridPos {g}")
    for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):  # no two panels on one cell
        for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
            check((x, y) not in cells, f"panel {p.get('title')} overlaps another at {x},{y}")
            cells.add((x, y))
    check(p.get("datasource", {}).get("uid") == "${datasource}", f"panel {p.get('title')}: the data source variable")
    check(p.get("targets"), f"panel {p.get('title')}: no targets")
    for t in p.get("targets", []):
        check(t.get("datasource", {}).get("uid") == "${datasource}", f"panel {p.get('title')}: a target's data source")
        exprs.append((p["title"], t["expr"]))
node_q = variables.get("node", {}).get("query", {})
exprs.append(("variable node", "corral_ready"))
check("corral_ready" in json.dumps(node_q), "dashboard: the node variable comes from corral_ready")


def grafana_to_promql(e):
    return e.replace("$__rate_interval", "5m").replace("$node", ".*")


with open(os.path.join(tmp, "dashboard-rules.yaml"), "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(exprs)]}]}, f)
rc, out = promtool("check", "rules", "dashboard-rules.yaml")
check(rc == 0, f"dashboard expressions are not valid PromQL: {out}")
print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} expressions, valid PromQL")

# ---------- the agent's /metrics ----------
ns = os.environ.get("CORRAL_NETNS_TAG", "") + "corral-mon"
subprocess.run(["ip", "netns", "del", ns], capture_output=True)
subprocess.run(["ip", "netns", "add", ns], check=True)
agent = None
body = ""
try:
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    # a node's address (the DNS proxy listens on the first global one)
    subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
    for dev in ("eth0", "eth1"):
        subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", "10.250.0.1/24", "dev", "eth0"], check=True)
    agent = subprocess.Popen([AGENT, "--netns", f"/run/netns/{ns}", "--source",
                              f"files:{REPO}/deploy/examples/shop", "--node-name", "node-1", "--socket",
                              os.path.join(tmp, "agent.sock"), "--metrics-address", "127.0.0.1:19466"],
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "agent.log"), "w"))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "http://127.0.0.1:19466/metrics"],
                           capture_output=True, text=True)
        if r.returncode == 0 and "\ncorral_ready 1" in r.stdout:
            body = r.stdout
            break
        time.sleep(0.2)
finally:
    if agent:
        agent.terminate()
        agent.wait()
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "corral"], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
if not check(body, f"the agent's /metrics: {open(os.path.join(tmp, 'agent.log')).read()[-2000:]}"):
    body = ""

families = {}  # metric family -> label names seen
for line in body.splitlines():
    m = re.match(r"# TYPE (\w+) (\w+)", line)
    if m:
        families.setdefault(m.group(1), set())
        if m.group(2) == "histogram":
            for s in ("_bucket", "_sum", "_count"):
                families.setdefault(m.group(1) + s, {"le"} if s == "_bucket" else set())
        continue
    m = re.match(r"(\w+)\{(.*)\} ", line)
    if m and m.group(1) in families:
        labs = set(re.findall(r'(\w+)="', m.group(2)))
        families[m.group(1)] |= labs
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        if base != m.group(1) and base in families:  # a histogram's labels, le aside
            families[base] |= labs - {"le"}
check(any(k.startswith("corral_dropped_packets_total") for k in families)
      and {"direction", "reason", "namespace", "policy"} <= families.get("corral_dropped_packets_total", set()),
      f"/metrics serves corral_dropped_packets_total with its labels: {families.get('corral_dropped_packets_total')}")

AGGR_WORDS = {"sum", "by", "rate", "increase", "topk", "max", "count", "histogram_quantile", "offset", "unless", "and",
              "or", "on", "ignoring", "without", "le", "up", "avg"}
queried = [(w, e) for w, e in exprs] + [(a["alert"], a["expr"]) for a in alerts]
used = set()
for where, e in queried:
    names = set(re.findall(r"\bcorral_[a-z0-9_]+", e))
    used |= names
    for n in names:
        check(n in families, f"{where}: {n} is not in the agent's /metrics")
    have = set().union(*(families.get(n, set()) for n in names)) | {"node", "le"}
    for grp in re.findall(r"by \(([^)]*)\)", e):
        for lab in (x.strip() for x in grp.split(",")):
            check(lab in have, f"{where}: groups by {lab}, which {sorted(names)} do not carry")
    for sel in re.findall(r"corral_[a-z0-9_]+\{([^}]*)\}", e):
        for lab in re.findall(r"(\w+)\s*[=!~]", sel):
            check(lab in have, f"{where}: selects on {lab}, which {sorted(names)} do not carry")
print(f"metrics: {len(used)} corral metrics queried, all served by the agent ({len(families)} families)")

# README's table of metrics lists exactly what is served, with its labels
readme = open(os.path.join(REPO, "README.md")).read()
section = readme[readme.find("### Metrics"):]
section = section[:section.find("\n### ", 1)]
rows = {}
for m in re.finditer(r"^\| `(corral_\w+)` \| (\w+) \| ([^|]*)\|", section, re.M):
    rows[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(3)))
served = {f for f in families if not re.search(r"_(bucket|sum|count)$", f) or f[:f.rfind("_")] not in families}
check(set(rows) == served, f"README's table of metrics: missing {sorted(served - set(rows))}, "
      f"not served {sorted(set(rows) - served)}")
for name, labels in rows.items():
    if name in families and labels:
        check(labels == families[name] | ({"le"} if "le" in labels else set()),
              f"README: {name} has labels {sorted(families[name])}, the table says {sorted(labels)}")
print(f"README: {len(rows)} metrics in its table, as served")

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("monitoring: all passed")
