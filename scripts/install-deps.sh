#!/bin/sh
# Installs every Debian package that building, testing and demoing corral
# needs. Idempotent: packages already present are left alone.
set -eu

# prometheus: its promtool checks and unit-tests the alerts
# (tests/deploy/test-monitoring.py); qemu-user-static runs the arm64 build
# of the agent (tests/deploy/test-arm64.py); iptables (iptables-nft) writes
# kube-proxy's iptables-mode rules in tests/dataplane/test-proxy.c; conntrack
# deletes a revoked flow's entry in agent.e2e (an entry that expired); valgrind
# counts instructions (bench/callgrind.sh) and heaptrack profiles the heap
# (README, "Sizing")
PKGS="build-essential cmake pkg-config clang llvm libclang-rt-14-dev valgrind heaptrack \
      libnftnl-dev libmnl-dev libnl-3-dev libnl-route-3-dev \
      libjansson-dev libcurl4-openssl-dev libyaml-dev libcmocka-dev \
      libmicrohttpd-dev libldns-dev nftables iptables iproute2 iputils-ping conntrack python3 python3-yaml curl \
      libcap2-bin util-linux openssl debootstrap graphviz groff-base prometheus qemu-user-static \
      containerd runc containernetworking-plugins"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done

if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "install-deps: all packages present"

# Go builds the real control plane the tests run against (tests/controlplane:
# kube-apiserver needs Go >= 1.26, newer than Debian 12 packages); the
# machine provides it in /usr/local/go.
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
    echo "install-deps: no Go toolchain (go >= 1.26 on PATH or in /usr/local/go/bin); tests/controlplane needs it" >&2
    exit 1
fi
echo "install-deps: $(go version)"

# Docker builds and runs the agent's image (tests/deploy/test-image.py);
# the machine runs the engine (no registry: the bases are made locally).
if ! docker info >/dev/null 2>&1; then
    echo "install-deps: no Docker engine answers (docker info); tests/deploy/test-image.py needs it" >&2
    exit 1
fi
echo "install-deps: Docker $(docker version -f '{{.Server.Version}}')"
