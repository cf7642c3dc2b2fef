#!/bin/sh
# Builds corral-agent and agentctl and lays out the run image's files under
# ROOTFS: the two binaries and the shared libraries they need that the
# distroless base (gcr.io/distroless/cc-debian12: glibc, libgcc, libssl,
# CA certificates) does not already carry. The Dockerfile runs this in its
# build stage (tests/deploy/test-image.py builds and runs the image).
#   build-rootfs.sh ROOTFS [BUILD-DIR]
set -eu
rootfs=${1:?usage: build-rootfs.sh ROOTFS [BUILD-DIR]}
build=${2:-build-release}
src=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCORRAL_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target corral-agent agentctl
cmake --install "$build" --prefix "$rootfs/usr" --strip >/dev/null
# libraries: everything ldd resolves, except what the base image provides
for bin in "$rootfs/usr/bin/corral-agent" "$rootfs/usr/bin/agentctl"; do
	ldd "$bin" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
	case "$(basename "$lib")" in
	libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libgcc_s.so.*|libssl.so.*|libcrypto.so.*) ;;
	*) mkdir -p "$rootfs$(dirname "$lib")"; cp -L "$lib" "$rootfs$lib" ;;
	esac
done
echo "rootfs: $(find "$rootfs" -type f | wc -l) files in $rootfs"
