#!/bin/sh
# Records what a real kube-apiserver (tests/controlplane, version in its
# go.mod) answers in each situation the kube client meets, into OUTDIR
# (default tests/kube/real-shapes). Takes about two minutes; starts and
# stops its own control planes.
#   record-shapes.sh [OUTDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../kube/real-shapes}
"$here/run.sh" build >/dev/null
exec python3 "$here/record_shapes.py" "$here/run.sh" "$out"
