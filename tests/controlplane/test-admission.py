#!/usr/bin/env python3
"""The ValidatingAdmissionPolicy of deploy/examples/admission (trusted
registries) enforced by a real kube-apiserver: a pod from an untrusted
registry is refused with the policy's message, one from the trusted
registry accepted (there is no kubelet: pods stay Pending, which is all
admission needs). The file's Kyverno form needs Kyverno, which is not part
of this test bed; only the built-in form is applied.

usage: test-admission.py RUN_SH REPO
"""
import json
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cp import ControlPlane, Checks  # noqa: E402

RUN_SH, REPO = sys.argv[1:3]
c = Checks()
MSG = "images must come from registry.example.com"

with open(os.path.join(REPO, "deploy/examples/admission/trusted-registries.yaml")) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
builtin = [d for d in docs if d["apiVersion"].startswith("admissionregistration.k8s.io/")]
c.check(sorted(d["kind"] for d in builtin) == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"],
        f"the example holds a policy and its binding: {[d['kind'] for d in builtin]}")


def pod(name, image, init=None):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
         "spec": {"containers": [{"name": "app", "image": image}]}}
    if init:
        p["spec"]["initContainers"] = [{"name": "init", "image": init}]
    return p


with ControlPlane(RUN_SH) as cp:
    cp.kubectl("create", "namespace", "team")
    # without the policy, any image is admitted
    r = cp.kubectl("-n", "team", "create", "-f", "-", input=json.dumps(pod("before", "docker.io/library/nginx:1")), check=False)
    c.check(r.returncode == 0, f"before the policy, an image from anywhere is admitted: {r.stderr.strip()}")

    r = cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": builtin}))
    print(r.stdout.strip())

    # The policy takes effect once the admission plugin has seen policy and
    # binding (and type-checked the expression): wait for the first refusal.
    probe = pod("probe", "docker.io/library/nginx:1")
    cp.wait("the policy to be in force", lambda: cp.kubectl("-n", "team", "create", "--dry-run=server", "-f", "-",
                                                             input=json.dumps(probe), check=False).returncode != 0, 60)
    vap = json.loads(cp.kubectl("get", "validatingadmissionpolicy", "trusted-registries", "-o", "json").stdout)
    warnings = vap.get("status", {}).get("typeChecking", {}).get("expressionWarnings", [])
    c.check(not warnings, f"the policy's expression type-checks against Pod: {warnings}")

    cases = [  # name, pod, namespace, admitted
        ("untrusted", pod("untrusted", "docker.io/library/nginx:1"), "team", False),
        ("no-registry", pod("no-registry", "nginx"), "team", False),
        ("lookalike", pod("lookalike", "registry.example.com.evil.io/app:1"), "team", False),
        ("trusted", pod("trusted", "registry.example.com/shop/web:1.2"), "team", True),
        ("untrusted-init", pod("untrusted-init", "registry.example.com/app:1", init="busybox"), "team", False),
        ("trusted-init", pod("trusted-init", "registry.example.com/app:1", init="registry.example.com/init:1"), "team", True),
        # the binding leaves kube-system out
        ("kube-system", pod("kube-system", "docker.io/library/nginx:1"), "kube-system", True),
    ]
    for name, p, ns, admitted in cases:
        r = cp.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(p), check=False)
        if admitted:
            c.check(r.returncode == 0, f"{name}: refused, should be admitted: {r.stderr.strip()}")
            got = cp.kubectl("-n", ns, "get", "pod", name, "-o", "json", check=False)
            c.check(got.returncode == 0 and json.loads(got.stdout)["status"]["phase"] == "Pending",
                    f"{name}: stored (Pending: no kubelet)")
        else:
            c.check(r.returncode != 0, f"{name}: admitted, should be refused")
            c.check("ValidatingAdmissionPolicy 'trusted-registries'" in r.stderr and MSG in r.stderr,
                    f"{name}: refused by the policy with its message: {r.stderr.strip()}")
            c.check(cp.kubectl("-n", ns, "get", "pod", name, check=False).returncode != 0, f"{name}: not stored")

    # UPDATE is covered too: a trusted pod may not be switched to an untrusted
    # image (a pod's image is one of the few mutable fields)
    r = cp.kubectl("-n", "team", "set", "image", "pod/trusted", "app=docker.io/library/nginx:1", check=False)
    c.check(r.returncode != 0 and MSG in r.stderr, f"update to an untrusted image refused: {r.stderr.strip()}")

    # the refusal as the API returns it: 422 Invalid, the policy's message
    status, body = cp.json("POST", "/api/v1/namespaces/team/pods", pod("raw", "quay.io/x/y:1"))
    c.check(status == 422 and body.get("reason") == "Invalid" and MSG in body.get("message", ""),
            f"raw create: {status} {body}")

    # the policy removed, the same pod is admitted again (it was the policy)
    cp.kubectl("delete", "validatingadmissionpolicybinding", "trusted-registries")
    cp.wait("the binding's removal to take effect", lambda: cp.kubectl(
        "-n", "team", "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False).returncode == 0, 60)
    c.check(True, "without the binding, an untrusted image is admitted again")

c.finish("controlplane.admission")
