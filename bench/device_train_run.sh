#!/usr/bin/env bash
# Runs on the GPU machine over binaries carried in .carry/ (see
# docs/ARCHITECTURE.md, "GPU runs"): the GPU tests (TEST_FILTER, default
# every *Gpu* and KMeans test), bench_train (BENCH_FILTER) into
# $OUT/train.json, and the command-line timings of issue 13 (CLI=1):
# `train` as a new user runs it, `train --algo kmeans`, and `build
# --factory IVF4096,Flat` on 1M x 128 (training + adding). Then
#   GPU_NAME=... MACHINE=... PARTS=train FROM_JSON=$OUT/train.json bench/run_bench.sh
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
if [ "${RUN_TESTS:-1}" = 1 ]; then
  start=$(date +%s)
  "$C/tests/faiss_gmm_tests" --gtest_filter="${TEST_FILTER:-*Gpu*:KMeans*}" > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|FAILED  \]" "$OUT/gpu_tests.log" | tail -15
fi
if [ "${CLI:-1}" = 1 ]; then
  F="$C/faiss-gmm"
  t() { local s=$(date +%s%N); echo "== ${*:2}" >> "$OUT/cli.log"; "$@" > /dev/null 2>> "$OUT/cli.log"; local rc=$?
         echo "$(( ($(date +%s%N) - s) / 1000000 )) ms rc=$rc: ${*:2}" | tee -a "$OUT/cli.txt"; }
  t "$F" train --data synthetic:262144x128,k=256 -k 1024 --niter 20 --tol 0 --device gpu --precision bf16 --means-out /tmp/m1.fvecs
  t "$F" train --data synthetic:1048576x128,k=1024 -k 4096 --niter 20 --tol 0 --device gpu --precision bf16 --means-out /tmp/m2.fvecs
  t "$F" train --data synthetic:262144x128,k=256 -k 1024 --niter 20 --tol 0 --device gpu --precision bf16 --init kmeans++ --means-out /tmp/m4.fvecs
  t "$F" train --algo kmeans --data synthetic:1048576x128,k=1024 -k 4096 --niter 30 --device gpu --precision bf16 --means-out /tmp/m3.fvecs
  t "$F" build --data synthetic:1000000x128,k=1024 --factory IVF4096,Flat --out /tmp/i1.faiss --device gpu --precision bf16
  t "$F" build --kmeans --data synthetic:1000000x128,k=1024 --factory IVF4096,Flat --out /tmp/i2.faiss --device gpu --precision bf16
  grep -E "trained in|wrote|k-means trained" "$OUT/cli.log" | tail -8
fi
if [ "${RUN_BENCH:-1}" = 1 ]; then
  # K <= 16384 first, then K = 65536 in its own file (a minute or more a case):
  # a run cut short by the call's limit still leaves the first JSON whole.
  "$C/bench/bench_train" --benchmark_out="$OUT/train.json" --benchmark_out_format=json \
      --benchmark_filter="${BENCH_FILTER:-/K:(1024|4096|16384)/}" > "$OUT/train.log" 2>&1
  echo "bench rc=$?"
  grep -E "^BM_" "$OUT/train.log" | tail -12
  if [ "${BIG:-1}" = 1 ]; then
    timeout "${BIG_TIMEOUT:-300}" "$C/bench/bench_train" --benchmark_out="$OUT/train65k.json" \
        --benchmark_out_format=json --benchmark_filter="${BIG_FILTER:-/K:65536/u8:1}" \
        > "$OUT/train65k.log" 2>&1
    echo "bench K=65536 rc=$?"
    grep -E "^BM_" "$OUT/train65k.log" | tail -4
  fi
fi
