#!/usr/bin/env bash
# Runs on the GPU machine over binaries carried in .carry/ (see
# docs/ARCHITECTURE.md, "GPU runs"): the GPU tests, then a benchmark
# (BENCH=bench_streaming by default, or bench_multi_gpu on nvidia-h200-x2),
# whose JSON ($OUT/streaming.json, $OUT/multi_gpu.json) bench/run_bench.sh
# turns into its section of bench/RESULTS.md:
#   GPU_NAME=... MACHINE=... PARTS=multi_gpu FROM_JSON=<json> bench/run_bench.sh
# Logs and JSON go to $OUT.
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
echo "host: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB" | tee "$OUT/host.txt"
if [ "${RUN_TESTS:-1}" = 1 ]; then
  start=$(date +%s)
  "$C/tests/faiss_gmm_tests" --gtest_filter="${TEST_FILTER:-*Gpu*}" > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|FAILED  \]" "$OUT/gpu_tests.log" | tail -15
fi
if [ "${RUN_BENCH:-1}" = 1 ]; then
  B=${BENCH:-bench_streaming}
  part=${B#bench_}
  "$C/bench/$B" --benchmark_out="$OUT/$part.json" --benchmark_out_format=json \
      ${BENCH_FILTER:+--benchmark_filter=$BENCH_FILTER} > "$OUT/$part.log" 2>&1
  echo "bench rc=$?"
  grep -E "^BM_|rc=" "$OUT/$part.log" | tail -12
fi
