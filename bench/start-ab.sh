#!/bin/sh
# The agent's start, build against build: each BUILD's agent is started in
# turn (A B, A B, ...) against the same test API server (tests/kube)
# holding a generated cluster, and stopped once it reports itself synced
# (its first ruleset is in the kernel). Per run: CPU seconds from start to
# synced (the agent's own, the server's excluded), resident and peak
# memory, the load average of the moment. Interleaving cancels most of a
# shared machine's load; compare the pairs.
#   WRAP="valgrind --tool=callgrind --callgrind-out-file=F" runs the agent
#   under a profiler; DUMP=1 then dumps callgrind's counters at synced
#   (callgrind_control -d), so F.1 holds the start alone.
# usage: start-ab.sh SIZE RUNS BUILD-DIR...
set -eu
SIZE=$1; RUNS=$2; shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${CORRAL_NETNS_TAG:-}crst
W=$(mktemp -d /tmp/corral-start-ab-XXXXXX)
cleanup() {
	for f in agent api; do [ -f "$W/$f.pid" ] && kill "$(cat "$W/$f.pid")" 2>/dev/null || true; done
	sh "$ROOT/tests/dataplane/cluster.sh" down $P
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
sh "$ROOT/tests/dataplane/cluster.sh" up $P
python3 "$ROOT/tests/kube/fake-apiserver.py" > "$W/api.out" 2>/dev/null &
echo $! > "$W/api.pid"
until grep -q listening "$W/api.out" 2>/dev/null; do sleep 0.05; done
PORT=$(awk '{print $2}' "$W/api.out")
"$1/corral-bench" --size "$SIZE" --write "$W/generated.json"
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/_ctl/load" -d "{\"path\": \"$W/generated.json\"}"
printf 'apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:%s"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n' "$PORT" > "$W/kubeconfig"
for r in $(seq "$RUNS"); do
	for B in "$@"; do
		${WRAP:-} "$B/corral-agent" --source kube --kubeconfig "$W/kubeconfig" --node-name node-1 \
			--netns /run/netns/$P-n1 --socket "$W/a.sock" --log-level warn --metrics-address "" 2>>"$W/agent.log" &
		echo $! > "$W/agent.pid"
		pid=$(cat "$W/agent.pid")
		i=0; until "$B/agentctl" --socket "$W/a.sock" status -o json 2>/dev/null | grep -q '"synced": true'; do
			i=$((i+1)); [ $i -lt 20000 ] || { cat "$W/agent.log"; exit 1; }; sleep 0.05; done
		[ -n "${DUMP:-}" ] && callgrind_control -d "$pid" >/dev/null 2>&1
		cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$pid/stat)
		rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$pid/status)
		hwm=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' /proc/$pid/status)
		printf '{"bench": "start-ab", "size": "%s", "run": %s, "build": "%s", "cpu_to_sync_s": %s, "rss_mb": %s, "vmhwm_mb": %s, "load": %s}\n' \
			"$SIZE" "$r" "$B" "$cpu" "$rss" "$hwm" "$(cut -d' ' -f1 /proc/loadavg)"
		kill -INT $pid; wait $pid || true; rm -f "$W/agent.pid" "$W/a.sock"
	done
done
