#!/bin/sh
# Instruction counts (valgrind --tool=callgrind), repeatable on a noisy
# machine where times are not: the full compile of a generated cluster
# (manifest_apply: every object into the engine), one render of the whole
# ruleset (dp_render), one pod label change (engine_pod_upsert, mean of
# EVENTS) and one explain (policy_eval, mean of 1,000). One JSON line per
# figure. Runs at about 1/50 of native speed: medium takes a minute or
# two, large about ten.
# usage: callgrind.sh BUILD-DIR [SIZE] [EVENTS]   (SIZE: medium)
set -eu
B=$(cd "$1" && pwd); SIZE=${2:-medium}; EVENTS=${3:-1000}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
W=$(mktemp -d /tmp/corral-callgrind-XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$B/corral-bench" --size "$SIZE" --render 1 \
	--events "$EVENTS" > "$W/bench.out" 2> "$W/vg.log" || { cat "$W/vg.log" >&2; exit 1; }
callgrind_annotate --inclusive=yes "$W/cg.out" > "$W/annotate.txt"
# inclusive Ir of one function: "1,234,567 (12.3%)  file:function [object]"
ir() { awk -v f="$1" '{ for (i = 2; i <= NF; i++) { n = $i; sub(/^.*:/, "", n); if (n == f) { gsub(",", "", $1); print $1; exit } } }' "$W/annotate.txt"; }
emit() { printf '{"bench": "callgrind", "size": "%s", "metric": "%s", "value": %s, "unit": "%s"}\n' "$SIZE" "$1" "$2" "$3"; }
total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$W/annotate.txt")
emit total_instructions "$total" Ir
emit compile_instructions "$(ir manifest_apply)" Ir
emit render_instructions "$(ir dp_render)" Ir
emit pod_event_instructions "$(awk -v n="$(ir engine_pod_upsert)" -v e="$EVENTS" 'BEGIN {printf "%.0f", n / e}')" Ir
emit explain_instructions "$(awk -v n="$(ir policy_eval)" 'BEGIN {printf "%.0f", n / 1000}')" Ir
