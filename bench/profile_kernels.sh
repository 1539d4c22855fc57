#!/usr/bin/env bash
# ncu per-kernel time, instructions and tensor-pipe use at (1M, 1024, 128) for
# each covariance x precision (run on the GPU machine over .carry/ binaries).
for cfg in "diag:0/prec:0" "diag:1/prec:0" "diag:0/prec:1" "diag:1/prec:1" "diag:0/prec:2" "diag:1/prec:2"; do
  ncu --clock-control none --metrics gpu__time_duration.sum,smsp__inst_executed.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active -c 3 .carry/bench/bench_estep --benchmark_filter="BM_GpuEStep/N:1000000/K:1024/D:128/$cfg" --benchmark_min_time=0.01 2>&1 | grep -E "_kernel|duration|inst_executed|hmma" | sed "s|^|$cfg |" | sed 's/(const float.*//' 
done
