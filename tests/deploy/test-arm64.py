#!/usr/bin/env python3
"""The arm64 image's root filesystem, cross-built: deploy/Dockerfile's build
stage with TARGETARCH=arm64 (Debian's cross toolchain and the arm64 -dev
packages, deploy/build-deps.sh; the legacy builder, on a local stand-in of
debian:12-slim: tests/deploy/base-images.sh), then:

- both programs and every library shipped are AArch64 ELF files;
- every library they need is shipped, or one the distroless base provides
  (glibc, libgcc, OpenSSL);
- they run (qemu-aarch64 user emulation, with the shipped libraries first
  and only the base's from the build stage): `--help` of both, and
  `agentctl check` and `agentctl dump` on deploy/examples/shop, whose
  nftables text must equal the amd64 build's.

usage: test-arm64.py REPO AGENTCTL      (AGENTCTL: this machine's build)
"""
import os
import shutil
import subprocess
import sys
import time

REPO, AGENTCTL = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = os.environ.get("CORRAL_NETNS_TAG", "")
IMAGE = "corral-build:arm64" + (f"-{TAG}" if TAG else "")
QEMU = "/usr/bin/qemu-aarch64-static"
failures = []
# what gcr.io/distroless/cc-debian12 holds (deploy/build-rootfs.sh leaves them out)
BASE = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "ld-linux-aarch64.so.1",
        "libgcc_s.so.1", "libssl.so.3", "libcrypto.so.3")


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def sh(*args, check_rc=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r


if not shutil.which("docker") or sh("docker", "info", check_rc=False).returncode != 0:
    print("FAIL: no Docker engine")
    sys.exit(1)
if not os.path.exists(QEMU):
    print(f"FAIL: {QEMU} missing (Debian's qemu-user-static: scripts/install-deps.sh)")
    sys.exit(1)

build_base = sh("sh", os.path.join(HERE, "base-images.sh")).stdout.split()[0]
t = time.monotonic()
r = sh("docker", "build", "--network", "host", "--target", "build", "--build-arg", f"BUILD_BASE={build_base}",
       "--build-arg", "TARGETARCH=arm64", "-f", os.path.join(REPO, "deploy/Dockerfile"), "-t", IMAGE, REPO,
       check_rc=False)
if r.returncode != 0:
    print(r.stdout[-4000:], r.stderr[-4000:])
    print("FAIL: the arm64 build stage does not build")
    sys.exit(1)
print(f"arm64 build stage built in {time.monotonic() - t:.1f}s")


def run(script, *mounts):
    """A shell script inside the build stage's image (readelf, the arm64
    libraries), the repository and qemu mounted read-only."""
    args = ["docker", "run", "--rm", "--network", "none", "-v", f"{REPO}:/repo:ro", "-v", f"{QEMU}:{QEMU}:ro"]
    for m in mounts:
        args += ["-v", m]
    return sh(*args, IMAGE, "sh", "-c", script, check_rc=False)


# what the root filesystem holds, and what each file is and needs
r = run('cd /rootfs && for f in $(find . -type f | sort); do '
        'printf "%s %s" "$f" "$(aarch64-linux-gnu-readelf -h "$f" | sed -n "s/ *Machine: *//p")"; '
        'aarch64-linux-gnu-readelf -d "$f" | sed -n "s/.*(NEEDED).*\\[\\(.*\\)\\]/ \\1/p" | tr -d "\\n"; echo; done')
check(r.returncode == 0, f"reading /rootfs: {r.stderr}")
files = {}
for line in r.stdout.splitlines():
    parts = line.split()
    if len(parts) >= 2:
        # "./usr/bin/agentctl AArch64 libfoo.so.1 ..."; Machine is one word here
        files[parts[0][1:]] = (parts[1], parts[2:])
print(f"/rootfs: {len(files)} files: {', '.join(sorted(os.path.basename(f) for f in files))}")
for prog in ("/usr/bin/corral-agent", "/usr/bin/agentctl"):
    check(prog in files, f"{prog} in the arm64 root filesystem")
shipped = {os.path.basename(f) for f in files}
for f, (machine, needed) in sorted(files.items()):
    check(machine == "AArch64", f"{f}: {machine}, not AArch64")
    for n in needed:
        check(n in shipped or n in BASE, f"{f} needs {n}: neither shipped nor in the distroless base")

# it runs: the shipped libraries first; of the build stage's own arm64
# libraries only those the base image provides are reachable
libdirs = sorted({os.path.dirname(f) for f in files if ".so" in f})
env = "LD_LIBRARY_PATH=" + ":".join("/rootfs" + d for d in libdirs)
script = (f"mkdir -p /tmp/base && for l in {' '.join(BASE)}; do "
          "for d in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu; do [ -e $d/$l ] && cp -L $d/$l /tmp/base/; done; done; "
          f"export QEMU_LD_PREFIX=/nonexistent; Q='{QEMU} -E {env}:/tmp/base /tmp/base/ld-linux-aarch64.so.1'; "
          "$Q /rootfs/usr/bin/agentctl --help 2>&1 | head -3; echo ==; "
          "$Q /rootfs/usr/bin/corral-agent --help 2>&1 | head -2; echo ==; "
          "$Q /rootfs/usr/bin/agentctl check /repo/deploy/examples/shop; echo rc=$?; echo ==; "
          "$Q /rootfs/usr/bin/agentctl dump --from /repo/deploy/examples/shop --node node-1")
r = run(script)
out = r.stdout.split("==\n")
check(len(out) == 4, f"running under qemu-aarch64: {r.stdout[-2000:]}{r.stderr[-2000:]}")
if len(out) == 4:
    check("usage: agentctl" in out[0], f"arm64 agentctl --help: {out[0]}")
    check("usage: corral-agent" in out[1], f"arm64 corral-agent --help: {out[1]}")
    check("rc=0" in out[2], f"arm64 agentctl check deploy/examples/shop: {out[2]}")
    native = sh(AGENTCTL, "dump", "--from", os.path.join(REPO, "deploy/examples/shop"), "--node", "node-1").stdout
    check(out[3] == native and "table inet corral" in native,
          f"arm64 agentctl dump differs from the amd64 build's ({len(out[3])} and {len(native)} bytes)")
    print("arm64 programs run under qemu-aarch64: --help, check, and dump equal to the amd64 build's "
          f"({len(native)} bytes of nft text)")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("arm64: all passed")
