#!/bin/sh
# The whole benchmark suite, one command: runs every benchmark at SIZE
# (large by default: about 15 minutes of both cores, most of it loading the
# test API server) and writes a markdown table of figure, target, now and
# peer, headed by the machine it ran on. The JSON lines of every benchmark
# are kept beside it (OUT.json). README's performance figures come from it.
#   bench/suite.sh BUILD-DIR [OUT.md] [SIZE]
# CORRAL_SUITE_REAL=1 adds bench-agent-real.sh (the real kube-apiserver:
# about 30 more minutes at large to load it; CORRAL_BENCH_CP reuses a load).
# CORRAL_SUITE_PEERS=1 adds bench/peers.sh: corral, kube-router and
# kube-network-policies one after the other on one real kube-apiserver and
# namespace cluster, at CORRAL_SUITE_PEERS_SIZE (small: about 10 minutes);
# their figures fill the peer column, each beside corral's of the same run.
# CORRAL_SUITE_README=1 also puts the table in README.md, between the lines
# "<!-- bench/suite.sh: begin -->" and "<!-- bench/suite.sh: end -->"
# (README's "Performance", measured figures with the machine they came from).
set -eu
B=$(cd "$1" && pwd); OUT=${2:-bench-suite.md}; SIZE=${3:-large}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
J=${OUT%.md}.json
: > "$J"
run() { echo "suite: $*" >&2; "$@" >> "$J"; }
run "$B/corral-bench" --size "$SIZE" --render 1
run sh "$ROOT/bench/callgrind.sh" "$B" "$([ "$SIZE" = large ] && echo medium || echo small)"
run "$B/corral-bench-dp" apply --runs 9
run "$B/corral-bench-dp" connrate "$ROOT/tests/dataplane/cluster.sh" "$ROOT/tests/dataplane/base.yaml" \
	$([ "$SIZE" = small ] && echo "--policies 200 --conns 1000 --runs 5" || echo "--runs 15")
run "$B/corral-bench-kube" --pods "$([ "$SIZE" = small ] && echo 1000 || echo 150000)"
# churn offered above the 2,000 events/s target: whether the agent keeps up
export CORRAL_BENCH_CHURN_RATE=${CORRAL_BENCH_CHURN_RATE:-3000}
run sh "$ROOT/bench/bench-agent-kube.sh" "$B" 5 "$SIZE"
[ "${CORRAL_SUITE_REAL:-0}" = 1 ] && run sh "$ROOT/bench/bench-agent-real.sh" "$B" 5 "$SIZE"
[ "${CORRAL_SUITE_PEERS:-0}" = 1 ] && run sh "$ROOT/bench/peers.sh" "$B" 5 "${CORRAL_SUITE_PEERS_SIZE:-small}"
python3 - "$J" "$OUT" "$SIZE" <<'PY'
import datetime, json, os, platform, sys
figs = {}
peer_size = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        figs[(o["bench"], o["metric"])] = (o["value"], o.get("unit", ""))
        if o["bench"].startswith("peer-") and "size" in o:
            peer_size = o["size"]
def f(b, m, fmt="%.3g"):
    v = figs.get((b, m))
    if v is None or isinstance(v[0], str):
        return "not measured" if v is None else v[0]
    return (fmt % v[0]) + (" " + v[1] if v[1] not in ("ratio", "x", "count") else (" x" if v[1] == "x" else ""))
def spread(b, m, fmt="%.3g"):
    lo, hi = figs.get((b, m + "_min")), figs.get((b, m + "_max"))
    return f(b, m, fmt) + ((" (" + fmt % lo[0] + "–" + fmt % hi[0] + ")") if lo and hi else "")
# the peer column: kube-router's figure beside corral's from the same run
# of bench/peers.sh (size in the cell), or why the peer has none
def peer(m, fmt="%.3g", spreads=False):
    g = spread if spreads else f
    if ("peer-kube-router", m) not in figs:
        return "not measured"
    return "kube-router %s (corral %s, same run, %s)" % (g("peer-kube-router", m, fmt), g("peer-corral", m, fmt), peer_size)
peers = {
    "agent resident memory (real kube-apiserver)": peer("rss_mb"),
    "agent peak memory (VmHWM, test API server)": peer("vmhwm_mb"),
    "agent start → enforcing (real kube-apiserver)": peer("start_to_enforcing_ms"),
    "policy created → verdict (real kube-apiserver)": peer("policy_created_to_verdict_ms_median"),
    "pod created → admitted (real kube-apiserver)": peer("pod_created_to_admitted_ms_median"),
    "new connections/s, corral vs conntrack-only table (paired runs)": peer("vs_conntrack_only_paired", spreads=True),
    "new connections/s, corral vs no table (paired runs)": peer("vs_no_table_paired", spreads=True),
    "CPU time, start through the latency rounds (bench/peers.sh)": peer("cpu_s"),
    "rules in node-1's ruleset (bench/peers.sh)": peer("node1_rules", "%.0f"),
}
knp = figs.get(("peer-kube-network-policies", "runs"))
# figure, target, now, peer: issue 16's targets
rows = [
    ("agent resident memory, cluster loaded (test API server)", "≤ 120 MB (stretch 100)", f("agent-kube", "agent_rss_mb")),
    ("agent peak memory (VmHWM, test API server)", "", f("agent-kube", "agent_vmhwm_mb")),
    ("agent resident memory (real kube-apiserver)", "≤ 120 MB", f("agent-real", "agent_rss_mb")),
    ("agent start → enforcing (real kube-apiserver)", "", f("agent-real", "start_to_enforcing_ms")),
    ("agent-side start: CPU to the first ruleset (test API server)", "≤ 1.5 s", f("agent-kube", "agent_cpu_to_sync_s")),
    ("full compile, objects in memory → IR", "≤ 1 s", f("compile", "full_compile_ms")),
    ("render of the whole ruleset", "", f("compile", "render_ms")),
    ("pod change in the agent, event in → netlink ack, debounce excluded, p50 / p99 (its histogram: 200 pod events one at a time and the verdict rounds)", "≤ 1 ms / ≤ 5 ms", f("agent-kube", "agent_pod_change_work_p50_ms") + " / " + f("agent-kube", "agent_pod_change_work_p99_ms")),
    ("policy change in the agent, debounce excluded, p50 (its histogram)", "≤ 5 ms", f("agent-kube", "agent_policy_change_work_p50_ms")),
    ("the same histograms whole (the debounce's hold included): pod p50 / p99, policy p50", "reported", f("agent-kube", "agent_pod_change_p50_ms") + " / " + f("agent-kube", "agent_pod_change_p99_ms") + ", " + f("agent-kube", "agent_policy_change_p50_ms")),
    ("pod change in the agent after the churn too, debounce excluded, p50 / p99 (whole: p50 / p99)", "reported", f("agent-kube", "agent_after_churn_pod_change_work_p50_ms") + " / " + f("agent-kube", "agent_after_churn_pod_change_work_p99_ms") + " (" + f("agent-kube", "agent_after_churn_pod_change_p50_ms") + " / " + f("agent-kube", "agent_after_churn_pod_change_p99_ms") + ")"),
    ("one pod event: engine + render + plan, median / p99 (corral-bench --render 1, kernel aside)", "≤ 1 ms / ≤ 5 ms", f("compile", "sync_after_pod_event_median_ms") + " / " + f("compile", "sync_after_pod_event_p99_ms")),
    ("one policy created: engine + render + plan, median (corral-bench --render 1)", "≤ 5 ms", f("compile", "policy_created_engine_and_sync_median_ms")),
    ("one pod created, decoded → netlink ack, median (bench/stages.py)", "≤ 1 ms", f("agent-kube", "pod_decoded_to_acked_ms")),
    ("one policy created, decoded → netlink ack, median (bench/stages.py)", "≤ 5 ms", f("agent-kube", "policy_decoded_to_acked_ms")),
    ("policy created at the API server → verdict (test API server)", "≤ 15 ms", f("agent-kube", "policy_created_to_verdict_ms_median")),
    ("pod created at the API server → admitted (test API server)", "", f("agent-kube", "pod_created_to_kernel_ms_median")),
    ("policy created → verdict (real kube-apiserver)", "≤ 15 ms", f("agent-real", "policy_created_to_verdict_ms_median")),
    ("pod created → admitted (real kube-apiserver)", "", f("agent-real", "pod_created_to_kernel_ms_median")),
    ("engine: one pod label change, median / p99", "", f("compile", "pod_label_change_median_us") + " / " + f("compile", "pod_label_change_p99_us")),
    ("explain (engine evaluation of one flow)", "≤ 50 ms", f("compile", "eval_us")),
    ("agentctl explain asking the running agent (test API server)", "≤ 50 ms", f("agent-kube", "explain_live_ms_median")),
    ("pod churn: events/s applied to the kernel, of offered; the kernel caught up after the server's last (100 ms samples)", "≥ 2,000/s", f("agent-kube", "churn_applied_events_per_s") + " of " + f("agent-kube", "churn_offered_events_per_s") + "; " + f("agent-kube", "churn_catch_up_after_last_event_ms")),
    ("pod churn: most events waiting to be decoded / to reach the kernel", "reported", f("agent-kube", "churn_decode_queue_max") + " / " + f("agent-kube", "churn_kernel_queue_max")),
    ("new connections/s, corral vs conntrack-only table (paired runs)", "≥ 0.97", spread("connrate", "corral_vs_conntrack_only_paired")),
    ("new connections/s, corral vs no table (paired runs)", "reported", spread("connrate", "corral_vs_no_table_paired")),
    ("netlink apply vs nft -f, same ruleset (paired runs)", "≥ 5x", spread("apply", "speedup_vs_nft_f_paired")),
    ("netlink apply, elements/s", "≥ 1 M/s", f("apply", "netlink_elements_per_s")),
    ("API client: watch events decoded and cached per second", "", f("kube", "events_per_s")),
    ("API client: cache per pod", "", f("kube", "cache_bytes_per_pod")),
    ("instructions: full compile (callgrind)", "", f("callgrind", "compile_instructions")),
    ("instructions: one pod event (callgrind)", "", f("callgrind", "pod_event_instructions")),
    ("instructions: render (callgrind)", "", f("callgrind", "render_instructions")),
    ("CPU time, start through the latency rounds (bench/peers.sh)", "", f("peer-corral", "cpu_s")),
    ("rules in node-1's ruleset (bench/peers.sh)", "", f("peer-corral", "node1_rules", "%.0f")),
]
try:
    model = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
except (OSError, IndexError):
    model = platform.processor()
load = open("/proc/loadavg").read().split()[:3]
with open(sys.argv[2], "w") as out:
    out.write("Size %s, %s; %d CPUs (%s), kernel %s, load average %s at the end.\n\n" % (
        sys.argv[3], datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), os.cpu_count(), model,
        platform.release(), " ".join(load)))
    out.write("| figure | target | now | peer |\n|---|---|---|---|\n")
    for name, target, now in rows:
        out.write("| %s | %s | %s | %s |\n" % (name, target, now, peers.get(name, "—")))
    if knp:
        q = figs.get(("peer-kube-network-policies", "nft_queue_statement"), ("", ""))[0]
        out.write("\nkube-network-policies: %s. The nftables queue statement it needs, alone: %s\n" % (knp[0], q))
print(open(sys.argv[2]).read())
PY
if [ "${CORRAL_SUITE_README:-0}" = 1 ]; then
	python3 - "$OUT" "$ROOT/README.md" <<'PY'
import sys
table = open(sys.argv[1]).read()
readme = open(sys.argv[2]).read()
begin, end = "<!-- bench/suite.sh: begin -->\n", "<!-- bench/suite.sh: end -->\n"
a, b = readme.find(begin), readme.find(end)
if a < 0 or b < a:
    sys.exit("suite: README.md has no %s ... %s block" % (begin.strip(), end.strip()))
open(sys.argv[2], "w").write(readme[:a + len(begin)] + table + readme[b:])
print("suite: README.md's table written", file=sys.stderr)
PY
fi
