#!/bin/sh
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, builds (the C code, and a real Kubernetes control plane from its
# Go modules, cached), runs the tests (plain and under ASan+UBSan), fuzzes
# the manifest decoder briefly and runs the small benchmark.
#   FUZZ_SECONDS=N   how long to fuzz (default 30; 0 skips)
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)

./scripts/install-deps.sh

echo "== build the real control plane (kube-apiserver, etcd, kube-controller-manager, kubectl from Go modules)"
# About 10.5 minutes on a fresh machine (2 cores), then cached: a second run
# only checks that the cached binary matches tests/controlplane.
cp_start=$(date +%s)
tests/controlplane/run.sh build >/dev/null
echo "control plane ready in $(( $(date +%s) - cp_start ))s"

echo "== build Helm from its Go module (the chart's tests)"
# About 5 minutes on a fresh machine (2 cores, module downloads included),
# then cached like the control plane.
helm_start=$(date +%s)
tests/helm/helm.sh build >/dev/null
echo "helm ready in $(( $(date +%s) - helm_start ))s"

echo "== build a real node's components and the upstream e2e binary (tests/cluster: kubelet, kube-proxy, kube-scheduler, agnhost, e2e.test)"
# The same k8s.io/kubernetes release as the control plane, whose packages
# the Go build cache then already holds; cached like it afterwards.
node_start=$(date +%s)
tests/cluster/build.sh node agnhost e2e ginkgo >/dev/null
echo "node binaries ready in $(( $(date +%s) - node_start ))s"

echo "== build and test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"
(cd build && ctest --output-on-failure -j "$JOBS")

echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCORRAL_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
# (not the controlplane tests again: they exercise the real API server,
# and of our C code only agentctl check, which the plain run covers)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$JOBS" -LE 'controlplane|helm|docker')

echo "== the upstream NetworkPolicy e2e suite, all of it, on two real nodes with corral deployed from deploy/"
# (tests/cluster/conformance.sh --ci runs a subset of it: README "Conformance")
conf_start=$(date +%s)
CORRAL_E2E_PROCS=${CORRAL_E2E_PROCS:-6} tests/cluster/conformance.sh
echo "conformance suite in $(( $(date +%s) - conf_start ))s"

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# run_fuzz TARGET SEEDS...: regressions first (inputs that once crashed it),
# then FUZZ_SECONDS of new inputs; a crash fails the suite
run_fuzz() {
    target=$1; shift
    corpus=$(mktemp -d)
    for f in "$@"; do
        cp "$f" "$corpus/$(echo "$f" | tr / _)"
    done
    if [ -d "tests/fuzz/regressions/$target" ]; then
        ./build-fuzz/tests/$target tests/fuzz/regressions/$target/* >/dev/null 2>&1 \
            || { echo "fuzz: a regression input of $target fails again"; exit 1; }
    fi
    if ! ./build-fuzz/tests/$target -max_total_time="$FUZZ_SECONDS" -max_len=8192 \
        -artifact_prefix=build-fuzz/$target- -print_final_stats=1 "$corpus" >build-fuzz/$target.log 2>&1; then
        tail -n 40 build-fuzz/$target.log
        echo "fuzz: $target crashed; the input is in build-fuzz/$target-crash-*"
        exit 1
    fi
    tail -n 6 build-fuzz/$target.log
    rm -rf "$corpus"
}
if [ "$FUZZ_SECONDS" -gt 0 ]; then
    echo "== fuzz every parser of untrusted bytes (manifests, watch stream, NFLOG, configuration, kubeconfig, DNS messages, LIST pages, pods scanned against jansson), ${FUZZ_SECONDS}s each"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCORRAL_FUZZ=ON >/dev/null
    cmake --build build-fuzz -j "$JOBS" --target fuzz-manifest fuzz-watch fuzz-nflog fuzz-config fuzz-kubeconfig fuzz-dns fuzz-list fuzz-podscan
    run_fuzz fuzz-manifest tests/cases/*.yaml deploy/examples/*/*.yaml tests/golden/entities.yaml
    run_fuzz fuzz-watch tests/fuzz/watch-corpus/*
    run_fuzz fuzz-nflog tests/fuzz/nflog-corpus/*
    run_fuzz fuzz-config tests/fuzz/config-corpus/*
    run_fuzz fuzz-kubeconfig tests/fuzz/kubeconfig-corpus/*
    run_fuzz fuzz-dns tests/fuzz/dns-corpus/*
    run_fuzz fuzz-list tests/fuzz/list-corpus/*
    run_fuzz fuzz-podscan tests/fuzz/podscan-corpus/*
fi

echo "== benchmark (small cluster)"
./build/corral-bench --size small --render 1
sh bench/callgrind.sh build small 200
echo "== data-plane benchmarks (small: keeps them working; see README for full figures)"
./build/corral-bench-dp apply --elements 10000 --runs 1
./build/corral-bench-dp connrate tests/dataplane/cluster.sh tests/dataplane/base.yaml --policies 200 --conns 1000 --runs 1
echo "== DNS-aware egress: resolve then connect at once, fresh addresses (small; 1,000 in the README)"
./build/corral-bench-dns tests/dataplane/cluster.sh build/corral-agent --iterations 100
echo "== API client and agent benchmarks (small)"
./build/corral-bench-kube --pods 10000
sh bench/bench-agent-kube.sh build 1 small
