#!/usr/bin/env bash
# Runs on the GPU machine over binaries built here and carried in .carry/
# (see docs/ARCHITECTURE.md, "GPU runs"): GPU tests, then the benchmark,
# which rewrites bench/RESULTS.md; logs and results go to $OUT.
# SANITIZE=1 first runs compute-sanitizer (issue 18): memcheck, synccheck and
# initcheck over a subset reaching every kernel family and precision, and
# racecheck over the GpuTiny shapes (a few hundred rows, k <= 64), one run
# per test; the ERROR SUMMARY lines are printed.
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
if [ "${SANITIZE:-0}" = 1 ]; then
  T="$C/tests/faiss_gmm_tests"
  SUBSET="GpuTiny.*:GpuEStep.ExtremeShapes:GpuAssign.*:*GpuSeedingShapes*:*GpuTopShapes*:GpuStreaming.SourcesOfEveryTypeMatchFloat64:GpuStreaming.DeviceGeneratedRowsEqualTheHosts"
  # Measured on the H200 (2026-12-05): memcheck, synccheck and initcheck take
  # ~90 s each over SUBSET; racecheck (H100, 2026-12-05) 124 s for
  # GpuTiny.SphericalAndDiagonalKernels and 200 s for GpuTiny.FullKernels.
  # SANITIZE_TIMEOUT (seconds per run, 540 by default) lets several share the
  # device tool's 10 minutes, e.g.
  # SANITIZE_TOOLS="memcheck synccheck initcheck" SANITIZE_TIMEOUT=150 in one
  # call and racecheck in another. racecheck runs once per test named in
  # RACECHECK_FILTER (':'-separated), each with its own log and summary line.
  sanitize() {  # tool, gtest filter, log name
    timeout ${SANITIZE_TIMEOUT:-540} compute-sanitizer --tool $1 --error-exitcode 9 "$T" --gtest_filter="$2" \
      > "$OUT/sanitizer_$3.log" 2>&1
    echo "compute-sanitizer $3 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer_$3.log" | tail -1) $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/sanitizer_$3.log" | tr '\n' ' ')"
  }
  for tool in ${SANITIZE_TOOLS:-memcheck synccheck initcheck racecheck}; do
    if [ $tool = racecheck ]; then
      for t in $(echo "${RACECHECK_FILTER:-GpuTiny.SphericalAndDiagonalKernels:GpuTiny.FullKernels}" | tr ':' ' '); do
        sanitize racecheck "$t" "racecheck_${t#*.}"
      done
    else
      sanitize $tool "$SUBSET" $tool
    fi
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
