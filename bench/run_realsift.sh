#!/usr/bin/env bash
# The realsift1m recall benchmark of issue 14 (1M real SIFT, 10k queries,
# exact top-100): IVF<nlist>,Flat over the whole base, k-means and GMM
# quantizers trained on one fixed sample, single assignment and each spill
# rule (at most 2 entries per vector), distance and posterior probing;
# entries scanned per query at 10-recall@10 = 0.90 and 0.95, interpolated
# in log(entries) between nprobe points. Writes bench/ivf_results/realsift1m.md.
#   bench/run_realsift.sh [build-dir]      (from the repository root)
#
# Stages (each skipped when its output exists, so a cut run resumes):
#  1. bench/realsift_prep.py: the training sample (262,144 base rows), the
#     tuning queries (2,000 learn rows) and their exact top-100 in the base.
#  2. GMM models, PREP/models/gmm-<cov>-<nlist>-<seed>.gmm: made on a GPU by
#     bench/device_realsift_models.sh (seconds), else trained here (slow).
#  3. Tuning (nlist 1024, seed 1): T of the tempered rule, SOAR's lambda on
#     the GMM means and, separately, on the k-means centroids, each the value
#     with the fewest entries scanned at 0.90 and 0.95 on the tuning queries.
#     The reported queries are never used for it.
#  4. The grid: NLISTS x SEEDS; posterior probing for every GMM row.
# PREP (default /tmp/realsift_prep), WORK (logs, default /tmp/realsift_work),
# NLISTS="1024 4096", SEEDS="1 2", QUERIES=3000 (the first of the 10,000).
set -euo pipefail
BUILD=${1:-build}
F=${FAISS_GMM_BIN:-$PWD/$BUILD/faiss-gmm}
D=${DATA:-$PWD/../shared/data/realsift1m}
PREP=${PREP:-/tmp/realsift_prep}
W=${WORK:-/tmp/realsift_work}
NLISTS=${NLISTS:-1024 4096}
SEEDS=${SEEDS:-1 2}
QUERIES=${QUERIES:-3000}
TAU=0.1
KM_NITER=30  # = the GMM's 10 k-means + 20 EM iterations
base=$D/realsift1m_base.u8bin
mkdir -p "$W" bench/ivf_results
start=$(date +%s)

grid() {  # nlist probing -> nprobe list bracketing R10@10 0.90 and 0.95
  case "$1.$2" in
    1024.distance) echo 4,6,8,10,12,16,20,24,32 ;;
    1024.posterior) echo 2,3,4,6,8,12,16,24,32,48,64,96 ;;
    4096.distance) echo 4,6,8,12,16,24,32,48,64,96 ;;
    *) echo 8,12,16,24,32,48,64,96,128,192,256,384 ;;
  esac
}

[ -f "$PREP/tune_gt.ivecs" ] || /usr/bin/python3 bench/realsift_prep.py "$D" "$PREP"
sample=$PREP/sample.u8bin
mkdir -p "$PREP/models"
for nlist in $NLISTS; do for cov in spherical diagonal; do for s in $SEEDS; do
  m=$PREP/models/gmm-$cov-$nlist-$s.gmm
  [ -f "$m" ] || "$F" train --data "$sample" -k "$nlist" --cov $cov --seed "$s" --quiet \
      --model-out "$m"
done; done; done

# build_eval out-dir name nlist seed queries gt probes "build args..."
build_eval() {
  local dir=$1 name=$2 nlist=$3 seed=$4 q=$5 gt=$6 probes=$7 args=$8
  local missing="" p
  for p in $probes; do [ -f "$dir/$name.$p.$seed.eval" ] || missing="$missing $p"; done
  [ -z "$missing" ] && return
  # shellcheck disable=SC2086
  "$F" build --data "$base" --factory "IVF$nlist,Flat" --device cpu --seed "$seed" --quiet \
      --out "$dir/$name.$seed.index" $args > "$dir/$name.$seed.build" 2>&1
  for p in $missing; do
    local model_arg=""  # GMM rows search through their mixture
    case " $args " in
      *" --model "*) model_arg="--model $(sed -n 's/.*--model \([^ ]*\).*/\1/p' <<<"$args") --probe $p" ;;
    esac
    # shellcheck disable=SC2086
    "$F" eval --index "$dir/$name.$seed.index" $model_arg --queries "$q" --gt "$gt" \
        --nprobe "$(grid "$nlist" "$p")" --max-queries "$QUERIES" > "$dir/$name.$p.$seed.eval.tmp" 2>&1
    cat "$dir/$name.$seed.build" >> "$dir/$name.$p.$seed.eval.tmp"
    mv "$dir/$name.$p.$seed.eval.tmp" "$dir/$name.$p.$seed.eval"
  done
  rm -f "$dir/$name.$seed.index"  # 0.5-1 GB each
}
km_args="--kmeans --train-data $sample --niter $KM_NITER"
gmm_model() { echo "$PREP/models/gmm-$1-$2-$3.gmm"; }

# 3. Tuning on the learn queries (the summary picks the values).
T_DIR=$W/tune
mkdir -p "$T_DIR"
tq=$PREP/tune_query.u8bin tgt=$PREP/tune_gt.ivecs
sm=$(gmm_model spherical 1024 1)
for T in 2 4 8 16; do
  build_eval "$T_DIR" "gmm+tempered-T$T" 1024 1 "$tq" "$tgt" distance \
      "--model $sm --max-lists 2 --spill tempered --temperature $T --tau $TAU"
done
for L in 0.5 1 2 4; do
  build_eval "$T_DIR" "gmm+soar-L$L" 1024 1 "$tq" "$tgt" distance \
      "--model $sm --max-lists 2 --spill soar --lambda $L"
  build_eval "$T_DIR" "kmeans+soar-L$L" 1024 1 "$tq" "$tgt" distance \
      "$km_args --max-lists 2 --spill soar --lambda $L"
done
tuned=$(/usr/bin/python3 bench/realsift_summary.py tune "$T_DIR")
read -r BEST_T BEST_LG BEST_LK <<<"$tuned"
echo "tuned: T=$BEST_T lambda(gmm)=$BEST_LG lambda(kmeans)=$BEST_LK"

# 4. The grid on the reported queries.
q=$D/realsift1m_query.u8bin gt=$D/realsift1m_groundtruth.ivecs
for nlist in $NLISTS; do
  dir=$W/nlist$nlist
  mkdir -p "$dir"
  for s in $SEEDS; do
    build_eval "$dir" kmeans "$nlist" "$s" "$q" "$gt" distance "$km_args"
    build_eval "$dir" kmeans+soar "$nlist" "$s" "$q" "$gt" distance \
        "$km_args --max-lists 2 --spill soar --lambda $BEST_LK"
    for cov in spherical diagonal; do
      m=$(gmm_model $cov "$nlist" "$s")
      c=${cov:0:4}
      build_eval "$dir" "gmm-$c" "$nlist" "$s" "$q" "$gt" "distance posterior" "--model $m"
      build_eval "$dir" "gmm-$c+soar" "$nlist" "$s" "$q" "$gt" "distance posterior" \
          "--model $m --max-lists 2 --spill soar --lambda $BEST_LG"
      build_eval "$dir" "gmm-$c+tempered" "$nlist" "$s" "$q" "$gt" "distance posterior" \
          "--model $m --max-lists 2 --spill tempered --temperature $BEST_T --tau $TAU"
      [ $cov = diagonal ] && continue  # the rest once, on the spherical mixture
      build_eval "$dir" "gmm-$c+resp" "$nlist" "$s" "$q" "$gt" "distance posterior" \
          "--model $m --max-lists 2 --tau $TAU"
      build_eval "$dir" "gmm-$c+probable" "$nlist" "$s" "$q" "$gt" "distance posterior" \
          "--model $m --primary probable"
    done
  done
done
elapsed=$(( $(date +%s) - start ))
/usr/bin/python3 bench/realsift_summary.py report "$W" "$elapsed" "$QUERIES" "$BEST_T" \
    "$BEST_LG" "$BEST_LK" "$TAU" > bench/ivf_results/realsift1m.md.tmp
mv bench/ivf_results/realsift1m.md.tmp bench/ivf_results/realsift1m.md
/usr/bin/python3 bench/realsift_summary.py csv "$W" > bench/ivf_results/realsift1m.csv
/usr/bin/python3 bench/realsift_summary.py plot "$W" bench/ivf_results
if command -v gnuplot > /dev/null; then
  for f in bench/ivf_results/realsift1m-*.gp; do (cd bench/ivf_results && gnuplot "$(basename "$f")"); done
fi
echo "wrote bench/ivf_results/realsift1m.md ($elapsed s)"
