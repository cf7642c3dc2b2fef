#!/bin/sh
# The agent on a node of a bridged CNI (the namespace cluster's bridged
# shape): it learns the pods' ports and addresses through rtnetlink and
# keeps table bridge corral (each pod's port bound to its addresses) beside
# inet corral; a new pod's port is bound as soon as its address exists,
# before any API or file says the pod exists; a pod that goes takes its
# port's bindings with it; agentctl status and dump show it; --cleanup
# removes both tables.
#   test-bridge-agent.sh CORRAL-AGENT AGENTCTL CLUSTER-SCRIPT BASE-YAML
agent=$1 agentctl=$2 script=$3 base=$4
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces, nftables)"; exit 77; }
P="${CORRAL_NETNS_TAG:-}brag"
tmp=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del "$P-new" 2>/dev/null
	sh "$script" down "$P"
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
now_ms() { date +%s%3N; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (a deadline, however slow COMMAND is)
wait_for() {
	end=$(( $(now_ms) + $1 * 1000 )); shift
	while [ "$(now_ms)" -lt "$end" ]; do "$@" && return 0; sleep 0.01; done
	"$@"
}
btable() { ip netns exec "$P-n1" nft list table bridge corral 2>/dev/null; }
bound() { btable | grep -q "\"$1\" . $2"; }
unbound_port() { ! btable | grep -q "\"$1\""; }

CORRAL_CLUSTER_SHAPE=bridged sh "$script" up "$P" || { echo "FAIL: cluster"; exit 1; }
mkdir "$tmp/objs"
cp "$base" "$tmp/objs/base.yaml"
mport=$((20000 + $$ % 20000))
"$agent" --netns "/run/netns/$P-n1" --source "files:$tmp/objs" --node-name node-1 --socket "$tmp/agent.sock" \
	--metrics-address "127.0.0.1:$mport" >"$tmp/agent.log" 2>&1 &
pid=$!

if wait_for 20 bound vx-a 10.1.1.1 && bound vz-c fd00::3:3 && bound vy-b 10.1.2.2; then
	ok "table bridge corral binds each pod's port to its addresses"
else
	bad "no bindings: $(btable) $(cat "$tmp/agent.log")"
fi
btable | grep -q '"vx-a" . fe80::' && ok "link-local addresses bound too (neighbour discovery)" ||
	bad "no link-local binding: $(btable)"
st=$("$agentctl" status --socket "$tmp/agent.sock")
echo "$st" | grep -q "pod interfaces: 1 routed, 5 bridged; 5 bridge ports bound to 15 addresses" &&
	ok "status: $(echo "$st" | grep 'pod interfaces')" || bad "status: $st"
"$agentctl" dump --socket "$tmp/agent.sock" | grep -q '^table bridge corral' && ok "dump shows the bridge table" ||
	bad "dump: no bridge table"

# x/a isolated for ingress: its port leaves the open set (y/b's, with no
# policy, stays), and a neighbour's multicast to it is dropped and shown
cat > "$tmp/objs/deny.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
EOF
open_set() { btable | sed -n '/set open/,/}/p'; }
isolated() { open_set | grep -q '"vy-b"' && ! open_set | grep -q '"vx-a"'; }
wait_for 10 isolated && ok "x/a isolated for ingress: its port is not open, y/b's is" || bad "open set: $(open_set)"
ip netns exec "$P-x-c" python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): s.sendto(b"hello", ("224.0.0.1", 9))'
mdrop() { "$agentctl" drops --socket "$tmp/agent.sock" 2>/dev/null | grep -q "not addressed to it"; }
wait_for 5 mdrop && ok "multicast to isolated x/a dropped: $("$agentctl" drops --socket "$tmp/agent.sock" | grep -m1 'not addressed')" ||
	bad "no misaddressed drop: $("$agentctl" drops --socket "$tmp/agent.sock") $(btable | grep -A3 'chain misaddressed')"
# exact counts from the bridge table's counters, beside inet corral's
mcount() { ip netns exec "$P-n1" curl -s "http://127.0.0.1:$mport/metrics" | awk -v k="$1" 'index($0, k " ") == 1 {print $2}'; }
mis='corral_dropped_packets_total{direction="ingress",reason="misaddressed",namespace="",policy=""}'
has_mis() { v=$(mcount "$mis"); [ -n "$v" ] && [ "$v" -ge 3 ]; }
wait_for 5 has_mis && ok "metrics: $mis $(mcount "$mis")" ||
	bad "metrics: no misaddressed count: $(ip netns exec "$P-n1" curl -s "http://127.0.0.1:$mport/metrics" | grep dropped_packets)"
rm "$tmp/objs/deny.yaml"

# a new pod, as the bridge plugin makes it: the port first, then its address
t0=$(now_ms)
ip netns add "$P-new"
ip -n "$P-n1" link add vnew type veth peer name eth0 netns "$P-new"
ip -n "$P-n1" link set vnew master br0 up
ip -n "$P-new" link set eth0 up
ip -n "$P-new" addr add 10.1.9.9/32 dev eth0
t1=$(now_ms)
if wait_for 5 bound vnew 10.1.9.9; then
	t2=$(now_ms)
	ok "a new pod's port is bound $((t2 - t1)) ms after its address was added ($((t2 - t0)) ms after the commands started; no object names it)"
else
	bad "the new pod's port is not bound: $(btable)"
fi
ip netns del "$P-new"
wait_for 5 unbound_port vnew && ok "the pod gone, its port's bindings go" || bad "vnew still bound: $(btable)"

# with NET_ADMIN alone (no CAP_NET_BROADCAST: the pods' namespaces are
# polled, not heard): a new pod is bound all the same
kill -TERM "$pid"; wait "$pid"; pid=""
ip netns exec "$P-n1" setpriv --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
	--bounding-set=-all,+net_admin "$agent" --source "files:$tmp/objs" --node-name node-1 --socket "$tmp/agent.sock" \
	--metrics-address "" >"$tmp/agent2.log" 2>&1 &
pid=$!
sock_up() { "$agentctl" status --socket "$tmp/agent.sock" 2>/dev/null | grep -q 'synced, enforcing'; }
wait_for 20 sock_up || bad "the agent with NET_ADMIN alone did not start: $(cat "$tmp/agent2.log")"
ip netns add "$P-new"
ip -n "$P-n1" link add vnew type veth peer name eth0 netns "$P-new"
ip -n "$P-n1" link set vnew master br0 up
ip -n "$P-new" link set eth0 up
sleep 0.3 # the port known before its address, as with the bridge plugin
ip -n "$P-new" addr add 10.1.9.8/32 dev eth0
t1=$(now_ms)
if wait_for 5 bound vnew 10.1.9.8; then
	ok "NET_ADMIN alone: a new pod's port is bound $(( $(now_ms) - t1 )) ms after its address was added (polled)"
else
	bad "NET_ADMIN alone: the new pod's port is not bound: $(btable) $(cat "$tmp/agent2.log")"
fi
"$agentctl" status --socket "$tmp/agent.sock" | grep -q "no CAP_NET_BROADCAST" && ok "status says it polls" ||
	bad "status: $("$agentctl" status --socket "$tmp/agent.sock")"
ip netns del "$P-new"

kill -TERM "$pid"; wait "$pid"; pid=""
btable >/dev/null && ok "the bridge table stays when the agent stops (fail-static)" || bad "the bridge table went"
"$agent" --cleanup once --netns "/run/netns/$P-n1" >"$tmp/once.log" 2>&1 || bad "--cleanup once failed: $(cat "$tmp/once.log")"
btable >/dev/null && bad "--cleanup left table bridge corral" || ok "--cleanup removes table bridge corral"
exit $fail
