#!/usr/bin/env bash
# A Debian arm64 root with Python 3.11, and aarch64 wheels of numpy and onnxruntime, to run the
# torch-free runtime under qemu-aarch64 (no second debootstrap stage, no binfmt): tests/cross.
#
#   tests/cross/make_aarch64_root.sh DIR PYTHON   → DIR/root (usr/bin/python3.11), DIR/site (wheels)
#
# Needs root (debootstrap), Debian's debootstrap and qemu-user, and the network to a Debian
# mirror (the apt source's, or $DEBIAN_MIRROR) and to PyPI. onnxruntime 1.19.2: 1.32's aarch64
# wheel segfaults at import under qemu 7.2, and JetPack 6's builds are 1.17-1.20 anyway.
# DIR appears whole or not at all.
set -euo pipefail
dir=$1
python=$2
mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' \
    | grep -v security | head -n 1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$(dirname "$dir")"
staging=$(mktemp -d "$dir.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 bookworm "$staging/bootstrap" "$mirror" \
    >"$staging/debootstrap.log" 2>&1 || { tail -n 20 "$staging/debootstrap.log" >&2; exit 1; }
mkdir "$staging/root"
for deb in "$staging"/bootstrap/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$staging/root"
done
rm -rf "$staging/bootstrap" "$staging/debootstrap.log"
"$python" -m pip install --quiet --disable-pip-version-check --target "$staging/site" --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux2014_aarch64 "numpy>=1.24,<3" onnxruntime==1.19.2
test -x "$staging/root/usr/bin/python3.11"
mv "$staging" "$dir"
trap - EXIT
