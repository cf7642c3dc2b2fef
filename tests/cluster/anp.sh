#!/bin/sh
# The AdminNetworkPolicy / ClusterNetworkPolicy conformance suite of
# sigs.k8s.io/network-policy-api (the version pinned in anp/go.mod), its
# tests built from the module unmodified (go test -c, cached), against
# corral on the cluster of cluster.sh. corral does not implement these
# APIs: the suite is run to record where corral stands, not as a gate
# (README "Conformance"); not part of scripts/test.sh.
#
#   anp.sh            cluster.sh up, deploy, the suite, down (also on failure)
#   anp.sh DIR        the suite only, against the cluster up in DIR
#
# It installs the API's CRDs (the module's config/crd/experimental: every
# feature's fields), builds the agnhost image the suite's manifests name
# (read from its base/manifests.yaml; the suite's containers start it
# through /bin/bash, so on the local Debian stand-in, which has a shell) and
# imports it into every node, takes the SCTP servers out of the suite's
# StatefulSets (this kernel has no SCTP: anp/strip-sctp.py), then runs
# TestConformance with every feature
# (--all-features), keeping the suite's own timeouts. Prints each test with
# passed/FAILED/skipped and its time (a failure with its first message), then
# "N passed, N failed, N skipped". Exits 0 whatever the tests did, 1 if the
# suite could not run. Output and the suite's full log: DIR/anp/.
# Environment: CORRAL_NETNS_TAG, CORRAL_CLUSTER_NODES (cluster.sh),
# CORRAL_CLUSTER_CACHE (where the test binary is kept, as build.sh),
# CORRAL_CLUSTER_KEEP=1 (keep the cluster made here, for its logs).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
CACHE=${CORRAL_CLUSTER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/corral-cluster}

case ${1:-} in
-*) sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2 ;;
"")
    dir=$(mktemp -d /tmp/corral-anp-XXXXXX)
    exec "$HERE/cluster.sh" with "$dir" "$0"
    exit 0 ;;
esac
dir=$(cd "$1" && pwd)
[ -x "$dir/kubectl" ] || { echo "anp.sh: no cluster up in $dir" >&2; exit 1; }
kubectl() { "$dir/kubectl" "$@"; }

# the suite's test binary, once per content of anp/ and Go version
mkdir -p "$CACHE"
key=$( (cd "$HERE/anp" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)
bin=$CACHE/anp-$key.test
if [ ! -x "$bin" ]; then
    flock "$CACHE/build.lock" sh -c '
        set -e
        [ -x "$1" ] && exit 0
        echo "anp.sh: building the conformance tests of sigs.k8s.io/network-policy-api" >&2
        start=$(date +%s)
        cd "$2" && go test -c -vet=off -buildvcs=false -o "$1.tmp" sigs.k8s.io/network-policy-api/conformance
        mv "$1.tmp" "$1"
        find "$(dirname "$1")" -maxdepth 1 -name "anp-*.test" ! -name "$(basename "$1")" -mtime +7 -delete
        echo "anp.sh: built in $(( $(date +%s) - start ))s" >&2
    ' sh "$bin" "$HERE/anp" || { echo "anp.sh: building the suite failed" >&2; exit 1; }
fi
mod=$(cd "$HERE/anp" && go list -m -f '{{.Dir}}' sigs.k8s.io/network-policy-api)
[ -n "$mod" ] && [ -d "$mod/conformance" ] || { echo "anp.sh: module sigs.k8s.io/network-policy-api not found" >&2; exit 1; }

# the image the suite's manifests name, imported into every node
img=$(awk '$1 == "image:" { print $2; exit }' "$mod/conformance/base/manifests.yaml")
case $img in registry.k8s.io/e2e-test-images/agnhost:*) ;; *) echo "anp.sh: unexpected image '$img'" >&2; exit 1 ;; esac
out=$("$HERE/build.sh" agnhost)
if ! docker image inspect "$img" >/dev/null 2>&1 || [ "$(docker image inspect -f '{{index .Config.Labels "corral.agnhost"}}' "$img")" != "$(sha256sum <"$out/agnhost" | cut -c1-16)" ]; then
    # shellcheck disable=SC2046
    set -- $(sh "$REPO/tests/deploy/base-images.sh")
    tmp=$(mktemp -d /tmp/corral-anp-image-XXXXXX)
    cp "$out/agnhost" "$tmp/agnhost"
    printf 'FROM %s\nLABEL corral.agnhost=%s\nCOPY agnhost /agnhost\nENTRYPOINT ["/agnhost"]\nCMD ["pause"]\n' \
        "$1" "$(sha256sum <"$out/agnhost" | cut -c1-16)" >"$tmp/Dockerfile"
    docker build -q -t "$img" "$tmp" >/dev/null
    rm -rf "$tmp"
fi
rep=$dir/anp
rm -rf "$rep"; mkdir -p "$rep"
docker save -o "$rep/image.tar" "$img"
n=$(cat "$dir/nodes" 2>/dev/null || echo 1)
for i in $(seq 1 "$n"); do
    if [ "$i" = 1 ]; then sock=$dir/containerd/containerd.sock; else sock=$dir/node-$i/containerd/containerd.sock; fi
    ctr --address "$sock" --namespace k8s.io images import "$rep/image.tar" >/dev/null
done
rm -f "$rep/image.tar"

# the API's CRDs
kubectl apply -f "$mod/config/crd/experimental/policy.networking.k8s.io_clusternetworkpolicies.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd clusternetworkpolicies.policy.networking.k8s.io >/dev/null

ns=${CORRAL_NETNS_TAG:-}corral-node1
# no SCTP in this kernel: the suite's SCTP servers are taken out of its
# StatefulSets as they are made (anp/strip-sctp.py says why)
python3 "$HERE/anp/strip-sctp.py" "$dir/kubectl" 300 >"$rep/strip-sctp.log" 2>&1 &
strip=$!
start=$(date +%s)
( cd "$rep" && KUBECONFIG=$dir/kubeconfig nsenter --net="/run/netns/$ns" go tool test2json -t -p anp \
    "$bin" -test.v=test2json -test.run '^TestConformance$' -test.timeout=3h -all-features ) >"$rep/anp.json" 2>"$rep/anp.stderr" && rc=0 || rc=$?
secs=$(( $(date +%s) - start ))
kill "$strip" 2>/dev/null || true
cat "$rep/strip-sctp.log"
python3 "$HERE/anp/summary.py" "$rep/anp.json" "$secs" "$rep/anp.log" || {
    tail -n 30 "$rep/anp.stderr" >&2
    echo "anp.sh: the suite did not run (exit $rc; log in $rep)" >&2
    exit 1
}
