#!/bin/sh
# Local stand-ins for the two base images of deploy/Dockerfile, made from
# Debian 12 packages, for machines that cannot pull images (the test bed
# has no registry). The published image is built on the real bases; these
# only let the test suite build and run the same Dockerfile.
#
#   base-images.sh           make both if missing; print BUILD_BASE RUN_BASE
#
#   corral-local/debian:12-slim        debootstrap --variant=minbase bookworm,
#                                      `docker import`ed (what debian:12-slim is)
#   corral-local/distroless-cc:debian12  what gcr.io/distroless/cc-debian12
#                                      holds, and nothing more: glibc,
#                                      libgcc, libgomp, libstdc++, OpenSSL,
#                                      CA certificates, tzdata, base-files,
#                                      netbase, /etc/passwd and /etc/group
#                                      (root, nobody, nonroot 65532); no
#                                      shell, no binary at all
#
# Each is made once per machine (kept by Docker under its tag); the .debs
# come through apt (Debian's mirror), as the machine's apt is set up.
# CORRAL_BASE_REBUILD=1 makes them again.
set -eu
BUILD_BASE=corral-local/debian:12-slim
RUN_BASE=corral-local/distroless-cc:debian12
MIRROR=${CORRAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { [ "${CORRAL_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

tmp=$(mktemp -d /tmp/corral-base-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if ! have "$BUILD_BASE"; then
	command -v debootstrap >/dev/null || { echo "base-images.sh: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
	echo "base-images.sh: debootstrap of Debian 12 (minbase) for $BUILD_BASE" >&2
	debootstrap --variant=minbase bookworm "$tmp/build" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
	# as the slim image: no apt lists, no package caches, no docs
	rm -rf "$tmp/build/var/lib/apt/lists/"* "$tmp/build/var/cache/apt/"*.bin "$tmp/build/var/cache/apt/archives/"*.deb \
		"$tmp/build/usr/share/doc/"* "$tmp/build/usr/share/man/"*
	tar -C "$tmp/build" -c . | docker import -c 'CMD ["bash"]' - "$BUILD_BASE" >/dev/null
	rm -rf "$tmp/build"
fi

if ! have "$RUN_BASE"; then
	echo "base-images.sh: $RUN_BASE from Debian 12 packages" >&2
	mkdir -p "$tmp/debs" "$tmp/run"
	chmod 755 "$tmp"; chmod 777 "$tmp/debs" # apt downloads as its own user, _apt
	debs="libc6 libgcc-s1 libgomp1 libstdc++6 libssl3 ca-certificates tzdata base-files netbase"
	# shellcheck disable=SC2086
	(cd "$tmp/debs" && { apt-get download -q=2 $debs >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get download -q=2 $debs >/dev/null; }; }) ||
		{ echo "base-images.sh: apt-get download failed" >&2; exit 1; }
	for d in "$tmp"/debs/*.deb; do dpkg-deb -x "$d" "$tmp/run"; done
	r=$tmp/run
	# what the packages' maintainer scripts would have made: the CA bundle
	mkdir -p "$r/etc/ssl/certs"
	find "$r/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat >"$r/etc/ssl/certs/ca-certificates.crt"
	# no programs: the packages' own tools (update-ca-certificates, ...) go
	rm -rf "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/lintian"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' >"$r/etc/group"
	mkdir -p "$r/tmp" "$r/root" "$r/home/nonroot"
	chmod 1777 "$r/tmp"
	chmod 700 "$r/root"
	chown 65532:65532 "$r/home/nonroot"
	if find "$r" -name sh -o -name bash -o -name dash -o -name busybox | grep -q .; then
		echo "base-images.sh: a shell in $RUN_BASE" >&2; exit 1
	fi
	tar -C "$r" -c . | docker import -c 'USER 0:0' - "$RUN_BASE" >/dev/null
fi
echo "$BUILD_BASE $RUN_BASE"
