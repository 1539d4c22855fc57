#!/usr/bin/env bash
# Runs on the GPU machine over binaries built here and carried in .carry/
# (see docs/ARCHITECTURE.md, "GPU runs"): GPU tests, then the benchmark,
# which rewrites bench/RESULTS.md; logs and results go to $OUT.
# SANITIZE=1 first runs compute-sanitizer (issue 18): memcheck, synccheck and
# initcheck over a subset reaching every kernel family and precision, and
# racecheck over the GpuTiny shapes (a few hundred rows, k <= 64), which it
# can finish; the ERROR SUMMARY lines are printed.
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
if [ "${SANITIZE:-0}" = 1 ]; then
  T="$C/tests/faiss_gmm_tests"
  SUBSET="GpuTiny.*:GpuEStep.ExtremeShapes:GpuAssign.*:*GpuSeedingShapes*:*GpuTopShapes*:GpuStreaming.SourcesOfEveryTypeMatchFloat64:GpuStreaming.DeviceGeneratedRowsEqualTheHosts"
  # One call per tool fits the device tool's 10 minutes: SANITIZE_TOOLS=memcheck, ...
  # SANITIZE_TIMEOUT (seconds per tool, 540 by default) lets several tools share a call;
  # RACECHECK_FILTER narrows racecheck to one GpuTiny test when both do not fit one call.
  for tool in ${SANITIZE_TOOLS:-memcheck synccheck initcheck racecheck}; do
    filter="$SUBSET"
    [ $tool = racecheck ] && filter="${RACECHECK_FILTER:-GpuTiny.*}"
    timeout ${SANITIZE_TIMEOUT:-540} compute-sanitizer --tool $tool --error-exitcode 9 "$T" --gtest_filter="$filter" \
      > "$OUT/sanitizer_$tool.log" 2>&1
    echo "compute-sanitizer $tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_$tool.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/sanitizer_$tool.log" | tr '\n' ' ')"
  done
fi
"$C/tests/faiss_gmm_tests" --gtest_filter="${TEST_FILTER:-*Gpu*}" > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|FAILED  \]" "$OUT/gpu_tests.log" | tail -15
if [ "${RUN_BENCH:-1}" = 1 ]; then
  GPU_NAME="$(head -1 "$OUT/gpu.txt")" bench/run_bench.sh "$C" > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"
  cp bench/RESULTS.md "$OUT/RESULTS.md"
  grep -E "gpu" bench/RESULTS.md | grep -E "\| (1000000|10000000) \| 1024 \| 128 " || tail -5 "$OUT/bench.log"
fi
