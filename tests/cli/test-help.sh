#!/bin/sh
# Help that answers, and the CLI conventions: every command has --help and
# `help COMMAND`, every flag a command takes is in its help and in the man
# page, every setting of the agent is in corral-agent(8), both binaries
# print a version, bash completion completes from the flag table, and the
# exit codes and errors of issue 19 (explain 1 on DENIED, unknown -o
# formats, check -, dump --node and matrix without pods say so).
#   test-help.sh AGENTCTL CORRAL-AGENT REPO
set -u
CTL=$1 AGENT=$2 REPO=$3
EX=$REPO/deploy/examples/shop
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cmds=$("$CTL" --help | awk '/^commands:/ {on=1; next} on && /^  [a-z]/ {print $1} /^$/ && on {on=0}')
[ "$(echo $cmds)" = "check explain matrix diff dump status drops dns version help" ] && ok "commands: $(echo $cmds)" || bad "commands: $cmds"
for c in $cmds; do
	out=$("$CTL" "$c" --help); rc=$?
	[ $rc -eq 0 ] && echo "$out" | head -n 1 | grep -q "^usage: agentctl $c" || bad "$c --help: rc=$rc $(echo "$out" | head -n 1)"
	[ "$("$CTL" help "$c")" = "$out" ] || bad "help $c differs from $c --help"
	grep -q "^\.BR\? $c\b\|^\.BI\? \"\?$c\b\|^\.RI \"$c \| \[\|^\.B $c\$\|^\.BR $c \|^\.BI $c " "$REPO/deploy/man/agentctl.1" || bad "agentctl.1 does not describe $c"
	for f in $(echo "$out" | sed -n 's/^  \(-[a-z], \)\?\(--[a-z-]*\).*/\2/p'); do
		man=$(echo "$f" | sed 's/-/\\\\-/g')
		grep -q -- "$man" "$REPO/deploy/man/agentctl.1" || bad "agentctl.1 lacks $f (of $c)"
		# and the parser takes it (a value where it needs one)
		case $f in --help) continue ;; esac
		"$CTL" "$c" "$f" --help >/dev/null 2>&1 || "$CTL" "$c" "$f" x --help >/dev/null 2>&1 \
			|| "$CTL" "$c" "$f" 80 --help >/dev/null 2>&1 || "$CTL" "$c" "$f" json --help >/dev/null 2>&1 \
			|| "$CTL" "$c" "$f" TCP --help >/dev/null 2>&1 || "$CTL" "$c" "$f" added --help >/dev/null 2>&1 \
			|| bad "$c does not take $f, which its help lists"
	done
done
ok "every command has --help and help COMMAND; its flags are in agentctl.1 and parsed"
"$CTL" explain --bogus 2>&1 | grep -q "unknown flag --bogus" && ok "an unknown flag is named" || bad "unknown flag"
"$CTL" status --follow >/dev/null 2>&1; [ $? -eq 2 ] && ok "a flag of another command is refused" || bad "status --follow accepted"

# versions
v=$("$CTL" --version) && echo "$v" | grep -q "^agentctl [0-9][0-9.]*" && ok "agentctl --version: $v" || bad "agentctl --version: $v"
[ "$("$CTL" version)" = "$v" ] || bad "agentctl version differs from --version"
v=$("$AGENT" --version) && echo "$v" | grep -q "^corral-agent [0-9][0-9.]*" && ok "corral-agent --version: $v" || bad "corral-agent --version: $v"

# corral-agent: its flags and settings in corral-agent(8)
for f in $("$AGENT" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p'); do
	grep -q -- "$(echo "$f" | sed 's/-/\\\\-/g')" "$REPO/deploy/man/corral-agent.8" || bad "corral-agent.8 lacks $f"
done
printf 'bogus: 1\n' > "$tmp/c.yaml"
keys=$("$AGENT" --config "$tmp/c.yaml" --source files:/ --node-name n 2>&1 | sed -n 's/.*(known: \(.*\)).*/\1/p' | tr -d ,)
[ -n "$keys" ] || bad "no list of settings"
for k in $keys; do grep -q "$k" "$REPO/deploy/man/corral-agent.8" || bad "corral-agent.8 lacks the setting $k"; done
ok "corral-agent.8 has every flag and setting ($(echo $keys | wc -w) settings)"
if command -v groff >/dev/null 2>&1; then
	for m in "$REPO/deploy/man/agentctl.1" "$REPO/deploy/man/corral-agent.8"; do
		w=$(groff -man -Tutf8 -ww -z "$m" 2>&1) && [ -z "$w" ] && ok "$(basename "$m") formats without warnings" || bad "$m: $w"
	done
fi

# bash completion, from the flag table
if command -v bash >/dev/null 2>&1; then
	mkdir "$tmp/bin"; ln -s "$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")" "$tmp/bin/agentctl"
	got=$(PATH="$tmp/bin:$PATH" bash -c '. "$1"; t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _agentctl; echo "${COMPREPLY[*]}"; }
		t agentctl ma; t agentctl matrix -o ""; t agentctl diff --fail-on a; t agentctl explain --pro' sh "$REPO/deploy/completion/agentctl.bash")
	[ "$got" = "matrix
txt json yaml md csv dot svg
added
--protocol" ] && ok "bash completion: commands, formats, values, flags" || bad "bash completion: $got"
fi

# issue 19's conventions
"$CTL" explain --from "$EX" team-shop/checkout team-pay/payments --port 8080 >/dev/null; [ $? -eq 1 ] && ok "explain DENIED exits 1" || bad "explain DENIED exit"
"$CTL" explain --from "$EX" team-shop/frontend team-shop/checkout --port 8080 >/dev/null; [ $? -eq 0 ] && ok "explain ALLOWED exits 0" || bad "explain ALLOWED exit"
out=$("$CTL" matrix --from "$EX" -o xml 2>&1); [ $? -eq 2 ] && echo "$out" | grep -q "not an output format of matrix" && ok "matrix -o xml is an error" || bad "matrix -o xml: $out"
"$CTL" status -o dot >/dev/null 2>&1; [ $? -eq 2 ] && ok "status -o dot is an error" || bad "status -o dot"
"$CTL" dump -o json >/dev/null 2>&1; [ $? -eq 2 ] && ok "dump -o json is an error (nft text only)" || bad "dump -o json"
"$CTL" matrix --from "$EX" -o yaml | grep -q "^pods:" && ok "matrix -o yaml is YAML" || bad "matrix -o yaml"
out=$(for f in "$EX"/*.yaml; do cat "$f"; echo ---; done | "$CTL" check -); [ $? -eq 0 ] && echo "$out" | grep -q "objects in 1 files: 0 errors" && ok "check - reads standard input" || bad "check -: $out"
out=$(printf 'apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: p, namespace: x}\nspec: {application: a, bogus: 1}\n' | "$CTL" check -); [ $? -eq 1 ] && echo "$out" | grep -q "^-: AccessPolicy x/p: spec.bogus" && ok "check - names the input -" || bad "check - errors: $out"
out=$("$CTL" dump --from "$EX" --node nosuchnode 2>&1); [ $? -eq 2 ] && echo "$out" | grep -q 'no pod is on node "nosuchnode" (nodes with pods: node-1, node-2)' && ok "dump --node nosuchnode says so" || bad "dump nosuchnode: $out"
mkdir "$tmp/nopods"; printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n' > "$tmp/nopods/ns.yaml"
out=$("$CTL" matrix --from "$tmp/nopods" 2>&1); [ $? -eq 2 ] && echo "$out" | grep -q "no pod with an address in" && ok "matrix without pods says so" || bad "matrix no pods: $out"
out=$("$CTL" matrix --from "$EX"); echo "$out" | head -n 1 | grep -q "^TCP/80 (the default; --port and --protocol choose another)" && ok "matrix names its default port in the header" || bad "matrix header: $(echo "$out" | head -n 1)"
echo "$out" | sed -n 5p | grep -q "ledger-0  *payments-0  *checkout-0  *frontend-0" && ok "matrix names its columns by pod" || bad "matrix columns: $out"
"$CTL" matrix --from "$EX" --port 8080 | head -n 1 | grep -q "^TCP/8080: rows" && ok "matrix with --port: no default said" || bad "matrix --port header"
[ $fail -eq 0 ] && echo "help and conventions: all passed"
exit $fail
