#!/bin/bash
# link-with-archives.sh: the link launcher of meshtel-proxy (CMake RULE_LAUNCH_LINK, see
# proxy/CMakeLists.txt). It runs the link command it is given, with each of the proxy's heavy
# system libraries — gRPC, protobuf, Abseil, OpenSSL, re2, c-ares, upb, zlib, yaml-cpp, Boost —
# taken from its static archive (libX.a, installed by the same Debian -dev package beside libX.so)
# instead of its shared object, and with unused sections dropped (--gc-sections).
#
# Why: a sidecar runs beside every workload. Mapped shared objects count in its resident memory by
# the pages it touches, and the kernel maps whole runs of neighbouring pages on each fault: idle,
# the dynamically linked proxy held 16 MiB of library pages (libgrpc alone 5 MiB). Linked this way
# it holds only the code it uses (docs/benchmarks.md, "Proxy memory").
#
# libc, libstdc++, libm and the libraries Debian ships only as shared objects (spdlog, fmt,
# prometheus-cpp) stay shared. A library whose archive is missing stays shared too, and the
# launcher says so on stderr.
set -euo pipefail

static_name() {  # static_name LIBNAME: true when LIBNAME is linked from its archive
  case $1 in
    grpc | grpc++ | gpr | upb | address_sorting | re2 | cares | ssl | crypto | z | protobuf | \
      yaml-cpp | boost_* | absl_*) return 0 ;;
    *) return 1 ;;
  esac
}

command=()
for arg in "$@"; do
  name=""
  case $arg in
    /*/lib*.so | /*/lib*.so.*)
      file=${arg##*/}
      name=${file#lib}
      name=${name%%.so*}
      archive="${arg%/*}/lib$name.a"
      ;;
    -l*)
      name=${arg#-l}
      archive=$("${CXX:-c++}" -print-file-name="lib$name.a")
      ;;
  esac
  if [[ -n $name ]] && static_name "$name"; then
    if [[ -f $archive ]]; then
      command+=("$archive")
      continue
    fi
    echo "link-with-archives: no archive for lib$name ($archive): linking it shared" >&2
  fi
  command+=("$arg")
done
exec "${command[@]}" -Wl,--gc-sections
