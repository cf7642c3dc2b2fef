#!/bin/sh
# Agent benchmarks, one JSON line per figure (medians of RUNS):
#   - a policy created in the folder -> the verdict a probe sees changes;
#   - a pod created in the folder -> its address in the kernel (the probe
#     from that pod connects);
#   both with a 10,000-pod cluster (corral-bench --size medium) loaded
#   beside the namespace cluster's nine pods;
#   - agent resident memory with 10,000 and 150,000 pods loaded.
# usage: bench-agent.sh BUILD-DIR [RUNS] [SIZES]   (SIZES default "medium large")
set -eu
B=$(cd "$1" && pwd); RUNS=${2:-5}; SIZES=${3:-medium large}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=crbag
W=$(mktemp -d /tmp/corral-bench-agent-XXXXXX)
cleanup() {
	[ -f "$W/agent.pid" ] && kill "$(cat "$W/agent.pid")" 2>/dev/null || true
	[ -f "$W/srv.pid" ] && kill "$(cat "$W/srv.pid")" 2>/dev/null || true
	sh "$ROOT/tests/dataplane/cluster.sh" down $P
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
emit() { printf '{"bench": "agent", "size": "%s", "metric": "%s", "value": %s, "unit": "%s"}\n' "$1" "$2" "$3" "$4"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
tcp() { ip netns exec $P-$1 timeout 0.3 bash -c "exec 3<>/dev/tcp/$2/80" 2>/dev/null; }
until_state() { # FROM TO want(0 ok|1 fail) -> prints ms
	t0=$(now_ms)
	while :; do
		if tcp "$1" "$2"; then got=0; else got=1; fi
		[ $got = "$3" ] && break
		[ $(( $(now_ms) - t0 )) -lt 10000 ] || { echo "bench-agent: no change after 10 s" >&2; exit 1; }
	done
	echo $(( $(now_ms) - t0 ))
}
start_agent() {
	"$B/corral-agent" --source "files:$W/m" --node-name node-1 --netns /run/netns/$P-n1 \
		--socket "$W/a.sock" --log-level warn --metrics-address "" 2>>"$W/agent.log" &
	echo $! > "$W/agent.pid"
	i=0; until "$B/agentctl" --socket "$W/a.sock" status -o json 2>/dev/null | grep -q '"synced": true'; do
		i=$((i+1)); [ $i -lt 600 ] || { cat "$W/agent.log"; exit 1; }; sleep 0.1; done
}
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$(cat "$W/agent.pid")"/status; }
hwm_kb() { awk '/VmHWM/ {print $2}' /proc/"$(cat "$W/agent.pid")"/status; }

sh "$ROOT/tests/dataplane/cluster.sh" up $P
ip netns exec $P-x-a python3 -m http.server 80 --bind 0.0.0.0 >/dev/null 2>&1 &
echo $! > "$W/srv.pid"
for size in $SIZES; do
	mkdir -p "$W/m"; rm -f "$W/m"/*
	"$B/corral-bench" --size "$size" --write "$W/m/generated.json"
	# the nine namespace-cluster pods, without y/b (it is "created" below)
	python3 - "$ROOT/tests/dataplane/base.yaml" "$W/m/base.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
keep = [d for d in docs if not ("name: b\n" in d and "namespace: y" in d)]
open(sys.argv[2], "w").write("\n---\n".join(keep))
PY
	t0=$(now_ms); start_agent; t1=$(now_ms)
	emit "$size" "start_to_enforcing_ms" $((t1 - t0)) ms
	emit "$size" "agent_rss_mb" "$(awk -v k="$(rss_kb)" 'BEGIN {printf "%.1f", k / 1024}')" MB
	emit "$size" "agent_peak_rss_mb" "$(awk -v k="$(hwm_kb)" 'BEGIN {printf "%.1f", k / 1024}')" MB
	if [ "$size" = medium ]; then
		: > "$W/pol"; : > "$W/pod"
		for r in $(seq "$RUNS"); do
			cat > "$W/m/.p.tmp" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bench, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]}]
YAML
			until_state y-a 10.1.1.1 0 >/dev/null
			mv "$W/m/.p.tmp" "$W/m/policy.yaml"
			until_state y-a 10.1.1.1 1 >> "$W/pol"
			cat > "$W/m/.b.tmp" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: y, labels: {pod: b, role: client}}
spec: {nodeName: node-1}
status: {phase: Running, podIPs: [{ip: 10.1.2.2}]}
YAML
			mv "$W/m/.b.tmp" "$W/m/pod-y-b.yaml"
			until_state y-b 10.1.1.1 0 >> "$W/pod"
			rm -f "$W/m/pod-y-b.yaml" "$W/m/policy.yaml"
		done
		emit "$size" "policy_created_to_verdict_ms_median" "$(median < "$W/pol")" ms
		emit "$size" "pod_created_to_kernel_ms_median" "$(median < "$W/pod")" ms
	fi
	kill "$(cat "$W/agent.pid")"; wait "$(cat "$W/agent.pid")" 2>/dev/null || true; rm -f "$W/agent.pid"
done
