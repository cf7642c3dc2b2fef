#!/bin/sh
# The image's files, built the way the Dockerfile builds them (same script,
# no Docker): both binaries are there, every library they load is either in
# the rootfs or provided by the distroless base, there is no shell, and the
# binaries run from it.
#   test-rootfs.sh REPO
set -eu
repo=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$repo/deploy/build-rootfs.sh" "$tmp/rootfs" "$tmp/build" >/dev/null
fail=0
for b in corral-agent agentctl; do
	[ -x "$tmp/rootfs/usr/bin/$b" ] || { echo "FAIL: /usr/bin/$b missing"; fail=1; }
done
[ ! -e "$tmp/rootfs/bin/sh" ] && [ ! -e "$tmp/rootfs/usr/bin/sh" ] || { echo "FAIL: a shell in the rootfs"; fail=1; }
base='libc.so.* libm.so.* libpthread.so.* libdl.so.* librt.so.* ld-linux* libgcc_s.so.* libssl.so.* libcrypto.so.*'
for b in corral-agent agentctl; do
	for lib in $(ldd "$tmp/rootfs/usr/bin/$b" | awk '/=> \// {print $3}'); do
		name=$(basename "$lib")
		inbase=0
		for pat in $base; do case "$name" in $pat) inbase=1 ;; esac; done
		if [ $inbase = 0 ] && [ ! -e "$tmp/rootfs$lib" ]; then
			echo "FAIL: $b needs $lib, which the image does not carry"; fail=1
		fi
	done
done
# run them from the rootfs' libraries alone (plus the base's)
libdir=$(find "$tmp/rootfs" -name 'libnftnl.so*' -exec dirname {} \; | head -1)
LD_LIBRARY_PATH=$libdir "$tmp/rootfs/usr/bin/agentctl" --help >/dev/null || { echo "FAIL: agentctl does not run"; fail=1; }
LD_LIBRARY_PATH=$libdir "$tmp/rootfs/usr/bin/corral-agent" --help >/dev/null || { echo "FAIL: corral-agent does not run"; fail=1; }
echo "rootfs: $(find "$tmp/rootfs" -type f | wc -l) files, $(du -sh "$tmp/rootfs" | cut -f1)"
find "$tmp/rootfs" -type f | sed "s|$tmp/rootfs||" | sort
exit $fail
