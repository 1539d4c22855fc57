#!/usr/bin/env bash
# Runs on the GPU machine (see bench/run_realsift.sh): fits the GMM
# quantizers of the realsift1m benchmark on the carried training sample
# (.carry/sample.u8bin.xz, made by bench/realsift_prep.py), into
# $OUT/models/gmm-<cov>-<nlist>-<seed>.gmm (fp32 E-step) and
# gmm-<cov>-<nlist>-<seed>-<precision>.gmm for the other precisions, with
# their logs. NLISTS="1024 4096", COVS="spherical diagonal", SEEDS="1 2",
# PRECISIONS="fp32" (bench/fast_recall.sh compares "fp32 fast").
set -uo pipefail
source "$(dirname "$0")/device_setup.sh"
xz -dc $C/sample.u8bin.xz > /tmp/sample.u8bin
mkdir -p "$OUT/models"
for nlist in ${NLISTS:-1024 4096}; do
  for cov in ${COVS:-spherical diagonal}; do
    for seed in ${SEEDS:-1 2}; do
      for prec in ${PRECISIONS:-fp32}; do
        name=gmm-$cov-$nlist-$seed
        [ "$prec" = fp32 ] || name=$name-$prec
        s=$(date +%s%N)
        "$C/faiss-gmm" train --data /tmp/sample.u8bin -k $nlist --cov $cov --seed $seed \
            --device gpu --precision $prec --model-out "$OUT/models/$name.gmm" \
            > "$OUT/models/$name.log" 2>&1
        echo "$name rc=$? $(( ($(date +%s%N) - s) / 1000000 )) ms $(grep -E 'final|log-lik' "$OUT/models/$name.log" | tail -1)"
      done
    done
  done
done
