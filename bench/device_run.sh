#!/usr/bin/env bash
# Runs on the GPU machine over binaries built here and carried in .carry/
# (see docs/ARCHITECTURE.md, "GPU runs"): GPU tests, then the benchmark,
# which rewrites bench/RESULTS.md; logs and results go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
"$C/tests/faiss_gmm_tests" --gtest_filter="${TEST_FILTER:-*Gpu*}" > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|FAILED  \]" "$OUT/gpu_tests.log" | tail -15
if [ "${RUN_BENCH:-1}" = 1 ]; then
  GPU_NAME="$(head -1 "$OUT/gpu.txt")" bench/run_bench.sh "$C" > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"
  cp bench/RESULTS.md "$OUT/RESULTS.md"
  grep -E "gpu" bench/RESULTS.md | grep -E "\| (1000000|10000000) \| 1024 \| 128 " || tail -5 "$OUT/bench.log"
fi
