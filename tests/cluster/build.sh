#!/bin/sh
# Builds (cached) the Go programs of a real node and its e2e suite from the
# k8s.io/kubernetes release in go.mod, and prints the folder that holds them:
#   corral-node   kubelet, kube-proxy and kube-scheduler (main.go)
#   agnhost       the e2e test image program (with cgo, as the others: the
#                 Go build cache then serves the packages they share)
#   e2e.test      the upstream e2e binary (go test -c k8s.io/kubernetes/test/e2e)
#   ginkgo        the ginkgo CLI, same version (parallel e2e runs; not by default)
# The folder is keyed by this folder's content and the Go version; a lock
# keeps parallel runs from building twice.
#   CORRAL_CLUSTER_CACHE  where (default ~/.cache/corral-cluster)
#   build.sh [node|agnhost|e2e|ginkgo]...   only these (default: all three)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CORRAL_CLUSTER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/corral-cluster}
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null 2>&1 || { echo "build.sh: no Go toolchain (go) on PATH" >&2; exit 1; }
mkdir -p "$CACHE"
key=$( (cd "$HERE" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)
out="$CACHE/$key"
mkdir -p "$out"
k8s=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$HERE/go.mod")
minor=$(echo "$k8s" | cut -d. -f2)
v=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    v="$v -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
[ $# -gt 0 ] || set -- node agnhost e2e
for what in "$@"; do
    case $what in
    node) f=corral-node ;;
    agnhost) f=agnhost ;;
    e2e) f=e2e.test ;;
    ginkgo) f=ginkgo ;;
    *) echo "build.sh: unknown $what" >&2; exit 2 ;;
    esac
    [ -x "$out/$f" ] && continue
    flock "$CACHE/build.lock" sh -c '
        set -e
        [ -x "$1/$2" ] && exit 0
        cd "$3"
        start=$(date +%s)
        echo "build.sh: building $2 ($5); a first build takes minutes" >&2
        case $2 in
        corral-node) go build -buildvcs=false -o "$1/$2.tmp" -ldflags "-s -w $4" . ;;
        agnhost) go build -buildvcs=false -o "$1/$2.tmp" -ldflags "-s -w" k8s.io/kubernetes/test/images/agnhost ;;
        ginkgo) go build -buildvcs=false -o "$1/$2.tmp" -ldflags "-s -w" github.com/onsi/ginkgo/v2/ginkgo ;;
        e2e.test) go test -c -vet=off -buildvcs=false -o "$1/$2.tmp" -ldflags "-s -w $4" k8s.io/kubernetes/test/e2e ;;
        esac
        mv "$1/$2.tmp" "$1/$2"
        echo "build.sh: $2 built in $(( $(date +%s) - start ))s" >&2
    ' sh "$out" "$f" "$HERE" "$v" "$k8s" || { echo "build.sh: building $f failed" >&2; exit 1; }
done
# other versions of this folder, once a week old
find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
echo "$out"
