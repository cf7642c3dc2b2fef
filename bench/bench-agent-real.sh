#!/bin/sh
# The agent fed by a real kube-apiserver (tests/controlplane: kube-apiserver
# and etcd built from their Go modules) holding a generated cluster beside
# the namespace cluster's nine pods, authenticated as the corral-agent
# ServiceAccount (TokenRequest token). The same figures as
# bench-agent-kube.sh (the fake API server), and more:
#   - loading the cluster through the API (namespaces, pods with the status
#     a kubelet writes, policies), once, timed apart;
#   - agent start -> first full sync in the kernel; of it, start -> every
#     initial list in (the agent's log); agent peak memory (VmHWM) and CPU;
#   - LIST bytes the API server sent (its apiserver_response_sizes_sum, as
#     JSON) and bytes the agent read (/proc/PID/io: TLS, gzip as served);
#   - a policy created at the API server -> the verdict a probe sees, and
#     a pod created there (then its status, as its kubelet would) -> its
#     address admitted by the kernel: medians of RUNS.
# One JSON line per figure.
# usage: bench-agent-real.sh BUILD-DIR [RUNS] [SIZE]   (SIZE: large = 150,000 pods)
# CORRAL_BENCH_CP=DIR keeps the loaded control plane in DIR after the run
# (stop it with `tests/controlplane/run.sh down DIR`) and reuses it when DIR
# already holds one loaded at the same SIZE: loading the large size takes
# about 25 minutes, so two agents can be measured on one load.
set -eu
B=$(cd "$1" && pwd); RUNS=${2:-5}; SIZE=${3:-large}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/tests/controlplane/run.sh
P=${CORRAL_NETNS_TAG:-}crbar
W=$(mktemp -d /tmp/corral-bench-agent-real-XXXXXX)
KEEP=${CORRAL_BENCH_CP:-}
if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP"; KEEP=$(cd "$KEEP" && pwd); CP=$KEEP/cp
else
	CP=$W/cp; export CORRAL_CP_OWNER=$$
fi
cleanup() {
	for f in agent srv; do [ -f "$W/$f.pid" ] && kill "$(cat "$W/$f.pid")" 2>/dev/null || true; done
	sh "$ROOT/tests/dataplane/cluster.sh" down $P
	[ -n "$KEEP" ] || sh "$RUN" down "$CP" >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
emit() { printf '{"bench": "agent-real", "size": "%s", "metric": "%s", "value": %s, "unit": "%s"}\n' "$SIZE" "$1" "$2" "$3"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
tcp() { ip netns exec $P-$1 timeout 0.3 bash -c "exec 3<>/dev/tcp/$2/80" 2>/dev/null; }
until_state() {
	t0=$(now_ms)
	while :; do
		if tcp "$1" "$2"; then got=0; else got=1; fi
		[ $got = "$3" ] && break
		[ $(( $(now_ms) - t0 )) -lt 20000 ] || { echo "bench-agent-real: no change after 20 s" >&2; exit 1; }
	done
}

if [ -n "$KEEP" ] && [ "$(cat "$KEEP/loaded" 2>/dev/null)" = "$SIZE" ] && [ -f "$CP/url" ] &&
	curl -s --cacert "$CP/ca.crt" --cert "$CP/pki/admin.crt" --key "$CP/pki/admin.key" "$(cat "$CP/url")/readyz" | grep -q ok; then
	REUSED=1
else
	REUSED=0; rm -f "${KEEP:-$W}/loaded"
	[ -z "$KEEP" ] || sh "$RUN" down "$CP" >/dev/null 2>&1 || true
	sh "$RUN" up "$CP" >/dev/null
fi
URL=$(cat "$CP/url")
CURL="curl -s --cacert $CP/ca.crt --cert $CP/pki/admin.crt --key $CP/pki/admin.key"
K=$CP/kubectl
# api METHOD PATH [BODY [CONTENT-TYPE]]: as cluster admin
api() { $CURL -o /dev/null -X "$1" -H "Content-Type: ${4:-application/json}" ${3:+-d "$3"} "$URL$2"; }
if [ $REUSED = 0 ]; then
$K apply -f "$ROOT/deploy/crd" -f "$ROOT/deploy/rbac.yaml" >/dev/null
$K wait --for=condition=Established --timeout=60s crd/accesspolicies.corral.dev >/dev/null

"$B/corral-bench" --size "$SIZE" --write "$W/generated.json"
emit api_load_s "$(sh "$RUN" load "$CP" "$W/generated.json" 32 2>>"$W/load.log")" s
rm -f "$W/generated.json"
# the nine namespace-cluster pods and their namespaces, without y/b
python3 - "$ROOT/tests/dataplane/base.yaml" "$W/base.json" <<'PY'
import json, sys, yaml
items = [d for d in yaml.safe_load_all(open(sys.argv[1]))
         if d and not (d["kind"] == "Pod" and d["metadata"]["name"] == "b" and d["metadata"]["namespace"] == "y")]
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[2], "w"))
PY
sh "$RUN" load "$CP" "$W/base.json" 8 >/dev/null 2>>"$W/load.log"
[ -z "$KEEP" ] || echo "$SIZE" > "$KEEP/loaded"
fi
emit api_pods "$($CURL "$URL/api/v1/pods?limit=1" | python3 -c 'import json,sys; m=json.load(sys.stdin)["metadata"]; print(m.get("remainingItemCount", 0) + 1)')" pods
sh "$ROOT/tests/dataplane/cluster.sh" up $P
# the probes' server: an accept loop with a deep backlog (bench-agent-kube.sh)
ip netns exec $P-x-a python3 -c 'import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(4096)
while True: s.accept()[0].close()' >/dev/null 2>&1 &
echo $! > "$W/srv.pid"

# the agent's credentials, as a pod of the DaemonSet gets them
mkdir -p "$W/sa"
$K -n corral-system create token corral-agent --duration=4h > "$W/sa/token"
cp "$CP/ca.crt" "$W/sa/ca.crt"
printf 'apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: "%s", certificate-authority: "%s/sa/ca.crt"}}]\nusers: [{name: u, user: {tokenFile: "%s/sa/token"}}]\ncontexts: [{name: t, context: {cluster: c, user: u}}]\n' \
	"$URL" "$W" "$W" > "$W/kubeconfig"
list_bytes() { $CURL "$URL/metrics" | awk '/^apiserver_response_sizes_sum\{/ && /verb="LIST"/ {s += $2} END {printf "%.0f", s}'; }

b0=$(list_bytes)
t0=$(now_ms)
"$B/corral-agent" --source kube --kubeconfig "$W/kubeconfig" --node-name node-1 --netns /run/netns/$P-n1 \
	--socket "$W/a.sock" --log-level debug --metrics-address "" 2>>"$W/agent.log" &
APID=$!
echo $APID > "$W/agent.pid"
i=0; until "$B/agentctl" --socket "$W/a.sock" status -o json 2>/dev/null | grep -q '"synced": true'; do
	i=$((i+1)); [ $i -lt 6000 ] || { cat "$W/agent.log"; exit 1; }; sleep 0.05; done
emit start_to_enforcing_ms $(( $(now_ms) - t0 )) ms
# from the agent's log: its start line, every list in, the first full replace
python3 - "$W/agent.log" <<'PY'
import re, sys, datetime
t = {}
for line in open(sys.argv[1]):
    ts = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
    for key, pat in (("start", " start: "), ("lists", "every initial list is in"), ("sync", "sync: full replace")):
        if pat in line and key not in t:
            t[key] = ts
            if key == "sync":
                t["sync_ms"] = float(re.search(r"([0-9.]+) ms$", line.strip()).group(1))
print('{"bench": "agent-real", "metric": "start_to_lists_in_ms", "value": %.0f, "unit": "ms"}' % ((t["lists"] - t["start"]).total_seconds() * 1000))
print('{"bench": "agent-real", "metric": "first_full_replace_ms", "value": %.1f, "unit": "ms"}' % t["sync_ms"])
PY
emit agent_vmhwm_mb "$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' /proc/$APID/status)" MB
emit agent_rss_mb "$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$APID/status)" MB
emit agent_cpu_to_sync_s "$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' /proc/$APID/stat)" s
PORT=${URL##*:}
emit agent_connections "$(ss -tnpH state established "( dport = :$PORT )" | grep -c "pid=$APID,")" connections
emit agent_received_mb "$(ss -tinpH state established "( dport = :$PORT )" | grep -A1 "pid=$APID," |
	sed -n 's/.*bytes_received:\([0-9]*\).*/\1/p' | awk '{s += $1} END {printf "%.1f", s / 1048576}')" MB
b1=$(list_bytes)
emit list_bytes_sent_mb "$(awk -v a="$b0" -v b="$b1" 'BEGIN {printf "%.1f", (b - a) / 1048576}')" MB
# the same LISTs (pages of 500, as the agent asks) as JSON, uncompressed
python3 - "$URL" "$CP" <<'PY'
import http.client, json, ssl, sys, time, urllib.parse
url, d = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
ctx.load_cert_chain(d + "/pki/admin.crt", d + "/pki/admin.key")
c = http.client.HTTPSConnection(urllib.parse.urlparse(url).netloc, context=ctx, timeout=300)
total = 0
for path in ("/api/v1/namespaces", "/api/v1/pods", "/apis/networking.k8s.io/v1/networkpolicies",
             "/apis/corral.dev/v1/accesspolicies"):
    cont = ""
    while True:
        c.request("GET", path + "?limit=500" + ("&continue=" + urllib.parse.quote(cont) if cont else ""),
                  headers={"Accept": "application/json"})
        body = c.getresponse().read()
        total += len(body)
        cont = json.loads(body)["metadata"].get("continue", "")
        if not cont:
            break
print('{"bench": "agent-real", "metric": "list_json_mb", "value": %.1f, "unit": "MB"}' % (total / 1048576))
PY

POLICY='{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bench", "namespace": "x"}, "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}]}}'
PODB='{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "y", "labels": {"pod": "b", "role": "client"}}, "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "registry.example.com/app:1"}]}}'
PODB_STATUS='{"status": {"phase": "Running", "podIP": "10.1.2.2", "podIPs": [{"ip": "10.1.2.2"}]}}'
# flip FROM-POD WANT REQUEST...: the API requests (as cluster admin, one
# connection) and the probe (bench/flip.py), one JSON line
flip() {
	pod=$1 want=$2; shift 2
	python3 "$ROOT/bench/flip.py" $P-$pod 10.1.1.1:80 "$want" "$URL" --cacert "$CP/ca.crt" \
		--cert "$CP/pki/admin.crt" --key "$CP/pki/admin.key" "$@"
}
ms() { python3 -c 'import json, sys; [print(json.loads(l)["ms"]) for l in sys.stdin]'; }
: > "$W/pol"; : > "$W/pod"
GONE='{"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}'
for r in $(seq "$RUNS"); do
	until_state y-a 10.1.1.1 0
	flip y-a closed -- POST /apis/networking.k8s.io/v1/namespaces/x/networkpolicies "$POLICY" >> "$W/pol"
	flip y-b open -- POST /api/v1/namespaces/y/pods "$PODB" \
		-- PATCH /api/v1/namespaces/y/pods/b/status "$PODB_STATUS" application/strategic-merge-patch+json >> "$W/pod"
	api DELETE /api/v1/namespaces/y/pods/b "$GONE"
	api DELETE /apis/networking.k8s.io/v1/namespaces/x/networkpolicies/bench
	while [ "$($CURL -o /dev/null -w '%{http_code}' "$URL/api/v1/namespaces/y/pods/b")" != 404 ]; do sleep 0.05; done
done
emit policy_created_to_verdict_ms_median "$(ms < "$W/pol" | median)" ms
emit pod_created_to_kernel_ms_median "$(ms < "$W/pod" | median)" ms
emit policy_created_to_verdict_ms_all "\"$(ms < "$W/pol" | tr '\n' ' ')\"" ms
emit pod_created_to_kernel_ms_all "\"$(ms < "$W/pod" | tr '\n' ' ')\"" ms
# by stage (bench/stages.py), without the server's own: the API call to the agent woken
python3 "$ROOT/bench/stages.py" agent-real "$SIZE" policy "$W/pol" "$W/agent.log"
python3 "$ROOT/bench/stages.py" agent-real "$SIZE" pod "$W/pod" "$W/agent.log"
emit apiserver_rss_mb "$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/"$(cat "$CP/apiserver.pid")"/status)" MB
