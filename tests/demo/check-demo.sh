#!/bin/sh
# README's first command must keep doing what the README says: run the demo
# against the binaries just built and check each step's outcome.
#   check-demo.sh REPO BUILD-DIR
set -eu
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces): skipped"; exit 77; }
svg=$(mktemp --suffix=.svg)
trap 'rm -f "$svg"' EXIT
out=$(CORRAL_BUILD="$2" CORRAL_DEMO_SVG="$svg" sh "$1/scripts/demo.sh" 2>&1) || { echo "$out"; echo "FAIL: the demo failed"; exit 1; }
fail=0
expect() { echo "$out" | grep -q -- "$1" || { echo "FAIL: expected \"$1\""; fail=1; }; }
expect "frontend -> 10.200.1.10:8080  connected"
expect "payments -> 10.200.2.11:5432  connected"
expect "checkout -> 10.200.2.10:8080  DROPPED"
expect "egress team-shop/checkout-0 -> team-pay/payments-0 TCP/8080 dropped at egress (isolated by AccessPolicy team-shop/checkout)"
expect "to allow it, add to AccessPolicy team-shop/checkout (application checkout, read from the label app of team-shop/checkout-0), under spec.outbound:"
expect "kernel: chain eg_g"
expect "ALLOWED by AccessPolicy team-shop/checkout spec.outbound.rules\[0\]"
expect "(exit status 1)"
expect "+ team-shop/checkout-0 -> team-pay/payments-0  TCP 8080 .* denied -> allowed"
expect "1 change: 1 opening a flow, 0 closing one"
if command -v dot >/dev/null 2>&1; then
	expect "written to $svg"
	text=$(python3 -c 'import sys, xml.etree.ElementTree as E; print(" ".join(E.parse(sys.argv[1]).getroot().itertext()))' "$svg")
	for w in checkout-0 payments-0 ledger-0 frontend-0 "TCP 8080" "TCP 5432"; do
		echo "$text" | grep -q "$w" || { echo "FAIL: the picture lacks $w"; fail=1; }
	done
fi
[ "$(echo "$out" | grep -c 'checkout -> 10.200.2.10:8080  connected')" = 1 ] || { echo "FAIL: the fix did not connect"; fail=1; }
if ip netns list | grep -q "^${CORRAL_NETNS_TAG:-}corral-demo-"; then echo "FAIL: namespaces left behind"; fail=1; fi
[ $fail = 0 ] || echo "$out"
exit $fail
