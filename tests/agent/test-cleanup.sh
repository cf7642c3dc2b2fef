#!/bin/sh
# corral-agent --cleanup, the uninstall path, in a network namespace with
# real nftables: an agent leaves its table when it stops (fail-static);
# --cleanup once removes it and nothing else, and says so; a second run
# finds nothing to remove; --cleanup watch (what deploy/uninstall.yaml
# runs on every node) removes it, answers /readyz, and removes it again
# when something makes it again, until SIGTERM.
#   test-cleanup.sh CORRAL-AGENT REPO
agent=$1 repo=$2
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces, nftables)"; exit 77; }
ns="${CORRAL_NETNS_TAG:-}corral-cleanup"
tmp=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
has_table() { ip netns exec "$ns" nft list table inet "$1" >/dev/null 2>&1; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (bounded)
wait_for() {
	n=$(( $1 * 10 )); shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

ip netns del "$ns" 2>/dev/null
ip netns add "$ns"
ip -n "$ns" link set lo up
# a node's address (the agent's DNS proxy listens on the first global one)
ip -n "$ns" link add eth0 type veth peer name eth1
ip -n "$ns" link set eth0 up
ip -n "$ns" link set eth1 up
ip -n "$ns" addr add 10.250.0.1/24 dev eth0
# someone else's table, which the clean-up must leave alone
printf 'table inet other {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n' |
	ip netns exec "$ns" nft -f -

# an agent enforces the shop example, then stops: its table stays
"$agent" --netns "/run/netns/$ns" --source "files:$repo/deploy/examples/shop" --node-name node-1 \
	--socket "$tmp/agent.sock" --metrics-address "" >"$tmp/agent.log" 2>&1 &
pid=$!
wait_for 20 has_table corral && ok "the agent made table inet corral" || bad "no table from the agent: $(cat "$tmp/agent.log")"
kill -TERM "$pid"; wait "$pid"; pid=""
has_table corral && ok "the table stays after the agent stops (fail-static)" || bad "the table went with the agent"

# --cleanup once
"$agent" --cleanup once --netns "/run/netns/$ns" >"$tmp/once.log" 2>&1
rc=$?
[ $rc = 0 ] && ok "--cleanup once exits 0" || bad "--cleanup once exit $rc: $(cat "$tmp/once.log")"
has_table corral && bad "table inet corral still there" || ok "table inet corral removed"
has_table other && ok "table inet other left alone" || bad "table inet other removed too"
grep -q "removed table inet corral" "$tmp/once.log" && ok "it says what it removed: $(grep -o 'removed table.*' "$tmp/once.log")" ||
	bad "no word of the removal: $(cat "$tmp/once.log")"
"$agent" --cleanup once --netns "/run/netns/$ns" >"$tmp/again.log" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "nothing to remove" "$tmp/again.log" && ok "a second run finds nothing to remove" ||
	bad "second run: exit $rc: $(cat "$tmp/again.log")"

# --cleanup watch: ready once removed; a table made again is removed again
printf 'table inet corral {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n}\n' |
	ip netns exec "$ns" nft -f -
"$agent" --cleanup watch --netns "/run/netns/$ns" --metrics-address 127.0.0.1:19464 >"$tmp/watch.log" 2>&1 &
pid=$!
ready() { [ "$(ip netns exec "$ns" curl -s http://127.0.0.1:19464/readyz)" = "ready" ]; }
wait_for 10 ready && ok "--cleanup watch answers /readyz once the table is gone" || bad "not ready: $(cat "$tmp/watch.log")"
has_table corral && bad "watch: table inet corral still there" || ok "watch: removed"
printf 'table inet corral {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n}\n' |
	ip netns exec "$ns" nft -f -
gone() { ! has_table corral; }
wait_for 6 gone && ok "watch: a table made again is removed again" || bad "watch: the table made again stays"
grep -q "made again" "$tmp/watch.log" && ok "watch: and says so" || bad "watch: no word of it: $(cat "$tmp/watch.log")"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
[ $rc = 0 ] && ok "watch: SIGTERM ends it (exit 0)" || bad "watch: exit $rc after SIGTERM"

out=$("$agent" --cleanup everything 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "must be once or watch" && ok "--cleanup everything refused" || bad "--cleanup everything: $rc $out"

[ $fail = 0 ] && echo "cleanup: all passed"
exit $fail
