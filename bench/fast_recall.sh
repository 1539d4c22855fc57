#!/usr/bin/env bash
# Issue 16's recall check of the fast class: IVF<nlist>,Flat over the whole
# realsift1m base from GMM models fitted on the H200 in the fp32 and the
# fast class from the same sample, seeds and initial rows (the GPU k-means
# runs in each class's precision too)
# (bench/device_realsift_models.sh with PRECISIONS="fp32 fast"), single
# assignment, FAISS's distance probing; 10-recall@10 per nprobe on the
# first QUERIES queries; each final model's mean log-likelihood on the
# training sample in float64 (bench/score_model.py). Writes
# bench/ivf_results/realsift1m-precision.md: the fast model's recall and
# log-likelihood against fp32's, next to the spread between seeds.
#   MODELS=<dir of gmm-*.gmm> bench/fast_recall.sh [build-dir]
# PREP (bench/realsift_prep.py's output, made when absent), WORK (default
# /tmp/fast_recall), NLISTS="1024 4096", COVS="spherical diagonal",
# SEEDS="1 2", QUERIES=3000.
set -euo pipefail
BUILD=${1:-build}
F=${FAISS_GMM_BIN:-$PWD/$BUILD/faiss-gmm}
D=${DATA:-$PWD/../shared/data/realsift1m}
PREP=${PREP:-/tmp/realsift_prep}
W=${WORK:-/tmp/fast_recall}
M=${MODELS:?MODELS= the folder of the H200-fitted models}
QUERIES=${QUERIES:-3000}
mkdir -p "$W" bench/ivf_results
start=$(date +%s)
[ -f "$PREP/sample.u8bin" ] || /usr/bin/python3 bench/realsift_prep.py "$D" "$PREP"
for nlist in ${NLISTS:-1024 4096}; do
  mkdir -p "$W/nlist$nlist"
  probes=4,6,8,10,12,16,20,24,32
  [ "$nlist" = 1024 ] || probes=4,6,8,12,16,24,32,48,64,96
  for cov in ${COVS:-spherical diagonal}; do
    for seed in ${SEEDS:-1 2}; do
      for prec in fp32 fast; do
        model=$M/gmm-$cov-$nlist-$seed.gmm
        [ $prec = fp32 ] || model=$M/gmm-$cov-$nlist-$seed-$prec.gmm
        ll=$W/$(basename "$model" .gmm).ll  # float64 score on the training sample
        [ -f "$ll" ] || /usr/bin/python3 bench/score_model.py "$model" "$PREP/sample.u8bin" > "$ll"
        out=$W/nlist$nlist/gmm-${cov:0:4}-$prec.distance.$seed.eval
        [ -f "$out" ] && continue
        idx=$W/nlist$nlist/tmp.index
        "$F" build --data "$D/realsift1m_base.u8bin" --factory "IVF$nlist,Flat" --device cpu \
            --seed "$seed" --quiet --model "$model" --out "$idx" > "$out.build" 2>&1
        "$F" eval --index "$idx" --queries "$D/realsift1m_query.u8bin" \
            --gt "$D/realsift1m_groundtruth.ivecs" --nprobe $probes --max-queries "$QUERIES" \
            > "$out.tmp" 2>&1
        cat "$out.build" >> "$out.tmp" && rm -f "$out.build" "$idx"
        mv "$out.tmp" "$out"
        echo "$(basename "$out") done ($(( $(date +%s) - start )) s)"
      done
    done
  done
done
/usr/bin/python3 bench/realsift_summary.py precision "$W" "$M" "$QUERIES" \
    > bench/ivf_results/realsift1m-precision.md.tmp
mv bench/ivf_results/realsift1m-precision.md.tmp bench/ivf_results/realsift1m-precision.md
echo "wrote bench/ivf_results/realsift1m-precision.md ($(( $(date +%s) - start )) s)"
