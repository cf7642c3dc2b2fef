#!/usr/bin/env python3
"""Where the time of a verdict change goes, stage by stage: lines up each
flip (bench/flip.py's JSON lines) with the agent's debug "latency" line of
the transaction that carried it and, when given, the test API server's
trace (CORRAL_FAKE_TRACE) of the object. Every time is CLOCK_MONOTONIC.
Prints one JSON line per stage: median, min and max over the flips, in ms.

usage: stages.py BENCH SIZE WHAT FLIPS AGENT-LOG [FAKE-TRACE NAME]
  WHAT: the metric prefix (policy, pod); NAME: the object's ns/name in the trace
Stages: the API call to the object stored and its watch event written
(test server), the agent's loop woken, the bytes read, decoded, the
engine done, the sync started (debounce), the data plane's sync entered
(provisional addresses, node interfaces), rendered and planned, the drop
counters read (commit hook), encoded and sent, acknowledged; then the
first probe that saw the verdict (it may precede the acknowledgement:
the kernel applies the batch before it answers); call_to_acked is the
change in force as the agent knows it, free of the probe's own delays
(probe_gap_before_flip: on a loaded machine the probe itself waits for a
core)."""
import json
import re
import statistics
import sys

bench, size, what, flips_f, log_f = sys.argv[1:6]
trace_f, name = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
flips = [json.loads(line) for line in open(flips_f) if line.startswith("{")]
agent = []
for line in open(log_f):
    m = re.search(r"latency: (.*)$", line)
    if m:
        agent.append({k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())})
server = []
if trace_f:
    for line in open(trace_f):
        t, kind, res, etype, obj = line.split()
        if obj == name and etype != "DELETED":
            server.append((float(t), kind))

ORDER = ["api_received_stored", "server_stored_to_written", "written_to_agent_woke", "call_to_agent_woke",
         "woke_to_read", "read_to_decoded", "decoded_to_engine_done", "engine_to_sync_start",
         "sync_start_to_dp", "dp_to_rendered", "rendered_to_hook_done", "hook_to_sent", "sent_to_acked", "acked_to_probe_flip", "done_after_acked", "decoded_to_acked", "call_to_acked", "call_to_flip",
         "call_returned", "probe_gap_before_flip"]
rows = {k: [] for k in ORDER}
for f in flips:
    if "flip" not in f:
        continue
    c = f["call"]
    # the transaction that changed the verdict: the last one whose change
    # came in after the call and before the probe saw it (a pod created
    # then given its address makes two), else the first after the call
    during = [x for x in agent if c <= x["decoded"] <= f["flip"]]
    a = during[-1] if during else next((x for x in agent if x["decoded"] >= c), None)
    if not a:
        continue
    st = [t for t, k in server if k == "stored" and c <= t <= a["acked"]]
    wr = [t for t, k in server if k == "written" and c <= t <= a["acked"]]  # its trace line may follow the agent waking
    if st and wr:
        rows["api_received_stored"].append(st[-1] - c)
        rows["server_stored_to_written"].append(wr[-1] - st[-1])
        rows["written_to_agent_woke"].append(a["woke"] - wr[-1])
    rows["call_to_agent_woke"].append(a["woke"] - c)
    rows["done_after_acked"].append(a["done"] - a["acked"])
    rows["woke_to_read"].append(a["read"] - a["woke"])
    rows["read_to_decoded"].append(a["decoded"] - a["read"])
    rows["decoded_to_engine_done"].append(a["engine"] - a["decoded"])
    rows["engine_to_sync_start"].append(a["sync"] - a["engine"])
    rows["sync_start_to_dp"].append(a["dp"] - a["sync"])
    rows["dp_to_rendered"].append(a["rendered"] - a["dp"])
    rows["rendered_to_hook_done"].append(a["hook"] - a["rendered"])
    rows["hook_to_sent"].append(a["sent"] - a["hook"])
    rows["sent_to_acked"].append(a["acked"] - a["sent"])
    rows["acked_to_probe_flip"].append(f["flip"] - a["acked"])
    rows["call_to_flip"].append(f["flip"] - c)
    rows["call_to_acked"].append(a["acked"] - c)
    rows["decoded_to_acked"].append(a["acked"] - a["decoded"])
    if f.get("before") is not None:
        rows["probe_gap_before_flip"].append(f["flip"] - f["before"])
    rows["call_returned"].append(f["returned"] - c)
for k in ORDER:
    v = [x * 1e3 for x in rows[k]]
    if v:
        print(json.dumps({"bench": bench, "size": size, "metric": "%s_%s_ms" % (what, k),
                          "value": round(statistics.median(v), 3), "min": round(min(v), 3),
                          "max": round(max(v), 3), "n": len(v), "unit": "ms",
                          "all": [round(x, 2) for x in v]}))
