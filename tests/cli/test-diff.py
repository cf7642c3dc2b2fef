#!/usr/bin/env python3
"""agentctl diff is the difference of two agentctl matrix outputs.

On every upstream e2e case (tests/cases: each step against the next, and
the objects before the first step against the first) and on every example
(deploy/examples: without its policies against with them, against nothing,
and the three-tier AccessPolicies against the same app as
NetworkPolicies):

  - diff --port P --protocol X lists exactly the pairs whose matrix cells
    at P/X differ, with the same before and after;
  - diff over every port: each reported range has that change at both of
    its ends, and at every probed port a pair outside all ranges has the
    same cell on both sides;
  - --fail-on added exits 1 exactly when some change opens a flow.

usage: test-diff.py RUN-CASE AGENTCTL REPO"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

RUN_CASE, CTL, REPO = sys.argv[1:4]
tmp = tempfile.mkdtemp(prefix="corral-diff-test-")
failures = []
checked = {"pairs": 0, "ports": 0, "changes": 0}
matrices = {}


def fail(what):
    print("FAIL:", what, flush=True)
    failures.append(what)


def ctl(*args):
    r = subprocess.run([CTL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def word(c4, c6):
    """The verdict word of a matrix cell, as diff names it."""
    if c4 is None and c6 is None:
        return "denied"  # no family in common: no flow
    if c4 is None or c6 is None or c4 == c6:
        return "allowed" if (c4 if c4 is not None else c6) else "denied"
    return "ipv4-only" if c4 else "ipv6-only"


def matrix(folder, proto, port):
    """{(src, dst): word} of agentctl matrix, None when it has no pod."""
    key = (folder, proto, port)
    if key not in matrices:
        rc, out, err = ctl("matrix", "--from", folder, "--port", str(port), "--protocol", proto, "-o", "json")
        if rc == 2 and "no pod" in err:
            matrices[key] = {}
        elif rc != 0:
            fail("matrix %s %s/%d: exit %d %s" % (folder, proto, port, rc, err))
            matrices[key] = {}
        else:
            m = json.loads(out)
            pods = m["pods"]
            matrices[key] = {(s, d): word(m["ipv4"][i][j], m["ipv6"][i][j])
                             for i, s in enumerate(pods) for j, d in enumerate(pods) if i != j}
    return matrices[key]


def expected(a, b, proto, port):
    """Pairs whose verdict differs, as diff reports them (no flow on either
    side, denied or absent, is no change)."""
    ma, mb = matrix(a, proto, port), matrix(b, proto, port)
    pods = {p for pair in list(ma) + list(mb) for p in pair}
    out = {}
    for s in pods:
        for d in pods:
            if s == d:
                continue
            x, y = ma.get((s, d), "absent"), mb.get((s, d), "absent")
            if x != y and not ({x, y} <= {"denied", "absent"}):
                out[(s, d)] = (x, y)
    return out


def compare(a, b, probes, what):
    checked["pairs"] += 1
    for proto, port in sorted(probes):
        checked["ports"] += 1
        rc, out, err = ctl("diff", "--from", a, "--to", b, "--port", str(port), "--protocol", proto, "-o", "json")
        if rc != 0:
            fail("%s: diff %s/%d exit %d: %s" % (what, proto, port, rc, err))
            continue
        got = {(c["src"], c["dst"]): (c["before"], c["after"]) for c in json.loads(out)["changes"]}
        want = expected(a, b, proto, port)
        if got != want:
            fail("%s %s/%d: diff says %s, the matrices differ by %s" % (what, proto, port, got, want))
    # every port at once
    rc, out, err = ctl("diff", "--from", a, "--to", b, "-o", "json")
    if rc != 0:
        return fail("%s: diff (every port) exit %d: %s" % (what, rc, err))
    changes = json.loads(out)["changes"]
    covered = {}
    for c in changes:
        checked["changes"] += 1
        for port in {c["port"], c.get("end_port", c["port"])}:
            want = expected(a, b, c["protocol"], port).get((c["src"], c["dst"]))
            if want != (c["before"], c["after"]):
                fail("%s: %s -> %s %s %d: diff says %s -> %s, the matrices %s" % (
                    what, c["src"], c["dst"], c["protocol"], port, c["before"], c["after"], want))
        covered.setdefault((c["protocol"], c["src"], c["dst"]), []).append((c["port"], c.get("end_port", c["port"])))
    for proto, port in sorted(probes):
        for pair, change in expected(a, b, proto, port).items():
            if not any(lo <= port <= hi for lo, hi in covered.get((proto,) + pair, [])):
                fail("%s: %s %s/%d changes %s in the matrices, but no range of diff holds it" % (
                    what, pair, proto, port, change))
    opens = any(c["after"] != "absent" and c["after"] != "denied" and c["before"] != "allowed" for c in changes)
    rc, _, _ = ctl("diff", "--from", a, "--to", b, "--fail-on", "added")
    if rc != (1 if opens else 0):
        fail("%s: --fail-on added exit %d, changes that open a flow: %s" % (what, rc, opens))


# ---- the upstream e2e cases, step by step
for case in sorted(glob.glob(os.path.join(REPO, "tests/cases/*.yaml"))):
    d = os.path.join(tmp, os.path.basename(case)[:-5])
    os.mkdir(d)
    r = subprocess.run([RUN_CASE, "--write-steps", d, case], capture_output=True, text=True)
    if r.returncode != 0:
        fail("run-case --write-steps %s: %s" % (case, r.stderr[-500:]))
        continue
    steps = ["base"] + sorted((s[5:] for s in os.listdir(d) if s.startswith("step-") and s != "step-base"), key=int)
    for x, y in zip(steps, steps[1:]):
        probes = {("TCP", 80), ("TCP", 81), ("UDP", 80), ("SCTP", 80)}
        for s in (x, y):
            for p in json.load(open(os.path.join(d, "probes-%s.json" % s))):
                probes.add((p.get("protocol") or "TCP", p["port"]))
        compare(os.path.join(d, "step-" + x), os.path.join(d, "step-" + y), probes, "%s step %s -> %s" % (os.path.basename(case), x, y))
    shutil.rmtree(d)

# ---- the examples
RES = {"NetworkPolicy", "AccessPolicy"}


def docs_of(folder):
    out = []
    for f in sorted(os.listdir(folder)):
        if f.endswith((".yaml", ".yml", ".json")):
            out += [x for x in yaml.safe_load_all(open(os.path.join(folder, f))) if x]
    return out


def write(folder, docs):
    os.mkdir(folder)
    with open(os.path.join(folder, "objects.yaml"), "w") as f:
        yaml.safe_dump_all(docs, f)
    return folder


def ports_of(folder):
    text = "".join(open(os.path.join(folder, f)).read() for f in os.listdir(folder))
    ports = {("TCP", 80), ("UDP", 53), ("TCP", 53)}
    for m in re.finditer(r"(?:containerPort|port|endPort):\s*(\d+)", text):
        for proto in ("TCP", "UDP", "SCTP"):
            ports.add((proto, int(m.group(1))))
    return ports


empty = write(os.path.join(tmp, "empty"), [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nothing"}}])
examples = sorted(p for p in glob.glob(os.path.join(REPO, "deploy/examples/*")) if os.path.isdir(p))
for ex in examples:
    name = os.path.basename(ex)
    if not matrix(ex, "TCP", 80):
        print("example %s: no pods, nothing to compare" % name)
        continue
    bare = write(os.path.join(tmp, name + "-bare"), [x for x in docs_of(ex) if x.get("kind") not in RES])
    probes = ports_of(ex)
    compare(bare, ex, probes, "example %s: without policies -> with" % name)
    compare(ex, empty, probes, "example %s -> nothing" % name)
tt, ttn = os.path.join(REPO, "deploy/examples/three-tier"), os.path.join(REPO, "deploy/examples/three-tier-netpol")
compare(tt, ttn, ports_of(tt) | ports_of(ttn), "three-tier AccessPolicies -> NetworkPolicies")

shutil.rmtree(tmp, ignore_errors=True)
print("diff equals the matrices' difference: %d pairs of object sets, %d ports, %d ranges checked; %d failures" % (
    checked["pairs"], checked["ports"], checked["changes"], len(failures)))
sys.exit(1 if failures else 0)
