#!/bin/sh
# The agent fed by the Kubernetes API (the fake API server of tests/kube)
# holding a generated cluster beside the namespace cluster's nine pods:
#   - a policy created at the API server -> the verdict a probe sees;
#   - a pod created at the API server -> its address in the kernel (a probe
#     from that pod connects);
#   - agent resident memory once synced;
#   - the agent's own latency of those changes and of 200 pod events sent
#     one at a time (agentctl status: event in -> transaction acknowledged,
#     p50/p99/max, whole and with the debounce's hold excluded), and again
#     after the churn;
#   - agentctl explain asking the running agent (a live explain), wall time;
#   - sustained pod churn, CORRAL_BENCH_CHURN_RATE events/s (default 2000)
#     for CORRAL_BENCH_CHURN_SECONDS (10): whether the agent keeps up, and
#     the queue depths (bench/churn.py).
# Each verdict change is timed by bench/flip.py from the API request to the
# first probe that sees it (a probe sent every millisecond from the pod's
# namespace, each on its own socket), and broken down by stage with the
# test server's trace (CORRAL_FAKE_TRACE) and the agent's debug "latency"
# lines (bench/stages.py: server stored, written, agent woke, read,
# decoded, engine done, rendered, sent, acked, probe).
# One JSON line per figure, medians of RUNS.
# usage: bench-agent-kube.sh BUILD-DIR [RUNS] [SIZE]   (SIZE: medium = 10,000 pods)
set -eu
B=$(cd "$1" && pwd); RUNS=${2:-5}; SIZE=${3:-medium}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${CORRAL_NETNS_TAG:-}crbak
W=$(mktemp -d /tmp/corral-bench-agent-kube-XXXXXX)
cleanup() {
	for f in agent srv api; do [ -f "$W/$f.pid" ] && kill "$(cat "$W/$f.pid")" 2>/dev/null || true; done
	sh "$ROOT/tests/dataplane/cluster.sh" down $P
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
emit() { printf '{"bench": "agent-kube", "size": "%s", "metric": "%s", "value": %s, "unit": "%s"}\n' "$SIZE" "$1" "$2" "$3"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
tcp() { ip netns exec $P-$1 timeout 0.3 bash -c "exec 3<>/dev/tcp/$2/80" 2>/dev/null; }
until_state() {
	t0=$(now_ms)
	while :; do
		if tcp "$1" "$2"; then got=0; else got=1; fi
		[ $got = "$3" ] && break
		[ $(( $(now_ms) - t0 )) -lt 10000 ] || { echo "bench-agent-kube: no change after 10 s" >&2; exit 1; }
	done
	echo $(( $(now_ms) - t0 ))
}
api() { curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/_ctl/$1" -d "$2"; }

sh "$ROOT/tests/dataplane/cluster.sh" up $P
# the probes' server: an accept loop with a deep backlog, so that a server
# short of CPU still answers every SYN and a probe fails only when dropped
ip netns exec $P-x-a python3 -c 'import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(4096)
while True: s.accept()[0].close()' >/dev/null 2>&1 &
echo $! > "$W/srv.pid"
CORRAL_FAKE_TRACE=$W/fake.trace python3 "$ROOT/tests/kube/fake-apiserver.py" > "$W/api.out" &
echo $! > "$W/api.pid"
until grep -q listening "$W/api.out" 2>/dev/null; do sleep 0.05; done
PORT=$(awk '{print $2}' "$W/api.out")
"$B/corral-bench" --size "$SIZE" --write "$W/generated.json"
api load "{\"path\": \"$W/generated.json\"}"
# the nine namespace-cluster pods and their namespaces, without y/b
python3 - "$ROOT/tests/dataplane/base.yaml" "$PORT" <<'PY'
import json, sys, urllib.request, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or (d["kind"] == "Pod" and d["metadata"]["name"] == "b" and d["metadata"]["namespace"] == "y"):
        continue
    res = {"Pod": "pods", "Namespace": "namespaces"}[d["kind"]]
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/_ctl/apply" % sys.argv[2],
        data=json.dumps({"resource": res, "object": d}).encode()))
PY
printf 'apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:%s"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n' "$PORT" > "$W/kubeconfig"
t0=$(now_ms)
"$B/corral-agent" --source kube --kubeconfig "$W/kubeconfig" --node-name node-1 --netns /run/netns/$P-n1 \
	--socket "$W/a.sock" --log-level debug --metrics-address "" 2>>"$W/agent.log" &
echo $! > "$W/agent.pid"
i=0; until "$B/agentctl" --socket "$W/a.sock" status -o json 2>/dev/null | grep -q '"synced": true'; do
	i=$((i+1)); [ $i -lt 600 ] || { cat "$W/agent.log"; exit 1; }; sleep 0.05; done
emit start_to_enforcing_ms $(( $(now_ms) - t0 )) ms
emit agent_rss_mb "$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/"$(cat "$W/agent.pid")"/status)" MB
emit agent_vmhwm_mb "$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' /proc/"$(cat "$W/agent.pid")"/status)" MB
emit agent_cpu_to_sync_s "$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/"$(cat "$W/agent.pid")"/stat)" s
POLICY='{"resource": "networkpolicies", "object": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bench", "namespace": "x"}, "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}]}}}'
PODB='{"resource": "pods", "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "y", "labels": {"pod": "b", "role": "client"}}, "spec": {"nodeName": "node-1"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.1.2.2"}]}}}'
: > "$W/pol"; : > "$W/pod"
# flip FROM-POD WANT BODY: the API call and the probe (bench/flip.py), one JSON line
flip() {
	python3 "$ROOT/bench/flip.py" $P-$1 10.1.1.1:80 "$2" "http://127.0.0.1:$PORT" -- POST /_ctl/apply "$3"
}
ms() { python3 -c 'import json, sys; [print(json.loads(l)["ms"]) for l in sys.stdin]'; }
for r in $(seq "$RUNS"); do
	until_state y-a 10.1.1.1 0 >/dev/null
	flip y-a closed "$POLICY" >> "$W/pol"
	flip y-b open "$PODB" >> "$W/pod"
	api delete '{"resource": "pods", "namespace": "y", "name": "b"}'
	api delete '{"resource": "networkpolicies", "namespace": "x", "name": "bench"}'
done
emit policy_created_to_verdict_ms_median "$(ms < "$W/pol" | median)" ms
emit pod_created_to_kernel_ms_median "$(ms < "$W/pod" | median)" ms
emit policy_created_to_verdict_ms_all "\"$(ms < "$W/pol" | tr '\n' ' ')\"" ms
emit pod_created_to_kernel_ms_all "\"$(ms < "$W/pod" | tr '\n' ' ')\"" ms
python3 "$ROOT/bench/stages.py" agent-kube "$SIZE" policy "$W/pol" "$W/agent.log" "$W/fake.trace" x/bench
python3 "$ROOT/bench/stages.py" agent-kube "$SIZE" pod "$W/pod" "$W/agent.log" "$W/fake.trace" y/b
# a live explain: agentctl (a new process, as a user runs it) asking the agent
: > "$W/ex"
for r in $(seq 11); do
	t=$(now_ms)
	"$B/agentctl" --socket "$W/a.sock" explain y/a x/a --port 80 > "$W/ex.out"
	echo $(( $(now_ms) - t )) >> "$W/ex"
done
grep -q "ALLOWED\|DENIED" "$W/ex.out" || { cat "$W/ex.out"; exit 1; }
emit explain_live_ms_median "$(median < "$W/ex")" ms
# the agent's own histogram: event in -> transaction acknowledged, whole
# and with the debounce's hold excluded (issue 16's figure); NAME: the
# metrics' prefix
hist() {
	"$B/agentctl" --socket "$W/a.sock" status -o json | python3 -c '
import json, sys
c = json.load(sys.stdin)["changes"]
size, name = sys.argv[1], sys.argv[2]
def emit(metric, value, unit):
    print(json.dumps({"bench": "agent-kube", "size": size, "metric": metric, "value": value, "unit": unit}))
for k in ("pod", "policy"):
    emit("%s_%s_changes" % (name, k), c[k]["count"], "changes")
    for q in ("p50_ms", "p99_ms", "max_ms"):
        if q in c[k]:
            emit("%s_%s_change_%s" % (name, k, q), round(c[k][q], 3), "ms")
            emit("%s_%s_change_work_%s" % (name, k, q), round(c[k]["debounce_excluded"][q], 3), "ms")
emit("%s_changes_most_in_one_transaction" % name, c["most_in_one_transaction"], "changes")
' "$SIZE" "$1"
}
# pod events one at a time: copies of the cluster's pods created and
# deleted, 20 a second for 10 s (each after a quiet debounceMs), then the
# histogram of everything so far (these, and the verdict changes above)
python3 "$ROOT/bench/churn.py" "$PORT" "$W/a.sock" 20 10 "$SIZE" quiet 50 ||
	echo "bench-agent-kube: the agent fell behind 20 pod events a second" >&2
hist agent
python3 "$ROOT/bench/churn.py" "$PORT" "$W/a.sock" "${CORRAL_BENCH_CHURN_RATE:-2000}" \
	"${CORRAL_BENCH_CHURN_SECONDS:-10}" "$SIZE" || echo "bench-agent-kube: the agent fell behind the churn" >&2
# again, the churn's events included
hist agent_after_churn
