#!/bin/sh
# Builds corral-agent and agentctl and lays out the run image's files under
# ROOTFS: the two binaries and the shared libraries they need that the
# distroless base (gcr.io/distroless/cc-debian12: glibc, libgcc, libssl,
# CA certificates) does not already carry. The Dockerfile runs this in its
# build stage (tests/deploy/test-image.py builds and runs the image).
#
# ARCH (amd64 or arm64; default this machine's): another architecture than
# this machine's is cross-compiled with Debian's cross toolchain and the
# ARCH -dev packages (deploy/build-deps.sh ARCH installs them;
# tests/deploy/test-arm64.py builds and checks the arm64 root filesystem).
#   build-rootfs.sh ROOTFS [BUILD-DIR] [ARCH]
set -eu
rootfs=${1:?usage: build-rootfs.sh ROOTFS [BUILD-DIR] [ARCH]}
build=${2:-build-release}
native=$(dpkg --print-architecture)
arch=${3:-$native}
[ -n "$arch" ] || arch=$native
case "$arch" in
amd64) triplet=x86_64-linux-gnu ;;
arm64) triplet=aarch64-linux-gnu ;;
*) echo "build-rootfs.sh: architecture $arch: amd64 or arm64" >&2; exit 1 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
cross=""
if [ "$arch" != "$native" ]; then
	# the target's compiler, and its libraries' pkg-config files only
	cross="-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=${triplet%%-*} -DCMAKE_C_COMPILER=$triplet-gcc"
	export PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"
fi
# shellcheck disable=SC2086
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCORRAL_TESTS=OFF $cross >/dev/null
cmake --build "$build" -j "$(nproc)" --target corral-agent agentctl
cmake --install "$build" --prefix "$rootfs/usr" --strip >/dev/null

# libraries: the closure of DT_NEEDED (readelf reads any architecture's
# ELF; ldd cannot run a cross-compiled binary), found where Debian puts
# the target's libraries, except what the base image provides
readelf=$(command -v "$triplet-readelf" || command -v readelf)
needed() { "$readelf" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
find_lib() {
	for d in /lib/$triplet /usr/lib/$triplet; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	echo "build-rootfs.sh: $1 ($arch) not found in /lib/$triplet or /usr/lib/$triplet" >&2
	return 1
}
seen=" "
queue="$rootfs/usr/bin/corral-agent $rootfs/usr/bin/agentctl"
while [ -n "$queue" ]; do
	set -- $queue
	file=$1; shift; queue="$*"
	for lib in $(needed "$file"); do
		case "$seen" in *" $lib "*) continue ;; esac
		seen="$seen$lib "
		case "$lib" in
		libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libgcc_s.so.*|libssl.so.*|libcrypto.so.*) continue ;;
		esac
		path=$(find_lib "$lib")
		mkdir -p "$rootfs$(dirname "$path")"
		cp -L "$path" "$rootfs$path"
		queue="$queue $path"
	done
done
echo "rootfs ($arch): $(find "$rootfs" -type f | wc -l) files in $rootfs"
