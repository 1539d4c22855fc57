#!/usr/bin/env bash
# Packs what a GPU run needs into the ignored .carry/ folder (docs/ARCHITECTURE.md,
# "GPU runs"): the stripped faiss_gmm_tests, bench_estep (+ any other bench
# executables built) and faiss-gmm of build dir $1 (default build-dev) as
# .carry/bin.tar.xz, and the shared libraries the GPU machine lacks (OpenBLAS,
# LAPACK, Google Benchmark) as .carry/lib.tar.xz. Usage: bench/pack_carry.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-dev}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin/tests" "$T/bin/bench" "$T/lib" .carry
cp "$B/tests/faiss_gmm_tests" "$T/bin/tests/"
for b in bench_estep bench_streaming bench_train bench_search bench_multi_gpu ivf_recall; do
  [ -x "$B/bench/$b" ] && cp "$B/bench/$b" "$T/bin/bench/"
done
cp "$B/faiss-gmm" "$T/bin/"
strip --strip-unneeded "$T"/bin/tests/* "$T"/bin/bench/* "$T/bin/faiss-gmm"
# The libraries any packed executable links (bench_estep need not be built).
deps=$(ldd "$T"/bin/tests/* "$T"/bin/bench/* "$T/bin/faiss-gmm" 2>/dev/null || true)
for l in libbenchmark.so.1debian libblas.so.3 liblapack.so.3 libopenblas.so.0 libquadmath.so.0; do
  p=$(awk -v l=$l '$1 == l { print $3; exit }' <<< "$deps")
  [ -n "$p" ] && cp -L "$p" "$T/lib/$l"
done
strip --strip-unneeded "$T"/lib/*
(cd "$T/bin" && tar -cf - .) | xz -T2 -6 > .carry/bin.tar.xz
(cd "$T/lib" && tar -cf - .) | xz -T2 -6 > .carry/lib.tar.xz
ls -l .carry
