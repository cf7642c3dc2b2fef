#!/bin/sh
# The upstream Kubernetes e2e binary (go test -c k8s.io/kubernetes/test/e2e,
# the release of go.mod, unmodified) against the node of cluster.sh, with
# a focus (default: the NetworkPolicy suite of test/e2e/network/netpol).
# Prints every test that was selected with passed/failed/skipped and its
# time, then "N passed, N failed, N skipped"; exits non-zero if one failed.
#
#   e2e.sh DIR [FOCUS [SKIP]]
#
# Skipped always (cannot run here, see README "Conformance"): the SCTP
# tests, [Feature:SCTPConnectivity] (this
# kernel has no SCTP sockets: agnhost's SCTP servers cannot listen).
# While it runs, the suite's pods are sampled every 3 s (DIR/e2e/placement:
# namespace, pod, node) and the closing lines say how many ran on each node.
# Environment: CORRAL_E2E_PROCS=N runs N test processes at once through
# the ginkgo CLI (built from the same module; default 1: the binary alone).
# The JUnit report and the full log stay in DIR/e2e/.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2; }
dir=$(cd "$1" && pwd)
FOCUS=${2:-'\[sig-network\] (Netpol|NetworkPolicy)|\[Feature:NetworkPolicy\]'}
SKIP_ALWAYS='\[Feature:SCTPConnectivity\]'
SKIP=${3:+$3|}$SKIP_ALWAYS
[ -x "$dir/kubectl" ] || { echo "e2e.sh: no cluster up in $dir" >&2; exit 1; }
out=$("$HERE/build.sh" e2e)
NS=${CORRAL_NETNS_TAG:-}corral-node1
rep=$dir/e2e
rm -rf "$rep"; mkdir -p "$rep"
# kubectl for the framework's diagnostics: the node's, as cluster admin
printf '#!/bin/sh\nexec "%s" kubectl "$@"\n' "$(cat "$dir/cp/bin")" >"$rep/kubectl"
chmod +x "$rep/kubectl"
set -- --kubeconfig="$dir/kubeconfig" --provider=local --kubectl-path="$rep/kubectl" \
    --report-dir="$rep" --ginkgo.junit-report="$rep/junit.xml" \
    --ginkgo.focus="$FOCUS" --ginkgo.skip="$SKIP" --ginkgo.no-color --ginkgo.timeout=6h \
    --allowed-not-ready-nodes=0 --minStartupPods=0
# where the suite's pods run (the scheduler picks the node), sampled
sample() {
    while :; do
        "$dir/kubectl" get pods -A --no-headers \
            -o custom-columns=NS:.metadata.namespace,POD:.metadata.name,NODE:.spec.nodeName 2>/dev/null |
            awk '$1 != "corral-system" && $3 != "<none>" { print $1, $2, $3 }' >>"$rep/placement.all"
        sleep 3
    done
}
sample &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
start=$(date +%s)
procs=${CORRAL_E2E_PROCS:-1}
if [ "$procs" -gt 1 ]; then
    gk=$("$HERE/build.sh" ginkgo)/ginkgo
    ( cd "$rep" && nsenter --net="/run/netns/$NS" "$gk" --procs="$procs" --no-color --timeout=6h \
        --junit-report="$rep/junit.xml" --focus="$FOCUS" --skip="$SKIP" "$out/e2e.test" -- \
        --kubeconfig="$dir/kubeconfig" --provider=local --kubectl-path="$rep/kubectl" --report-dir="$rep" \
        --allowed-not-ready-nodes=0 --minStartupPods=0 ) >"$rep/e2e.log" 2>&1 && rc=0 || rc=$?
else
    ( cd "$rep" && nsenter --net="/run/netns/$NS" "$out/e2e.test" "$@" ) >"$rep/e2e.log" 2>&1 && rc=0 || rc=$?
fi
secs=$(( $(date +%s) - start ))
kill "$sampler" 2>/dev/null || true
sort -u "$rep/placement.all" >"$rep/placement" 2>/dev/null || true
rm -f "$rep/placement.all"
awk '{ n[$3]++ } END { s = ""; for (k in n) s = s sprintf("%s%s %d", s == "" ? "" : ", ", k, n[k]); if (s != "") print "pods of the suite by node: " s }' "$rep/placement"
[ -s "$rep/junit.xml" ] || { tail -n 50 "$rep/e2e.log" >&2; echo "e2e.sh: no report (exit $rc)" >&2; exit 1; }
python3 "$HERE/junit.py" "$rep/junit.xml" "$secs" "$FOCUS" "$SKIP_ALWAYS" \
    "this kernel has no SCTP sockets (CONFIG_IP_SCTP unset): agnhost's SCTP servers cannot listen"
