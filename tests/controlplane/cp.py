"""A real control plane for one test (run.sh up in a temporary folder,
run.sh down at the end, even on failure), and plain HTTPS requests to it.

    with ControlPlane(RUN_SH) as cp:
        cp.kubectl("apply", "-f", path)
        status, headers, body = cp.request("GET", "/api/v1/pods")
        cp.request("GET", "/api/v1/pods", token=tok)   # as someone else
"""
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.parse


class ControlPlane:
    def __init__(self, run_sh, *apiserver_flags, env=None):
        self.run_sh = run_sh
        self.flags = list(apiserver_flags)
        self.env = dict(os.environ)
        # the control plane ends itself if this test dies before clean-up
        self.env["CORRAL_CP_OWNER"] = str(os.getpid())
        self.env.update(env or {})
        self.dir = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="corral-cp-")
        # a SIGTERM (a timeout, Ctrl-C from a wrapper) still runs the clean-up
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        t = time.monotonic()
        r = subprocess.run(["sh", self.run_sh, "up", self.dir, *self.flags], env=self.env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            self._down()
            raise RuntimeError(f"run.sh up failed:\n{r.stdout}{r.stderr}")
        self.url = r.stdout.strip().splitlines()[-1]
        print(f"control plane up at {self.url} in {time.monotonic() - t:.1f}s ({self.dir})", flush=True)
        self.host = urllib.parse.urlparse(self.url).netloc
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and self.dir:
            log = os.path.join(self.dir, "apiserver.log")
            if os.path.exists(log):
                print("--- last lines of apiserver.log", file=sys.stderr)
                with open(log) as f:
                    sys.stderr.writelines(f.readlines()[-15:])
        self._down()
        return False

    def _down(self):
        subprocess.run(["sh", self.run_sh, "down", self.dir], env=self.env)
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def op(self, what):
        """run.sh compact / restart; returns its output."""
        r = subprocess.run(["sh", self.run_sh, what, self.dir], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"run.sh {what} failed:\n{r.stdout}{r.stderr}")
        return r.stdout.strip()

    def kubectl(self, *args, input=None, check=True, kubeconfig=None):
        """kubectl ARGS as cluster admin (or with KUBECONFIG); returns the
        CompletedProcess (stdout, stderr as text)."""
        cmd = [self.path("kubectl"), *args]
        if kubeconfig:
            cmd.insert(1, "--kubeconfig=" + kubeconfig)
        r = subprocess.run(cmd, input=input, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def token_kubeconfig(self, token, name="token.kubeconfig"):
        """A kubeconfig that authenticates with TOKEN only (no client cert)."""
        p = self.path(name)
        with open(p, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{self.url}", certificate-authority: "{self.path('ca.crt')}"}}}}]
users: [{{name: u, user: {{token: "{token}"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
""")
        return p

    def connection(self, token=None, timeout=30):
        ctx = ssl.create_default_context(cafile=self.path("ca.crt"))
        if token is None:
            ctx.load_cert_chain(self.path("pki/admin.crt"), self.path("pki/admin.key"))
        return http.client.HTTPSConnection(self.host, context=ctx, timeout=timeout)

    def request(self, method, path, body=None, token=None, content_type="application/json", timeout=30):
        """One request as admin (client certificate) or with TOKEN; returns
        (status, headers as a dict of lower-case names, body bytes)."""
        c = self.connection(token, timeout)
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            headers["Content-Type"] = content_type
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, method, path, body=None, token=None):
        status, _, data = self.request(method, path, body, token)
        return status, json.loads(data) if data else None

    def wait(self, what, fn, timeout=60):
        """Polls FN until it returns a true value; fails after TIMEOUT s."""
        end = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > end:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)


class Checks:
    """Collects failed expectations and reports them all at the end."""

    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def finish(self, name):
        print(f"{name}: {self.passed} checks passed, {len(self.failures)} failed")
        if self.failures:
            sys.exit(1)
