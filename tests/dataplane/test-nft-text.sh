#!/bin/sh
# The ruleset built over netlink and the renderer's nft text are the same
# ruleset: apply one with the netlink applier in a fresh namespace, load the
# other with `nft -f` in a second one, and compare what `nft list` shows.
# usage: test-nft-text.sh DP-APPLY AGENTCTL MANIFESTS NODE|-
set -eu
dp_apply=$1 agentctl=$2 manifests=$3 node=$4
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces): skipped"; exit 77; }
a=crtxt-a-$$ b=crtxt-b-$$
tmp=$(mktemp -d)
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
ip netns add "$a"
ip netns add "$b"
if [ "$node" = - ]; then "$agentctl" dump --from "$manifests" > "$tmp/text.nft"
else "$agentctl" dump --from "$manifests" --node "$node" > "$tmp/text.nft"; fi
ip netns exec "$a" "$dp_apply" "$manifests" "$node"
ip netns exec "$b" nft -f "$tmp/text.nft"
ip netns exec "$a" nft list table inet corral > "$tmp/netlink.txt"
ip netns exec "$b" nft list table inet corral > "$tmp/cli.txt"
if ! diff -u "$tmp/cli.txt" "$tmp/netlink.txt"; then
	echo "FAIL: the netlink-built table lists differently from nft -f of the renderer's text" >&2
	exit 1
fi
echo "ok: $(grep -c . "$tmp/netlink.txt") lines identical"
