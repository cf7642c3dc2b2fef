#!/bin/sh
# The upstream NetworkPolicy e2e suite against corral on real nodes (two;
# CORRAL_CLUSTER_NODES=1: one), in one command: cluster.sh up, cluster.sh
# deploy (corral from deploy/),
# e2e.sh, cluster.sh down (also on failure or interruption).
#
#   conformance.sh           every NetworkPolicy test (README "Conformance")
#   conformance.sh --ci      the subset scripts/test.sh runs (CI's time)
#   conformance.sh --focus REGEX [--skip REGEX]
#
# Prints each test with passed/FAILED/skipped, "N passed, N failed, N
# skipped" and the time of every step; exits non-zero if a test failed.
# CORRAL_E2E_PROCS: see e2e.sh. The cluster's folder is a temporary one
# (CORRAL_CLUSTER_DIR to choose it; kept after the run with
# CORRAL_CLUSTER_KEEP=1, for its logs: then cluster.sh down it yourself).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# The CI subset: one test of each kind of rule the suite checks (default
# deny, pod and namespace selectors with expressions, ports and named
# ports, egress, ipBlock with except, UDP, the SCTP-is-not-TCP check)
CI_FOCUS='should support a .default-deny-ingress. policy|should enforce policy based on PodSelector and NamespaceSelector|should enforce policy based on NamespaceSelector with MatchExpressions|should allow ingress access on one named port|should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector|should enforce except clause while egress access to server in CIDR block|should not mistakenly treat .protocol: SCTP. as .protocol: TCP.|should support a .default-deny-ingress. policy \[Feature:NetworkPolicy\]|using UDP should support a .default-deny-ingress. policy'
focus="" skip=""
while [ $# -gt 0 ]; do
    case $1 in
    --ci) focus=$CI_FOCUS ;;
    --focus) focus=$2; shift ;;
    --skip) skip=$2; shift ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed '$d' >&2; exit 2 ;;
    esac
    shift
done
dir=${CORRAL_CLUSTER_DIR:-$(mktemp -d /tmp/corral-conformance-XXXXXX)}
exec "$HERE/cluster.sh" with "$dir" "$HERE/e2e.sh" "$focus" "$skip"
