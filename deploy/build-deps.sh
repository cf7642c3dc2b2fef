#!/bin/sh
# The build stage's packages (deploy/Dockerfile): a C toolchain, CMake and
# the -dev libraries corral links, for the architecture the image is for
# (ARCH: a Debian architecture, amd64 or arm64; default this machine's).
# For another architecture than the builder's own, Debian's cross
# toolchain (crossbuild-essential-ARCH) and the ARCH -dev packages
# (multiarch: dpkg --add-architecture), so that an arm64 image builds on
# amd64 without emulation.
#   build-deps.sh [ARCH]
set -eu
native=$(dpkg --print-architecture)
arch=${1:-$native}
libs="libnftnl-dev libmnl-dev libnl-3-dev libnl-route-3-dev libjansson-dev libcurl4-openssl-dev libyaml-dev libldns-dev
      libmicrohttpd-dev"
if [ "$arch" = "$native" ]; then
	pkgs="build-essential cmake pkg-config $libs"
else
	dpkg --add-architecture "$arch"
	pkgs="crossbuild-essential-$arch cmake pkg-config $(for l in $libs; do printf '%s:%s ' "$l" "$arch"; done)"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $pkgs
