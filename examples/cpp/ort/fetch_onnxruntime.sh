#!/usr/bin/env bash
# Put ONNX Runtime's C/C++ headers and shared library where CMakeLists.txt looks by default:
#
#   DEST/include/onnxruntime_cxx_api.h, onnxruntime_c_api.h, ...
#   DEST/lib/libonnxruntime.so -> the library inside the onnxruntime Python wheel
#
# usage: examples/cpp/ort/fetch_onnxruntime.sh [DEST]    (DEST: examples/cpp/ort/third_party/onnxruntime)
#        PYTHON=/path/to/python to choose the Python whose onnxruntime wheel to link (default:
#        the repo's .venv, else python3)
#
# Why this way, on Debian 12: bookworm has no onnxruntime package, and the onnxruntime wheel
# ships libonnxruntime.so but no headers. Debian 13's libonnxruntime-dev has the headers; this
# script downloads that one .deb with apt-get into a private folder (nothing is installed, the
# system's apt sources are untouched) and unpacks its headers. Headers of an older ONNX Runtime
# work with a newer library: the C API is versioned and newer libraries serve older versions,
# which the script checks (ORT_API_VERSION <= the library's minor version).
# Where the headers are installed already (libonnxruntime-dev on Debian 13+), they are used.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
dest=${1:-$here/third_party/onnxruntime}
python=${PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x $repo/.venv/bin/python ]]; then python=$repo/.venv/bin/python; else python=python3; fi
fi
suite=trixie  # Debian 13: the first release with libonnxruntime-dev 1.21
die() { echo "fetch_onnxruntime.sh: error: $*" >&2; exit 1; }

# 1. The library: the one the Python runtime uses, so C++ and Python run the same code.
lib=$("$python" - <<'EOF'
import glob, os, onnxruntime
found = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))
print(found[0] if found else "")
EOF
) || die "$python has no onnxruntime: pip install onnxruntime (or set PYTHON=...)"
[[ -n $lib ]] || die "no libonnxruntime.so.* inside $python's onnxruntime package"
lib_version=${lib##*libonnxruntime.so.}  # e.g. 1.32.0
mkdir -p "$dest/lib" "$dest/include"
ln -sfn "$lib" "$dest/lib/libonnxruntime.so"
ln -sfn "$lib" "$dest/lib/libonnxruntime.so.1"  # its SONAME: what the executable loads

# 2. The headers.
if [[ -f $dest/include/onnxruntime_cxx_api.h ]]; then
  echo "headers: already in $dest/include"
elif [[ -f /usr/include/onnxruntime/onnxruntime_cxx_api.h ]]; then
  cp /usr/include/onnxruntime/*.h "$dest/include/"
  echo "headers: copied from /usr/include/onnxruntime"
else
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "no ONNX Runtime headers: this script gets them with apt-get and dpkg-deb (Debian, Ubuntu); elsewhere unpack an onnxruntime release archive and pass -DONNXRUNTIME_ROOT=DIR to cmake"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    > "$work/sources.list"
  apt_options=(-qq -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
               -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
               -o APT::Sandbox::User="$(id -un)")
  apt-get "${apt_options[@]}" update || die "apt-get could not read Debian $suite's package index"
  (cd "$work" && apt-get "${apt_options[@]}" download libonnxruntime-dev) \
    || die "apt-get could not download libonnxruntime-dev from Debian $suite"
  dpkg-deb -x "$work"/libonnxruntime-dev_*.deb "$work/root"
  cp "$work"/root/usr/include/onnxruntime/*.h "$dest/include/"
  echo "headers: $(basename "$work"/libonnxruntime-dev_*.deb) from Debian $suite"
fi

# 3. The headers' C API version must be one the library serves.
api=$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$dest/include/onnxruntime_c_api.h")
lib_minor=$(echo "$lib_version" | cut -d. -f2)
[[ -n $api && $api -le $lib_minor ]] \
  || die "headers declare ORT_API_VERSION ${api:-?}, newer than the library $lib_version serves: use older headers or a newer onnxruntime"
echo "library: $lib (ONNX Runtime $lib_version, serves C API <= $lib_minor; headers use $api)"
echo "ONNX Runtime ready in $dest"
