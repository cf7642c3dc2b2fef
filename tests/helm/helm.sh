#!/bin/sh
# Helm, built from its Go module (helm.sh/helm/v3, pinned in go.mod and
# go.sum beside this file), for the chart's tests (tests/deploy/test-helm.py).
#
#   helm.sh build          build (cached) and print the binary's path
#   helm.sh ARGS...        run helm with ARGS (built first if needed)
#
# The binary is kept per content of go.mod, go.sum and the Go version in
# CORRAL_HELM_CACHE (default ~/.cache/corral-helm); Go's own caches stay at
# their defaults. A lock keeps parallel tests from building twice.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CORRAL_HELM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/corral-helm}
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
die() { echo "helm.sh: $*" >&2; exit 1; }

build() {
	command -v go >/dev/null 2>&1 || die "no Go toolchain (go) on PATH"
	mkdir -p "$CACHE"
	key=$( (cd "$HERE" && cat go.mod go.sum && go version) | sha256sum | cut -c1-16)
	bin="$CACHE/helm-$key"
	if [ ! -x "$bin" ]; then
		version=$(awk '$1 == "helm.sh/helm/v3" { print $2 }' "$HERE/go.mod")
		[ -n "$version" ] || die "helm.sh/helm/v3 is not required in $HERE/go.mod"
		flock "$CACHE/build.lock" sh -c '
			[ -x "$1" ] && exit 0
			echo "helm.sh: building helm $2 from its Go module (a first build takes minutes)" >&2
			start=$(date +%s)
			cd "$3" && go build -buildvcs=false -trimpath -o "$1.tmp" \
				-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$2" helm.sh/helm/v3/cmd/helm &&
				mv "$1.tmp" "$1"
			# binaries of other versions, once a week old
			find "$(dirname "$1")" -maxdepth 1 -name "helm-*" ! -name "$(basename "$1")" -mtime +7 -delete
			echo "helm.sh: built in $(( $(date +%s) - start ))s: $1" >&2
		' sh "$bin" "$version" "$HERE" >&2 || die "build failed"
	fi
	echo "$bin"
}

case "${1:-}" in
build) build ;;
*) bin=$(build) && exec "$bin" "$@" ;;
esac
