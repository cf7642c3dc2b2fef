#!/usr/bin/env python3
"""deploy/crd and deploy/rbac.yaml applied to a real kube-apiserver, and
the CRD agreement: every AccessPolicy of tests/deploy/accesspolicies and
deploy/examples is created for real; each invalid one must be refused by
the API server, with the field path of its "# field:" line in the message,
and by `agentctl check`, naming the same path; each valid one accepted by
both.

Excluded from the agreement, on purpose: an unknown field. The API server
prunes it (the object is stored without it) while `agentctl check` refuses
it; that disagreement is asserted below so that a change on either side is
noticed.

usage: test-crd.py RUN_SH REPO AGENTCTL
"""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH, REPO, AGENTCTL = sys.argv[1:4]
c = Checks()


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def agentctl_check(path):
    r = subprocess.run([AGENTCTL, "check", path], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


cases = [(p, True) for p in sorted(glob.glob(os.path.join(REPO, "tests/deploy/accesspolicies/valid/*.yaml")))]
cases += [(p, False) for p in sorted(glob.glob(os.path.join(REPO, "tests/deploy/accesspolicies/invalid/*.yaml")))]
for p in sorted(glob.glob(os.path.join(REPO, "deploy/examples/**/*.yaml"), recursive=True)):
    if any(d.get("kind") == "AccessPolicy" for d in load_all(p)):
        cases.append((p, True))
c.check(len([1 for _, v in cases if not v]) >= 20 and len(cases) >= 30, f"the agreement set is there ({len(cases)} files)")

with ControlPlane(RUN_SH) as cp:
    # ---- the manifests, applied for real
    r = cp.kubectl("apply", "-f", os.path.join(REPO, "deploy/crd"), "-f", os.path.join(REPO, "deploy/rbac.yaml"))
    print(r.stdout.strip())
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/accesspolicies.corral.dev")
    crd = json.loads(cp.kubectl("get", "crd", "accesspolicies.corral.dev", "-o", "json").stdout)
    conds = {x["type"]: x["status"] for x in crd["status"]["conditions"]}
    c.check(conds.get("Established") == "True" and conds.get("NamesAccepted") == "True",
            f"CRD established and its names accepted: {conds}")
    c.check("NonStructuralSchema" not in conds, f"CRD schema is structural: {conds}")
    c.check(crd["status"]["acceptedNames"]["kind"] == "AccessPolicy", "CRD kind AccessPolicy")
    for kind, name in (("clusterrole", "corral-agent"), ("clusterrolebinding", "corral-agent")):
        c.check(cp.kubectl("get", kind, name, check=False).returncode == 0, f"{kind} {name} created")
    c.check(cp.kubectl("-n", "corral-system", "get", "serviceaccount", "corral-agent", check=False).returncode == 0,
            "ServiceAccount corral-system/corral-agent created")
    # the API server now serves the resource (discovery, short name)
    r = cp.kubectl("api-resources", "--api-group=corral.dev", "-o", "wide")
    c.check(re.search(r"^accesspolicies\s+ap\s+corral.dev/v1\s+true\s+AccessPolicy", r.stdout, re.M) is not None,
            f"discovery lists accesspolicies (ap, namespaced):\n{r.stdout}")

    namespaces = {d["metadata"].get("namespace", "default") for p, _ in cases for d in load_all(p)
                  if d.get("kind") == "AccessPolicy"}
    for ns in sorted(namespaces - {"default"}):
        cp.kubectl("create", "namespace", ns)

    n_ap = 0
    for path, valid in cases:
        name = os.path.relpath(path, REPO)
        with open(path) as f:
            field = re.search(r"^# field: (\S+)$", f.read(), re.M)
        if not valid and not c.check(field is not None, f"{name}: no '# field: PATH' line naming the invalid field"):
            continue
        aps = [d for d in load_all(path) if d.get("kind") == "AccessPolicy"]
        ok_agent, out_agent = agentctl_check(path)
        for ap in aps:
            n_ap += 1
            ns = ap["metadata"].get("namespace", "default")
            r = cp.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(ap), check=False)
            if valid:
                c.check(r.returncode == 0, f"{name}: the API server refuses a valid AccessPolicy: {r.stderr.strip()}")
                if r.returncode == 0:
                    stored = json.loads(r.stdout)
                    c.check(stored["spec"]["application"] == ap["spec"]["application"], f"{name}: stored as sent")
                    cp.kubectl("-n", ns, "delete", "accesspolicy", ap["metadata"]["name"])
            else:
                c.check(r.returncode != 0, f"{name}: the API server accepts an invalid AccessPolicy")
                c.check(f"AccessPolicy \"{ap['metadata']['name']}\" is invalid" in r.stderr,
                        f"{name}: refused for another reason than validation: {r.stderr.strip()}")
                c.check(field.group(1) in r.stderr,
                        f"{name}: the API server's message does not name {field.group(1)}: {r.stderr.strip()}")
        if valid:
            c.check(ok_agent, f"{name}: agentctl check refuses a valid file: {out_agent}")
        else:
            c.check(not ok_agent, f"{name}: agentctl check accepts an invalid file")
            c.check(field.group(1) in out_agent, f"{name}: agentctl check does not name {field.group(1)}: {out_agent}")

    # CRD defaulting: the protocol of a port is TCP when left out
    ap = {"apiVersion": "corral.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "defaults", "namespace": "default"},
          "spec": {"application": "a", "inbound": {"rules": [{"application": "b", "ports": [{"port": 80}]}]}}}
    stored = json.loads(cp.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(ap)).stdout)
    c.check(stored["spec"]["inbound"]["rules"][0]["ports"][0].get("protocol") == "TCP",
            f"the API server defaults protocol to TCP: {stored['spec']}")

    # ---- the documented exclusion: an unknown field
    ap = {"apiVersion": "corral.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "unknown-field", "namespace": "default"},
          "spec": {"application": "a", "bogus": 1}}
    r = cp.kubectl("create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps(ap), check=False)
    c.check(r.returncode == 0 and "bogus" not in json.loads(r.stdout or "{}").get("spec", {"bogus": 1}),
            f"the API server prunes an unknown field (without --validate it is only dropped): {r.stderr.strip()}")
    r = cp.kubectl("create", "--validate=strict", "-f", "-", input=json.dumps(dict(ap, metadata={"name": "u2", "namespace": "default"})), check=False)
    c.check(r.returncode != 0 and 'unknown field "spec.bogus"' in r.stderr,
            f"with --validate=strict (field validation Strict) the API server refuses it: {r.stderr.strip()}")
    tmp = cp.path("unknown-field.yaml")
    with open(tmp, "w") as f:
        json.dump(ap, f)
    ok_agent, out_agent = agentctl_check(tmp)
    c.check(not ok_agent and "bogus" in out_agent, f"agentctl check refuses an unknown field: {out_agent}")

    print(f"real API server and agentctl check agree on {len(cases)} files ({n_ap} AccessPolicies)")

c.finish("controlplane.crd")
