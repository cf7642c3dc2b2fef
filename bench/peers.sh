#!/bin/sh
# corral and its peers, side by side in one run on the same machine, the
# same real kube-apiserver (tests/controlplane) and the same namespace
# cluster (tests/dataplane/cluster.sh): one after the other on node-1's
# namespace, never two at once, everything a peer wrote removed between.
#
#   bench/peers.sh BUILD-DIR [RUNS] [SIZE]      (RUNS 5, SIZE small)
#
# The peers are built from their Go modules, pinned by the go.mod/go.sum
# beside this script (bench/peers/NAME); nothing of theirs is committed:
#   kube-router (github.com/cloudnativelabs/kube-router/v2), its network
#     policy controller only (--run-firewall, no router, no service proxy):
#     iptables (Debian's iptables-nft) and ipset in node-1's namespace.
#     v2.1.0 is the newest the Go proxy serves; it has published security
#     advisories, acceptable for a peer that runs here and is never shipped;
#   kube-network-policies (sigs.k8s.io/kube-network-policies): tried once;
#     it queues every new connection to user space with an nftables
#     `queue` statement, which needs the kernel's nft_queue
#     (CONFIG_NFT_QUEUE): where that is missing the error it logs is the
#     figure.
#
# The cluster: bench/gen at SIZE (small: 1,000 pods, 200 policies, 110 of
# the pods on node-1), the namespace cluster's pods but y/b, two policies
# of connrate's (x/c takes 8080 from x/a only; x/a sends only to x/c:8080)
# and Nodes node-1/node-2 whose InternalIP is the hostIP their pods carry
# (kube-router finds its node's pods by hostIP). Each of corral and
# kube-router is then measured, one JSON line per figure, bench
# "peer-NAME" (corral's as "peer-corral", from the same run):
#   start_to_enforcing_ms   process started -> the first probe (y/a to
#                           x/c:8080, every 2 ms) that the policy on x/c
#                           drops; the probe answered before the start;
#   policy_created_to_verdict_ms_median (and _all)
#                           a policy created at the API server (x/a takes
#                           only role=client) -> y/a's probe to x/a:80
#                           dropped; RUNS times, deleted between;
#   pod_created_to_admitted_ms_median (and _all)
#                           with that policy, pod y/b (role=client)
#                           created, then its status -> its probe answered;
#   rss_mb, vmhwm_mb, cpu_s resident memory once synced and the runs done,
#                           its peak, CPU seconds used so far;
#   load_avg_start/_end     the machine's load average (bench peer-corral);
#   conn_per_s, conntrack_only_conn_per_s, no_table_conn_per_s and
#   vs_conntrack_only_paired, vs_no_table_paired
#                           new TCP connections/s from x/a to x/c:8080
#                           (corral-bench-dp connloop: 10,000 a run) with
#                           the ruleset the peer left in node-1 (saved while
#                           it ran, then restored; the process stopped), a
#                           table that only turns conntrack on, and none:
#                           9 rounds (CORRAL_PEERS_CONN_RUNS), interleaved,
#                           each round starting with another case; medians,
#                           and the median of each round's ratio with its
#                           spread;
#   node1_rules (rules in node-1's ruleset, iptables-nft's
#                           included) and, for kube-router, node1_ipsets.
# A verdict is 3 probes in a row (probe-flip.py HOLD) against an accept loop
# with a deep backlog: a server starved of CPU by a starting peer must not
# pass for a drop. Of the generated policies 3 in 5 are NetworkPolicies and
# 2 in 5 AccessPolicies (corral's own kind): the peers enforce the former
# only (small: 122 NetworkPolicies with connrate's two; corral 202).
# CORRAL_PEERS: which to run (default "corral kube-router
# kube-network-policies"). Needs root, Go, and installs the Debian
# packages iptables, ipset and socat when missing (apt-get).
set -eu
B=$(cd "$1" && pwd); RUNS=${2:-5}; SIZE=${3:-small}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/tests/controlplane/run.sh
P=${CORRAL_NETNS_TAG:-}crpeer
PEERS=${CORRAL_PEERS:-corral kube-router kube-network-policies}
CONNS=${CORRAL_PEERS_CONNS:-10000}
CONN_RUNS=${CORRAL_PEERS_CONN_RUNS:-9}
W=$(mktemp -d /tmp/corral-bench-peers-XXXXXX)
CP=$W/cp; export CORRAL_CP_OWNER=$$
CACHE=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/corral-peers
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
N1="ip netns exec $P-n1"

stop_pid() { # stop_pid FILE: TERM, then KILL after 5 s
	[ -f "$1" ] || return 0
	pid=$(cat "$1"); rm -f "$1"
	kill "$pid" 2>/dev/null || return 0
	i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
	kill -9 "$pid" 2>/dev/null || true
}
node_clean() { # every rule and set a peer left in node-1's namespace
	[ -e /run/netns/$P-n1 ] || return 0
	$N1 nft flush ruleset 2>/dev/null || true
	ip netns del $P-q 2>/dev/null || true
	! command -v ipset >/dev/null 2>&1 || { $N1 ipset flush 2>/dev/null; $N1 ipset destroy 2>/dev/null; } || true
}
cleanup() {
	for f in "$W"/*.pid; do stop_pid "$f"; done
	node_clean
	sh "$ROOT/tests/dataplane/cluster.sh" down $P
	sh "$RUN" down "$CP" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
emit() { printf '{"bench": "peer-%s", "size": "%s", "metric": "%s", "value": %s, "unit": "%s"}\n' "$1" "$SIZE" "$2" "$3" "$4"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
has() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }

# the packages a peer calls, from Debian
missing=""
for c in iptables:iptables ipset:ipset socat:socat; do
	command -v "${c%%:*}" >/dev/null 2>&1 || missing="$missing ${c#*:}"
done
[ -z "$missing" ] || { apt-get install -y $missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y $missing >/dev/null; }; }

# build NAME PACKAGE: the peer's binary from the module pinned in
# bench/peers/NAME, cached per go.mod/go.sum and Go version
build() {
	d=$ROOT/bench/peers/$1
	key=$( (cat "$d/go.mod" "$d/go.sum"; go version) | sha256sum | cut -c1-16)
	bin=$CACHE/$1-$key
	if [ ! -x "$bin" ]; then
		mkdir -p "$CACHE"
		echo "peers: building $1 (once)" >&2
		(cd "$d" && go build -o "$bin.tmp" "$2") >&2 && mv "$bin.tmp" "$bin"
	fi
	echo "$bin"
}
has kube-router && KR=$(build kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
has kube-network-policies && KNP=$(build kube-network-policies sigs.k8s.io/kube-network-policies/cmd)

sh "$RUN" up "$CP" >/dev/null
URL=$(cat "$CP/url"); PORT=${URL##*:}
CURL="curl -s --cacert $CP/ca.crt --cert $CP/pki/admin.crt --key $CP/pki/admin.key"
K=$CP/kubectl
api() { $CURL -o /dev/null -X "$1" -H "Content-Type: ${4:-application/json}" ${3:+-d "$3"} "$URL$2"; }
$K apply -f "$ROOT/deploy/crd" -f "$ROOT/deploy/rbac.yaml" >/dev/null
$K wait --for=condition=Established --timeout=60s crd/accesspolicies.corral.dev >/dev/null
"$B/corral-bench" --size "$SIZE" --write "$W/generated.json"
emit corral api_load_s "$(sh "$RUN" load "$CP" "$W/generated.json" 32 2>>"$W/load.log")" s
rm -f "$W/generated.json"
# the namespace cluster's pods but y/b, connrate's two policies, the nodes
python3 - "$ROOT/tests/dataplane/base.yaml" "$W/base.json" <<'PY'
import json, sys, yaml
items = [d for d in yaml.safe_load_all(open(sys.argv[1]))
         if d and not (d["kind"] == "Pod" and d["metadata"]["name"] == "b" and d["metadata"]["namespace"] == "y")]
def np(name, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "x"}, "spec": spec}
items.append(np("server", {"podSelector": {"matchLabels": {"pod": "c"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"port": 8080}]}]}))
items.append(np("client", {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "c"}}}], "ports": [{"port": 8080}]}]}))
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[2], "w"))
PY
sh "$RUN" load "$CP" "$W/base.json" 8 >/dev/null 2>>"$W/load.log"
python3 - > "$W/nodes" <<'PY'
import hashlib
for n in ("node-1", "node-2"):  # the hostIP tests/controlplane/load.go gives their pods
    h = hashlib.sha256(n.encode()).digest()
    print(n, "172.20.%d.%d" % (h[0], h[1] | 1))
PY
while read -r n ip; do
	api POST /api/v1/nodes "{\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"$n\", \"labels\": {\"kubernetes.io/hostname\": \"$n\"}}}"
	api PATCH /api/v1/nodes/$n/status "{\"status\": {\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"$ip\"}, {\"type\": \"Hostname\", \"address\": \"$n\"}]}}" application/strategic-merge-patch+json
done < "$W/nodes"
emit corral api_pods "$($CURL "$URL/api/v1/pods?limit=1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["metadata"]; print(m.get("remainingItemCount", 0) + 1)')" pods
emit corral api_policies "$($CURL "$URL/apis/networking.k8s.io/v1/networkpolicies?limit=1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["metadata"]; print(m.get("remainingItemCount", 0) + 1)')" policies

sh "$ROOT/tests/dataplane/cluster.sh" up $P
emit corral load_avg_start "\"$(cut -d' ' -f1-3 /proc/loadavg)\"" ""
# the probes' servers: an accept loop with a deep backlog, so that a server
# starved of CPU (a peer's start takes both cores) still answers every SYN
# from the kernel and a probe only fails when a rule dropped it
serve() { # serve POD PORT PIDFILE
	ip netns exec $P-$1 python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4096)
while True: s.accept()[0].close()' "$2" >/dev/null 2>&1 &
	echo $! > "$3"
}
serve x-a 80 "$W/srv80.pid"

# credentials: corral as the DaemonSet's ServiceAccount; the peers as a
# ServiceAccount bound to cluster-admin (their own RBAC is not ours to write)
mkdir -p "$W/sa"
cp "$CP/ca.crt" "$W/sa/ca.crt"
$K -n corral-system create token corral-agent --duration=4h > "$W/sa/token"
$K -n kube-system create serviceaccount peer >/dev/null
$K create clusterrolebinding peer --clusterrole=cluster-admin --serviceaccount=kube-system:peer >/dev/null
$K -n kube-system create token peer --duration=4h > "$W/sa/peer-token"
kubeconfig() {
	printf 'apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: "%s", certificate-authority: "%s/sa/ca.crt"}}]\nusers: [{name: u, user: {tokenFile: "%s/sa/%s"}}]\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n' \
		"$URL" "$W" "$W" "$1"
}
kubeconfig token > "$W/kubeconfig"
kubeconfig peer-token > "$W/peer.kubeconfig"
# A peer runs inside node-1's namespace (it calls iptables and ipset there)
# and reaches the API server, on the machine's 127.0.0.1, through a relay:
# 127.0.0.1:PORT in node-1 -> a unix socket -> 127.0.0.1:PORT here. TLS
# passes through it untouched.
socat UNIX-LISTEN:"$W/api.sock",fork TCP:127.0.0.1:"$PORT" 2>/dev/null &
echo $! > "$W/relay-host.pid"
$N1 socat TCP-LISTEN:"$PORT",bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:"$W/api.sock" 2>/dev/null &
echo $! > "$W/relay-node.pid"
i=0; until $N1 curl -s --cacert "$CP/ca.crt" -o /dev/null "$URL/readyz"; do
	i=$((i+1)); [ $i -lt 100 ] || { echo "peers: the relay into node-1 does not answer" >&2; exit 1; }; sleep 0.05; done

tcp() { ip netns exec $P-$1 timeout 0.3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
# until_state POD HOST PORT 0|1: until a connection succeeds (0) or not (1)
until_state() {
	t0=$(now_ms)
	while :; do
		if tcp "$1" "$2" "$3"; then got=0; else got=1; fi
		[ $got = "$4" ] && break
		[ $(( $(now_ms) - t0 )) -lt 60000 ] || {
			echo "peers: $1 -> $2:$3 not $4 after 60 s; node-1 holds:" >&2
			$N1 nft list ruleset >&2; ip netns exec $P-x-c ss -tlnp >&2; exit 1; }
	done
}
# flip FROM-POD HOST PORT WANT LIMIT-S COMMAND: ms from COMMAND to the
# first of 3 probes in a row seeing WANT ("timeout" when they do not
# within LIMIT-S). It runs in
# $(...): what COMMAND leaves running must not hold its standard output.
flip() {
	rm -f "$W/go" "$W/flip.out"; mkfifo "$W/go"
	ip netns exec $P-$1 python3 "$ROOT/bench/probe-flip.py" "$2" "$3" "$4" "$5" 3 < "$W/go" > "$W/flip.out" &
	fp=$!
	exec 3>"$W/go"
	until grep -q ready "$W/flip.out" 2>/dev/null; do sleep 0.01; done
	echo go >&3
	$6
	wait $fp || true
	exec 3>&-
	tail -1 "$W/flip.out"
}
POLICY='{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bench", "namespace": "x"}, "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}]}}'
PODB='{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "y", "labels": {"pod": "b", "role": "client"}}, "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "registry.example.com/app:1"}]}}'
HOST1=$(awk '$1 == "node-1" {print $2}' "$W/nodes")
PODB_STATUS="{\"status\": {\"phase\": \"Running\", \"hostIP\": \"$HOST1\", \"podIP\": \"10.1.2.2\", \"podIPs\": [{\"ip\": \"10.1.2.2\"}]}}"
GONE='{"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}'
create_policy() { api POST /apis/networking.k8s.io/v1/namespaces/x/networkpolicies "$POLICY"; }
create_pod() {
	api POST /api/v1/namespaces/y/pods "$PODB"
	api PATCH /api/v1/namespaces/y/pods/b/status "$PODB_STATUS" application/strategic-merge-patch+json
}

start_corral() {
	"$B/corral-agent" --source kube --kubeconfig "$W/kubeconfig" --node-name node-1 --netns /run/netns/$P-n1 \
		--socket "$W/a.sock" --log-level info --metrics-address "" >>"$W/corral.log" 2>&1 &
	echo $! > "$W/peer.pid"
}
start_kube_router() {
	$N1 "$KR" --kubeconfig "$W/peer.kubeconfig" --hostname-override node-1 \
		--run-firewall=true --run-router=false --run-service-proxy=false \
		--enable-ipv4=true --enable-ipv6=false --health-port=0 --metrics-port=0 >>"$W/kube-router.log" 2>&1 &
	echo $! > "$W/peer.pid"
}
# save_rules NAME / load_rules NAME: the ruleset a peer left in node-1
save_rules() {
	case $1 in
	corral) $N1 nft list ruleset > "$W/rules.nft" ;;
	kube-router) $N1 iptables-save > "$W/rules.ipt" ;; # its ipsets stay in the namespace
	esac
}
load_rules() {
	case $1 in
	corral) $N1 nft -f "$W/rules.nft" ;;
	kube-router) $N1 iptables-restore < "$W/rules.ipt" ;;
	esac
}
printf 'table inet base {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t}\n}\n' > "$W/ct-only.nft"

measure() { # measure NAME START-FUNCTION
	name=$1
	node_clean
	serve x-c 8080 "$W/srv8080.pid"
	until_state y-a 10.1.1.3 8080 0
	until_state y-a 10.1.1.1 80 0
	echo "peers: $name" >&2
	v=$(flip y-a 10.1.1.3 8080 closed 120 "$2")
	stop_pid "$W/srv8080.pid"
	pid=$(cat "$W/peer.pid")
	if [ "$v" = timeout ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "peers: $name enforces nothing after 120 s; its log ends:" >&2
		tail -20 "$W/$name.log" >&2
		stop_pid "$W/peer.pid"
		emit "$name" start_to_enforcing_ms '"did not enforce"' ms
		node_clean
		return 0
	fi
	emit "$name" start_to_enforcing_ms "$v" ms
	: > "$W/pol"; : > "$W/pod"
	for r in $(seq "$RUNS"); do
		until_state y-a 10.1.1.1 80 0
		flip y-a 10.1.1.1 80 closed 30 create_policy >> "$W/pol"
		flip y-b 10.1.1.1 80 open 30 create_pod >> "$W/pod"
		api DELETE /api/v1/namespaces/y/pods/b "$GONE"
		api DELETE /apis/networking.k8s.io/v1/namespaces/x/networkpolicies/bench
		while [ "$($CURL -o /dev/null -w '%{http_code}' "$URL/api/v1/namespaces/y/pods/b")" != 404 ]; do sleep 0.05; done
		sleep 2 # the deletions reach the peer before the next round
	done
	emit "$name" policy_created_to_verdict_ms_median "$(grep -v timeout "$W/pol" | median)" ms
	emit "$name" pod_created_to_admitted_ms_median "$(grep -v timeout "$W/pod" | median)" ms
	emit "$name" policy_created_to_verdict_ms_all "\"$(tr '\n' ' ' < "$W/pol")\"" ms
	emit "$name" pod_created_to_admitted_ms_all "\"$(tr '\n' ' ' < "$W/pod")\"" ms
	emit "$name" rss_mb "$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$pid/status)" MB
	emit "$name" vmhwm_mb "$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' /proc/$pid/status)" MB
	emit "$name" cpu_s "$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$pid/stat)" s
	# rules in node-1 (tables, chains and sets open a block; rules do not)
	emit "$name" node1_rules "$($N1 nft -a list ruleset 2>/dev/null | grep -E '# handle [0-9]+$' | grep -c -v '{ # handle' || true)" rules
	[ "$name" != kube-router ] || emit "$name" node1_ipsets "$($N1 ipset list -n | wc -l)" sets
	# the ruleset it leaves: corral's transactions are atomic, so saved while
	# it runs; kube-router's full sync (iptables-restore, then stale ipsets
	# destroyed) may still be going, so saved once it has stopped (it leaves
	# its rules and sets in place)
	[ "$name" = kube-router ] || save_rules "$name"
	stop_pid "$W/peer.pid"
	[ "$name" != kube-router ] || save_rules "$name"
	[ "$name" != kube-router ] || emit "$name" saved_rules "$(grep -c '^-A' "$W/rules.ipt")" rules
	# connection rate: the saved ruleset, conntrack only, none; interleaved
	: > "$W/rate.peer"; : > "$W/rate.ct"; : > "$W/rate.none"; : > "$W/ratio.ct"; : > "$W/ratio.none"
	for r in $(seq "$CONN_RUNS"); do
		cases="peer ct none"
		k=0; while [ $k -lt $(( (r - 1) % 3 )) ]; do cases="${cases#* } ${cases%% *}"; k=$((k+1)); done
		for c in $cases; do
			$N1 nft flush ruleset
			case $c in
			peer) load_rules "$name" ;;
			ct) $N1 nft -f "$W/ct-only.nft" ;;
			esac
			"$B/corral-bench-dp" connloop $P --conns "$CONNS" > "$W/rate.$c.last"
			cat "$W/rate.$c.last" >> "$W/rate.$c"
		done
		awk -v a="$(cat "$W/rate.peer.last")" -v b="$(cat "$W/rate.ct.last")" 'BEGIN {printf "%.4f\n", a / b}' >> "$W/ratio.ct"
		awk -v a="$(cat "$W/rate.peer.last")" -v b="$(cat "$W/rate.none.last")" 'BEGIN {printf "%.4f\n", a / b}' >> "$W/ratio.none"
	done
	emit "$name" conn_per_s "$(median < "$W/rate.peer")" conn/s
	emit "$name" conntrack_only_conn_per_s "$(median < "$W/rate.ct")" conn/s
	emit "$name" no_table_conn_per_s "$(median < "$W/rate.none")" conn/s
	for x in ct none; do
		m=$([ $x = ct ] && echo vs_conntrack_only_paired || echo vs_no_table_paired)
		emit "$name" $m "$(median < "$W/ratio.$x")" ratio
		emit "$name" ${m}_min "$(sort -n "$W/ratio.$x" | head -1)" ratio
		emit "$name" ${m}_max "$(sort -n "$W/ratio.$x" | tail -1)" ratio
	done
	node_clean
}

has corral && measure corral start_corral
has kube-router && measure kube-router start_kube_router
if has kube-network-policies; then
	# its only way to the API server is the in-cluster one: the token, CA and
	# address a pod sees, given in a mount namespace of its own
	node_clean
	$N1 unshare -m --propagation private sh -c '
		mount -t tmpfs tmpfs /run && d=/run/secrets/kubernetes.io/serviceaccount && mkdir -p $d &&
		cp "$1/sa/peer-token" $d/token && cp "$1/sa/ca.crt" $d/ca.crt && echo kube-system > $d/namespace &&
		KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$2 exec "$3" --hostname-override node-1 \
			--disable-nri --metrics-bind-address 127.0.0.1:9080 -v 2' sh "$W" "$PORT" "$KNP" \
		> "$W/knp.log" 2>&1 &
	echo $! > "$W/knp.pid"
	sleep 15
	$N1 nft list ruleset > "$W/knp.nft" 2>&1 || true
	alive=$(kill -0 "$(cat "$W/knp.pid")" 2>/dev/null && echo yes || echo no)
	stop_pid "$W/knp.pid"
	grep -i -E 'error|nftables' "$W/knp.log" | grep -v "'flag'" | head -5 >&2 || true
	# its error (klog: "error=<", then a line each)
	err=$(awk '/syncing nftables rules" error=</ {on = 1; next} on {print; exit}' "$W/knp.log" |
		tr -s ' \t' '  ' | tr '"\\' "''" | cut -c1-300)
	if grep -q 'queue' "$W/knp.nft"; then
		emit kube-network-policies runs '"yes"' ""
	else
		emit kube-network-policies runs "\"no: alive=$alive, no queue rule in node-1; its first error: ${err:-none}\"" ""
	fi
	# the kernel's answer to the statement it needs, alone
	ip netns add $P-q
	q=$(ip netns exec $P-q nft -f - 2>&1 <<-EOF | grep -m1 Error | tr '"\\' "''" || true
	table inet q {
		chain c {
			type filter hook forward priority 0;
			queue num 100
		}
	}
	EOF
	)
	ip netns del $P-q
	emit kube-network-policies nft_queue_statement "\"${q:-accepted}\"" ""
	node_clean
fi
emit corral load_avg_end "\"$(cut -d' ' -f1-3 /proc/loadavg)\"" ""
