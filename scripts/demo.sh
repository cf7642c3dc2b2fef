#!/bin/sh
# The main job: corral-agent enforcing the example shop (deploy/examples/shop)
# on a two-node cluster made of network namespaces, one agent per node.
# Shows a call that works, a call that is dropped, the drop as the kernel
# reported it, `agentctl explain` naming the missing rule, then the fix and
# the call working. Everything it creates is removed on exit.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# CORRAL_BUILD=DIR: use binaries already built there (the test suite does)
if [ -z "${CORRAL_BUILD:-}" ]; then
	./scripts/install-deps.sh >/dev/null
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target corral-agent agentctl >/dev/null
fi
BUILD=$(cd "${CORRAL_BUILD:-build}" && pwd)

P=${CORRAL_NETNS_TAG:-}corral-demo
WORK=$(mktemp -d /tmp/corral-demo-XXXXXX)
AGENTCTL="$BUILD/agentctl"
cleanup() {
	for pid in $(cat "$WORK"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
	sleep 0.2
	for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$ns"; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# run CMD: shows and runs it; exit status 1 is an answer (explain: DENIED,
# diff --fail-on: a change matched), said and not fatal; 2 or more is
run() {
	printf '\n$ %s\n' "$*"
	rc=0
	"$@" || rc=$?
	[ $rc -le 1 ] || exit $rc
	[ $rc -eq 0 ] || echo "(exit status 1)"
}

# ---- the cluster: two nodes routing for their pods, joined by a wire ----
say "Building a two-node cluster in network namespaces"
for n in 1 2; do
	ip netns add $P-n$n
	ip netns exec $P-n$n sh -c 'sysctl -qw net.ipv4.ip_forward=1; ip link set lo up'
done
ip -n $P-n1 link add wire type veth peer name wire netns $P-n2
ip -n $P-n1 addr add 10.255.0.1/30 dev wire
ip -n $P-n2 addr add 10.255.0.2/30 dev wire
ip -n $P-n1 link set wire up
ip -n $P-n2 link set wire up
ip -n $P-n1 route add 10.200.2.0/24 via 10.255.0.2
ip -n $P-n2 route add 10.200.1.0/24 via 10.255.0.1
# pod name, address, node, port it serves (as in deploy/examples/shop)
PODS="checkout 10.200.1.10 1 8080
frontend 10.200.1.11 1 8080
payments 10.200.2.10 2 8080
ledger 10.200.2.11 2 5432"
echo "$PODS" | while read -r pod ip node port; do
	ip netns add $P-$pod
	ip -n $P-n$node link add v-$pod type veth peer name eth0 netns $P-$pod
	ip -n $P-$pod addr add $ip/32 dev eth0
	ip -n $P-$pod link set lo up
	ip -n $P-$pod link set eth0 up
	ip -n $P-$pod route add 169.254.1.1 dev eth0
	ip -n $P-$pod route add default via 169.254.1.1 dev eth0
	ip -n $P-n$node addr add 169.254.1.1/32 dev v-$pod
	ip -n $P-n$node link set v-$pod up
	ip -n $P-n$node route add $ip/32 dev v-$pod
	# a small web server standing in for the application
	ip netns exec $P-$pod python3 -m http.server "$port" --bind 0.0.0.0 >/dev/null 2>&1 &
	echo $! > "$WORK/srv-$pod.pid"
	echo "  pod $pod: $ip on node-$node, serving TCP $port"
done
# wait until every server listens
echo "$PODS" | while read -r pod ip node port; do
	i=0
	until ip netns exec $P-$pod ss -Hltn "sport = :$port" | grep -q LISTEN; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "the server of $pod did not start" >&2; exit 1; }; sleep 0.05
	done
done

# ---- the agents: one per node, same manifests folder ----
mkdir -p "$WORK/manifests"
cp deploy/examples/shop/*.yaml "$WORK/manifests/"
for n in 1 2; do
	"$BUILD/corral-agent" --source "files:$WORK/manifests" --node-name node-$n \
		--netns /run/netns/$P-n$n --socket "$WORK/node-$n.sock" --log-level warn \
		2>"$WORK/agent-$n.log" &
	echo $! > "$WORK/agent-$n.pid"
done
for n in 1 2; do
	i=0
	until "$AGENTCTL" --socket "$WORK/node-$n.sock" status >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 50 ] || { cat "$WORK/agent-$n.log"; exit 1; }; sleep 0.1
	done
done
say "Agents running, one per node"
run "$AGENTCTL" --socket "$WORK/node-1.sock" status

call() { # call FROM-POD TO-IP PORT
	rc=0
	ip netns exec $P-$1 curl -s -m 2 -o /dev/null "http://$2:$3/" || rc=$?
	case $rc in
	0) echo "  $1 -> $2:$3  connected" ;;
	28) echo "  $1 -> $2:$3  DROPPED (no answer within 2 s)" ;;
	*) echo "  $1 -> $2:$3  failed (curl exit $rc: refused or unreachable, not a policy drop)" ;;
	esac
}

say "frontend calls checkout (allowed by checkout's AccessPolicy)"
call frontend 10.200.1.10 8080
say "payments calls ledger (payments declares it, ledger accepts it)"
call payments 10.200.2.11 5432
say "checkout calls payments: payments accepts it, but checkout never declared it"
call checkout 10.200.2.10 8080

say "What the kernel dropped, as node-1's agent saw it"
sleep 0.2
run "$AGENTCTL" --socket "$WORK/node-1.sock" drops
say "Why, and what to change"
run "$AGENTCTL" --socket "$WORK/node-1.sock" explain team-shop/checkout team-pay/payments --port 8080

say "The fix: checkout declares its call to payments"
mkdir "$WORK/fix"
cp "$WORK"/manifests/*.yaml "$WORK/fix/"
cat > "$WORK/fix/checkout.yaml" <<'EOF'
apiVersion: corral.dev/v1
kind: AccessPolicy
metadata: {name: checkout, namespace: team-shop}
spec:
  application: checkout
  inbound:
    rules:
      - application: frontend
        ports: [{port: 8080}]
  outbound:
    rules:
      - application: payments
        namespace: team-pay
        ports: [{port: 8080}]
EOF
sed -n '1,20p' "$WORK/fix/checkout.yaml" | sed 's/^/  /'
say "Reviewing it: what the change opens and closes (--fail-on added: exit 1 when it opens a flow)"
run "$AGENTCTL" diff --from "$WORK/manifests" --to "$WORK/fix" --fail-on added
say "Applying it"
cp "$WORK/fix/checkout.yaml" "$WORK/manifests/checkout.yaml.tmp"
mv "$WORK/manifests/checkout.yaml.tmp" "$WORK/manifests/checkout.yaml"
# the agents see the file change (inotify) and update the kernel in a few ms
i=0
until ip netns exec $P-checkout curl -s -m 0.5 -o /dev/null http://10.200.2.10:8080/ || [ $i -ge 10 ]; do
	i=$((i + 1))
done
call checkout 10.200.2.10 8080
run "$AGENTCTL" --socket "$WORK/node-1.sock" explain team-shop/checkout team-pay/payments --port 8080
say "The rule in the kernel (node-1), as nft sees it"
ip netns exec $P-n1 nft list chain inet corral "$(ip netns exec $P-n1 nft list table inet corral |
	awk '/jump eg_g/ {sub(/.*jump /, ""); sub(/[ ,}].*/, ""); print; exit}')" | sed 's/^/  /'
say "The shop as a picture: who may call whom, on each pod's declared ports"
SVG=${CORRAL_DEMO_SVG:-$ROOT/doc/shop.svg}
if command -v dot >/dev/null 2>&1; then
	mkdir -p "$(dirname "$SVG")"
	"$AGENTCTL" matrix --from "$WORK/manifests" -o svg > "$SVG"
	echo "  written to $SVG (agentctl matrix --from DIR -o svg)"
else
	echo "  (no Graphviz dot: apt-get install graphviz; agentctl matrix -o dot prints its input)"
fi
say "Done; removing the namespaces"
