#!/bin/sh
# agentctl as a user runs it: exit codes, the first line of explain, JSON.
set -u
CTL=$1
EX=$2
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

out=$("$CTL" check "$EX"); [ $? -eq 0 ] && ok "check of the example exits 0" || bad "check example: $out"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: p, namespace: x}\nspec: {application: a, inbound: {rules: [{application: b, ports: [{port: 0}]}]}}\n' > "$tmp/bad.yaml"
out=$("$CTL" check "$tmp/bad.yaml"); rc=$?
[ $rc -eq 1 ] && ok "check of a bad policy exits 1" || bad "check bad rc=$rc"
echo "$out" | grep -q "^$tmp/bad.yaml: AccessPolicy x/p: spec.inbound.rules\[0\].ports\[0\].port: port 0 out of range 1-65535$" \
    && ok "check names file, object, field and reason" || bad "check message: $out"

first=$("$CTL" explain --from "$EX" team-shop/checkout team-pay/payments --port 8080 | head -n 1)
[ "$first" = "DENIED" ] && ok "explain: checkout -> payments DENIED" || bad "explain first line: $first"
"$CTL" explain --from "$EX" team-shop/checkout team-pay/payments --port 8080 | grep -q "add to AccessPolicy team-shop/checkout" \
    && ok "explain names the missing caller rule" || bad "explain fix missing"
first=$("$CTL" explain --from "$EX" team-pay/payments team-ledger/ledger --port 5432 | head -n 1)
[ "$first" = "ALLOWED" ] && ok "explain: payments -> ledger ALLOWED" || bad "explain first line: $first"
"$CTL" explain --from "$EX" team-pay/payments team-ledger/ledger --port 5432 -o json | grep -q '"allowed": true' \
    && ok "explain -o json has allowed: true" || bad "explain json"
"$CTL" explain --from "$EX" team-pay/payments team-ledger/ledger --port 5433 -o json | grep -q '"allowed": false' \
    && ok "explain -o json on another port has allowed: false" || bad "explain json port"
"$CTL" explain --from "$EX" team-shop/frontend 10.200.1.11 --port 8080 | head -n 1 | grep -q ALLOWED \
    && ok "explain takes ns/app and addresses" || bad "explain ns/app"
"$CTL" matrix --from "$EX" --port 8080 -o json | grep -q '"pods"' && ok "matrix -o json" || bad "matrix json"
"$CTL" explain --from "$EX" nope/nope team-pay/payments >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown pod exits 2" || bad "unknown pod"
# two live pods claiming one address: quarantined, in explain and matrix
mkdir "$tmp/q"
for p in api-old:api zz-new:evil; do
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: a, labels: {app: %s}}\nstatus: {podIPs: [{ip: 10.0.1.50}]}\n---\n' "${p%%:*}" "${p#*:}"
done > "$tmp/q/pods.yaml"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: a, labels: {app: web}}\nstatus: {podIPs: [{ip: 10.0.1.10}]}\n' >> "$tmp/q/pods.yaml"
out=$("$CTL" explain --from "$tmp/q" 10.0.1.50 a/web-0 --port 80)
echo "$out" | head -n 1 | grep -q DENIED && echo "$out" | grep -q "quarantined: 10.0.1.50 is claimed by several live pods (a/api-old, a/zz-new)" \
    && ok "explain: an address two pods claim is quarantined" || bad "explain quarantine: $out"
"$CTL" explain --from "$tmp/q" a/web-0 a/api-old --port 80 -o json | tr -d ' \n' | grep -q '"quarantined":true,"claimed_by":\["a/api-old","a/zz-new"\]' \
    && ok "explain -o json names the claimants" || bad "explain quarantine json"
"$CTL" matrix --from "$tmp/q" | grep -q "^a/web-0  *X  *\.  *X" && ok "matrix: quarantined address denied" || bad "matrix quarantine"
# matrix shows every family two pods share, not only the first address
mkdir "$tmp/fam"
for p in a:10.0.0.1,fd00::1 b:10.0.0.2,fd00::2 c:fd00::3 d:10.0.0.4; do
    ips=$(echo "${p#*:}" | sed 's/\([^,]*\)/{ip: "\1"}/g')
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: x}\nstatus: {podIPs: [%s]}\n---\n' "${p%%:*}" "$ips"
done > "$tmp/fam/pods.yaml"
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: v6-only, namespace: x}\nspec: {podSelector: {matchExpressions: [{key: x, operator: DoesNotExist}]}, ingress: [{from: [{ipBlock: {cidr: "fd00::/8"}}]}]}\n' >> "$tmp/fam/pods.yaml"
out=$("$CTL" matrix --from "$tmp/fam")
echo "$out" | grep -q "^x/b  *6  *\.  *\.  *X" && echo "$out" | grep -q "^x/c  *\.  *\.  *\.  *-" && echo "$out" | grep -q "^x/d  *X  *X  *-  *\." \
    && ok "matrix: per family (6: IPv6 only, - none in common)" || bad "matrix families: $out"
"$CTL" matrix --from "$tmp/fam" -o json | tr -d ' \n' | grep -q '"allowed":\[\[true,false,true,false\],\[false,true,true,false\].*"ipv4":\[\[true,false,null,false\],\[false,true,null,false\].*"ipv6":\[\[true,true,true,null\],\[true,true,true,null\]' \
    && ok "matrix -o json: allowed, ipv4 and ipv6" || bad "matrix families json: $("$CTL" matrix --from "$tmp/fam" -o json | tr -d ' \n')"
# Offline loading as the agent reads files (issues 17 and 20).
d=$tmp/dup; mkdir -p "$d"
NS='apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: z}\n'
POD='apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\nstatus: {podIPs: [{ip: %s}]}\n---\n'
NP='apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-in, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: %s}}}], ports: [{port: %s}]}]\n'
{ printf "$NS---\n"; printf "$POD" web x web 10.9.0.1; printf "$POD" api x api 10.9.0.2; printf "$POD" db x db 10.9.0.3; } > "$d/cluster.yaml"
printf "$NP" api 8080 > "$d/a-policy.yaml"
printf "$NP" db 8080 > "$d/b-policy.yaml"
out=$("$CTL" check "$d"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "NetworkPolicy x/web-in: is defined differently in $d/a-policy.yaml and $d/b-policy.yaml" \
    && ok "the same policy in two files is an error naming both" || bad "duplicate: rc=$rc $out"
for src in x/api x/db; do
    first=$("$CTL" explain --from "$d" $src x/web --port 8080 2>/dev/null | head -n 1)
    [ "$first" = "DENIED" ] && ok "differing copies allow nothing: $src -> x/web DENIED" || bad "duplicate explain $src: $first"
done
cp "$d/a-policy.yaml" "$d/b-policy.yaml"
out=$("$CTL" check "$d"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "is defined identically in" && ok "identical copies: still an error" || bad "identical: $out"
first=$("$CTL" explain --from "$d" x/api x/web --port 8080 2>/dev/null | head -n 1)
[ "$first" = "ALLOWED" ] && ok "identical copies: enforced once" || bad "identical explain: $first"
rm "$d/b-policy.yaml"
# YAML 1.1 numbers, as kubectl reads them: 010 is port 8, 0x1f90 is 8080
printf "$NP" api 010 > "$d/a-policy.yaml"
first=$("$CTL" explain --from "$d" x/api x/web --port 8 2>/dev/null | head -n 1)
[ "$first" = "ALLOWED" ] && ok "port: 010 is port 8, as kubectl reads it" || bad "octal port: $first"
"$CTL" check "$d" | grep -q "warning: line 6 .*port: 010 is read as the octal number 8" && ok "check warns about octal" || bad "octal warning"
printf "$NP" api 0x1f90 > "$d/a-policy.yaml"
first=$("$CTL" explain --from "$d" x/api x/web --port 8080 2>/dev/null | head -n 1)
[ "$first" = "ALLOWED" ] && ok "port: 0x1f90 is 8080, not a named port" || bad "hex port: $first"
# a number JSON cannot carry: the whole file is an error, check exits 1
{ printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {max: 1e999}\n---\n'; printf "$NP" api 80; } > "$d/a-policy.yaml"
out=$("$CTL" check "$d"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "a-policy.yaml: line 4 column 13: data.max: 1e999 is out of range" \
    && ok "1e999 is an error naming file, line and field" || bad "1e999: rc=$rc $out"
"$CTL" explain --from "$d" x/api x/web --port 80 -o json 2>&1 >/dev/null | grep -q "could not be read and are left out" \
    && ok "explain -o json says a file was left out" || bad "explain quiet about an unreadable file"
# a FIFO in the folder: check does not hang
printf "$NP" api 80 > "$d/a-policy.yaml"
mkfifo "$d/fifo.yaml"
out=$(timeout 10 "$CTL" check "$d"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "fifo.yaml: a FIFO, not a regular file" && ok "a FIFO is reported, not opened" || bad "fifo: rc=$rc $out"
rm "$d/fifo.yaml"
# links back into the folder: each file once
ln -s "$d" "$d/self"; ln -s "$d" "$d/again"
out=$(timeout 10 "$CTL" check "$d"); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "in 2 files" && ok "links to the folder: walked once" || bad "link loop: rc=$rc $out"

# a selector that selects nothing is a silent fail-open: check warns, with
# the label that was probably meant; explain names the policy
l=$tmp/lint; mkdir -p "$l"
{ printf "$POD" db-0 x postgres 10.9.1.1; printf "$POD" web-0 x web 10.9.1.2;
  printf 'apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: db, namespace: x}\nspec:\n  application: Postgres\n  inbound:\n    rules: [{application: webb}]\n'; } > "$l/all.yaml"
out=$("$CTL" check "$l"); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "AccessPolicy x/db: spec.application: warning: selects no pod of namespace x.*did you mean app=postgres?" \
    && echo "$out" | grep -q "spec.inbound.rules\[0\]: warning: no pod in view is a caller of this rule.*did you mean app=web?" \
    && ok "check: selectors that select nothing, with a did-you-mean" || bad "lint: rc=$rc $out"
"$CTL" explain --from "$l" x/web-0 x/db-0 --port 5432 | grep -q "note: AccessPolicy x/db in this namespace selects no pod" \
    && ok "explain names the policy that selects nothing" || bad "explain lint note"
"$CTL" check "$d" | grep -q "selects no pod" && bad "lint without a problem" || ok "no lint warning where selectors match"

# the agent's entity settings, offline: world is what lies outside
# --pod-cidrs (nothing while no pod range is known), kube-apiserver is
# --apiserver-addresses
w=$tmp/world; mkdir -p "$w"
{ printf "$POD" api-0 x api 10.9.1.1;
  printf 'apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: api, namespace: x}\nspec:\n  application: api\n  inbound:\n    external: [{entity: world}, {entity: kube-apiserver}]\n'; } > "$w/all.yaml"
"$CTL" explain --from "$w" 198.51.100.7 x/api-0 --port 443 | head -n 1 | grep -q DENIED \
    && ok "explain: world holds nothing without a pod range" || bad "world without --pod-cidrs"
"$CTL" explain --from "$w" --pod-cidrs 10.9.0.0/16 198.51.100.7 x/api-0 --port 443 | head -n 1 | grep -q ALLOWED \
    && ok "explain --pod-cidrs: an outside address is world" || bad "world with --pod-cidrs"
"$CTL" explain --from "$w" --pod-cidrs 10.9.0.0/16 10.9.7.7 x/api-0 --port 443 | head -n 1 | grep -q DENIED \
    && ok "explain --pod-cidrs: an address of the pod range is not world" || bad "pod range is world"
"$CTL" explain --from "$w" --apiserver-addresses 172.16.0.10 172.16.0.10 x/api-0 --port 443 | head -n 1 | grep -q ALLOWED \
    && ok "explain --apiserver-addresses: the kube-apiserver entity" || bad "kube-apiserver entity"
out=$("$CTL" explain --from "$w" --pod-cidrs 10.9.0.0/33 1.2.3.4 x/api-0 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q -- '--pod-cidrs 10.9.0.0/33: "10.9.0.0/33" is not an IP address or CIDR' \
    && ok "a bad --pod-cidrs is refused, naming it" || bad "bad --pod-cidrs: rc=$rc $out"

[ $fail -eq 0 ] && echo "agentctl: all passed"
exit $fail
