#!/bin/sh
# agentctl's outputs for documents and pictures, golden: matrix and diff of
# the shop example (deploy/examples/shop, and the same with the fix the
# demo applies: checkout declares its call to payments) in every format,
# compared with tests/golden/formats/*. svg depends on the Graphviz
# release, so it is checked for what it must show, not byte by byte.
#   formats.sh AGENTCTL REPO [--update]
set -u
ctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") repo=$(cd "$2" && pwd) update=${3:-}
gold=$repo/tests/golden/formats
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
cp -r "$repo/deploy/examples/shop" "$tmp/before"
cp -r "$repo/deploy/examples/shop" "$tmp/after"
cp "$gold/checkout-fixed.yaml" "$tmp/after/checkout.yaml"
cd "$tmp"
# name, then the agentctl arguments (folders relative to $tmp, so that
# the outputs name them the same wherever the test runs)
while read -r name args; do
	[ -n "$name" ] || continue
	# shellcheck disable=SC2086
	"$ctl" $args > "$tmp/$name" 2>"$tmp/$name.err"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "FAIL: agentctl $args: exit $rc: $(cat "$tmp/$name.err")"; fail=1; continue
	fi
	if [ "$update" = --update ]; then
		cp "$tmp/$name" "$gold/$name"
	elif ! diff -u "$gold/$name" "$tmp/$name"; then
		echo "FAIL: agentctl $args differs from tests/golden/formats/$name"; fail=1
	else
		echo "ok: $name"
	fi
done <<LIST
matrix.txt matrix --from before --port 8080
matrix-default.txt matrix --from before
matrix.json matrix --from before --port 8080 -o json
matrix.yaml matrix --from before --port 8080 -o yaml
matrix.md matrix --from before --port 8080 -o md
matrix.csv matrix --from before --port 8080 -o csv
matrix.dot matrix --from after -o dot
matrix-8080.dot matrix --from after --port 8080 -o dot
diff.txt diff --from before --to after
diff.json diff --from before --to after -o json
diff.yaml diff --from before --to after -o yaml
diff.md diff --from before --to after -o md
diff.csv diff --from before --to after -o csv
diff.dot diff --from before --to after -o dot
diff-back.txt diff --from after --to before --port 8080
LIST
if command -v dot >/dev/null 2>&1; then
	for what in "matrix --from after" "diff --from before --to after"; do
		# shellcheck disable=SC2086
		"$ctl" $what -o svg > "$tmp/out.svg" || { echo "FAIL: agentctl $what -o svg"; fail=1; continue; }
		python3 - "$tmp/out.svg" "$what" <<'PY' || fail=1
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
text = " ".join(t.strip() for t in root.itertext())
want = ["checkout-0", "payments-0", "team-shop", "TCP 8080"]
missing = [w for w in want if w not in text]
print(("FAIL: %s -o svg lacks %s" % (sys.argv[2], missing)) if missing else "ok: %s -o svg" % sys.argv[2])
sys.exit(1 if missing else 0)
PY
	done
else
	echo "skipped: -o svg (no Graphviz dot)"
fi
exit $fail
