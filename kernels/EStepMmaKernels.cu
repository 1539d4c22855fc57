// Fused GMM E-step on tensor cores (mma.sync: TF32 m16n8k8, bf16 m16n8k16,
// and their 3-product split forms), for d <= kMmaMaxDim.
//
// Same two passes as the SIMT kernels (EStepKernels.cu), same outputs:
// Pass 1 (log_norm_mma_kernel): a block owns BR1 = 128 rows (x - shift in
// shared memory, fp32) and sweeps the components in tiles of BN1 = 64; each
// warp computes a 16 x 64 tile of log2-densities with mma and keeps an
// online log-sum-exp (base 2) per row.
// Pass 2 (accumulate_mma_kernel): a block owns BC2 = 128 components (their
// terms in shared memory) and a chunk of rows, streamed in tiles of
// BR2 = 64. Each warp computes its 16 components x 64 rows of
// log2-densities transposed (components as the mma's M), exponentiates them
// in registers, and feeds the result straight back as the A operand of the
// accumulation mma (R^T x'), the FlashAttention-2 trick: the C fragment of
// one mma is, up to an agreed permutation of the summed rows, the A fragment
// of the next. The responsibilities never leave registers.
//
// Operands are kept in shared memory as fp32 and rounded when fragments are
// built, so one tile serves every precision and the split forms get their
// low parts for free. log2(e) is folded into the model terms as they are
// staged, so the exponentials are exp2.
#include <cuda_bf16.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "EStepKernels.cuh"
#include "MmaCommon.cuh"
#include "MmaSyncOps.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

using namespace mma_common;
using namespace mma_sync_ops;

// Tile geometry.

constexpr int BR1 = kPass1Rows;   // rows per block, pass 1 (16 per warp)
constexpr int BN1 = 64;           // components per tile, pass 1
constexpr int BC2 = kPass2Comps;  // components per block, pass 2 (16 per warp)
constexpr int BR2 = 64;           // rows per tile, pass 2

/// Components per tile of pass 1: 32 for diagonal 3xbf16, whose split x'
/// and x'^2 tiles leave room for no more (shared memory).
__host__ __device__ constexpr int pass1_comps(int p, bool diag) {
    return (p == kBf16x3 && diag) ? BN1 / 2 : BN1;
}

template <int P, bool kDiag, class Reduce>
__global__ void __launch_bounds__(kThreads)
    log_norm_mma_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                        MmaModelView m, bool vec16, Pass1Out out) {
    // 3xbf16: the rows are centred once into split bf16 tiles read by
    // ldmatrix; otherwise they stay fp32 and are rounded per fragment.
    constexpr bool kSplitX = P == kBf16x3;
    constexpr int BN = pass1_comps(P, kDiag);
    extern __shared__ __align__(16) float smem[];
    const int dp = m.dp, s = dp + 4;  // stride = 4 (mod 32) words: conflict-free fragments
    // xs (fp32 rows, or split x' | split x'^2) | model buffer 0 | model
    // buffer 1; a buffer is the a (and b) tiles. Split rows land raw in the
    // model buffers first.
    float* xs = smem;
    float* x2s = xs + BR1 * s;
    const int mtile = BN * s * (kDiag ? 2 : 1);
    float* const mbuf0 = xs + BR1 * s * ((kSplitX && kDiag) ? 2 : 1);  // buffer b: + b * mtile
    __shared__ __align__(16) float cs[2][BN1], bsph[2][BN1];
    __shared__ float norm[BR1];
    __shared__ __align__(16) float shift[kMmaMaxDim];
    __shared__ double red[2][kWarps];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int64_t row0 = int64_t(blockIdx.x) * BR1;
    const int valid = (int)min((int64_t)BR1, n - row0);

    if (kSplitX) {
        float* raw = mbuf0;
        load_rows_async(x, n, row0, BR1, m.d, vec16, s, raw);
        for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        const int q4 = dp / 4;
        for (int e = tid; e < BR1 * q4; e += kThreads) {
            const int r = e / q4, j = (e - r * q4) * 4;
            float v[4];
            centre4(raw, s, r, j, valid, m.d, shift, v);
            store_split4(v, reinterpret_cast<__nv_bfloat16*>(xs + r * s), dp, j);
            if (kDiag) {
                const float v2[4] = {v[0] * v[0], v[1] * v[1], v[2] * v[2], v[3] * v[3]};
                store_split4(v2, reinterpret_cast<__nv_bfloat16*>(x2s + r * s), dp, j);
            }
        }
        if (!kDiag) raw_norms(raw, s, valid, BR1, m.d, shift, norm);
        __syncthreads();  // raw (the model buffers) is free
        load_model_async<kDiag>(m, 0, BN, s, mbuf0, mbuf0 + BN * s, cs[0], bsph[0]);
        cp_async_commit();
    } else {
        load_rows_async(x, n, row0, BR1, m.d, vec16, s, xs);
        for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
        cp_async_commit();
        load_model_async<kDiag>(m, 0, BN, s, mbuf0, mbuf0 + BN * s, cs[0], bsph[0]);
        cp_async_commit();
        cp_async_wait<1>();  // the rows
        __syncthreads();
        if (!kDiag) {
            raw_norms(xs, s, valid, BR1, m.d, shift, norm);
            __syncthreads();  // norms read rows across threads; centring rewrites them
        }
        // In place (each element read and written by one thread); the barrier
        // at the top of the component loop publishes it.
        centre_rows(xs, valid, BR1, m.d, dp, s, shift, xs);
    }
    const float* xw = xs + warp * 16 * s;
    const float* x2w = x2s + warp * 16 * s;

    Reduce reduce;
    reduce.begin(row0, n, out);
    const int ntiles = (m.k + BN - 1) / BN;
    for (int tile = 0; tile < ntiles; tile++) {
        const int buf = tile & 1;
        if (tile + 1 < ntiles) {
            // Prefetch the next tile into the other buffer (freed by the
            // barrier at the end of the previous iteration).
            float* nb = mbuf0 + (buf ^ 1) * mtile;
            load_model_async<kDiag>(m, (tile + 1) * BN, BN, s, nb, nb + BN * s, cs[buf ^ 1],
                                    bsph[buf ^ 1]);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const float* as = mbuf0 + buf * mtile;
        const float* bs = as + BN * s;
        float acc[BN / 8][4] = {};
        for (int k0 = 0; k0 < dp; k0 += mma_k(P)) {
            uint32_t ah[4], al[4], a2h[4], a2l[4];
            if (kSplitX) {
                ldsm_a_split(xw, s, dp, k0, lane, ah, al);
                if (kDiag) ldsm_a_split(x2w, s, dp, k0, lane, a2h, a2l);
            } else {
                load_a<P>(xw, s, k0, g, t, ah, al);
                if (kDiag) load_a<P, true>(xw, s, k0, g, t, a2h, a2l);
            }
            if (P == kBf16x3) {
                // Pre-split model: two 8-component blocks per ldmatrix pair.
#pragma unroll
                for (int nb = 0; nb < BN / 8; nb += 2) {
                    uint32_t h4[4], l4[4];
                    ldsm_b2_split(as + nb * 8 * s, s, dp, k0, lane, h4, l4);
#pragma unroll
                    for (int q = 0; q < 2; q++) {
                        const uint32_t bh[2] = {h4[2 * q], h4[2 * q + 1]},
                                       bl[2] = {l4[2 * q], l4[2 * q + 1]};
                        mma<P>(acc[nb + q], ah, al, bh, bl);
                    }
                    if (kDiag) {
                        ldsm_b2_split(bs + nb * 8 * s, s, dp, k0, lane, h4, l4);
#pragma unroll
                        for (int q = 0; q < 2; q++) {
                            const uint32_t bh[2] = {h4[2 * q], h4[2 * q + 1]},
                                           bl[2] = {l4[2 * q], l4[2 * q + 1]};
                            mma<P>(acc[nb + q], a2h, a2l, bh, bl);
                        }
                    }
                }
            } else {
#pragma unroll
                for (int nb = 0; nb < BN / 8; nb++) {
                    uint32_t bh[2], bl[2];
                    load_b<P>(as + nb * 8 * s, s, k0, g, t, bh, bl);
                    mma<P>(acc[nb], ah, al, bh, bl);
                    if (kDiag) {
                        load_b<P>(bs + nb * 8 * s, s, k0, g, t, bh, bl);
                        mma<P>(acc[nb], a2h, a2l, bh, bl);
                    }
                }
            }
        }
        // log2-densities folded into rows g and g + 8 (log-sum-exp / argmax).
        reduce.template tile<BN / 8, kDiag>(acc, cs[buf], bsph[buf], norm, warp, g, t, tile * BN);
        __syncthreads();  // this buffer is refilled two tiles on
    }
    reduce.finish(row0, n, w, out, red);
}

// Pass 2 is one skeleton (accumulate_mma_kernel: the model tiles, the
// double-buffered row loads, the row terms, the responsibilities and the
// flush) over an operand policy T, which owns what differs between
// precisions: how a landed row tile is staged, how the log-density tile is
// multiplied and how R^T x' (and R^T x'^2) is accumulated. A policy has
//   kRows                      rows per tile;
//   words(dp)                  its shared words (row tiles, raw included);
//   T(base, dp, s, raw)        carves its tiles from `base` and places raw;
//   stage(raw, valid, m, shift)            centre and round the tile;
//   logits(aw, bw, lane, lg)               lg += the log2-density products;
//   accumulate(lg, lane, nd_used, accx, accx2)   the accumulation products.

/// Operands kept as the centred fp32 rows and rounded to PL / PA as each
/// fragment is built (TF32 and single-bf16 plans).
template <int PL, int PA, bool kDiag>
struct RoundPerUse {
    static constexpr int kRows = BR2;
    static constexpr bool kDiagonal = kDiag;
    float* xs;  // centred rows, fp32
    int dp, s;
    __host__ __device__ static size_t words(int dp) { return size_t(2 * kRows) * (dp + 4); }
    __device__ RoundPerUse(float* base, int dp_, int s_, float*& raw) : xs(base), dp(dp_), s(s_) {
        raw = xs + kRows * s;
    }
    __device__ void stage(const float* raw, int valid, const MmaModelView& m,
                          const float* shift) const {
        centre_rows(raw, valid, kRows, m.d, dp, s, shift, xs);
    }
    __device__ void logits(const float* aw, const float* bw, int lane,
                           float (&lg)[kRows / 8][4]) const {
        const int g = lane / 4, t = lane % 4;
        for (int k0 = 0; k0 < dp; k0 += mma_k(PL)) {
            uint32_t ah[4], al[4], a2h[4], a2l[4];
            load_a<PL>(aw, s, k0, g, t, ah, al);
            if (kDiag) load_a<PL>(bw, s, k0, g, t, a2h, a2l);
#pragma unroll
            for (int nb = 0; nb < kRows / 8; nb++) {
                uint32_t bh[2], bl[2];
                load_b<PL>(xs + nb * 8 * s, s, k0, g, t, bh, bl);
                mma<PL>(lg[nb], ah, al, bh, bl);
                if (kDiag) {
                    load_b<PL, true>(xs + nb * 8 * s, s, k0, g, t, bh, bl);
                    mma<PL>(lg[nb], a2h, a2l, bh, bl);
                }
            }
        }
    }
    /// R^T x' (and R^T x'^2): the summed index is the row.
    __device__ void accumulate(const float (&lg)[kRows / 8][4], int lane, int nd_used,
                               float (&accx)[kMaxNd][4],
                               float (&accx2)[kDiag ? kMaxNd : 1][4]) const {
        const int g = lane / 4, t = lane % 4;
        constexpr int RS = mma_k(PA);
#pragma unroll
        for (int ks = 0; ks < kRows / RS; ks++) {
            float av[na_values(PA)];
            int rows[nb_values(PA)];
#pragma unroll
            for (int v = 0; v < na_values(PA); v++)
                av[v] = is_bf16(PA) ? lg[2 * ks + (v >> 2)][((v >> 1) & 1) * 2 + (v & 1)]
                                    : lg[ks][(v & 1) * 2 + (v >> 1)];
                // TF32: A's k = t + 4q holds C column 2t + q, so B's k = t + 4q
                // must read row 2t + q of the 8-row step.
#pragma unroll
            for (int v = 0; v < nb_values(PA); v++)
                rows[v] = is_bf16(PA) ? ks * 16 + b_k<PA>(v, t) : ks * 8 + 2 * t + v;
            uint32_t ah[4], al[4];
            to_frag<PA>(av, ah, al);
#pragma unroll
            for (int nd = 0; nd < kMaxNd; nd++) {
                if (nd >= nd_used) break;
                float bv[nb_values(PA)];
#pragma unroll
                for (int v = 0; v < nb_values(PA); v++) bv[v] = xs[rows[v] * s + nd * 8 + g];
                uint32_t bh[2], bl[2];
                to_frag<PA>(bv, bh, bl);
                mma<PA>(accx[nd], ah, al, bh, bl);
                if (kDiag) {
#pragma unroll
                    for (int v = 0; v < nb_values(PA); v++) bv[v] *= bv[v];
                    to_frag<PA>(bv, bh, bl);
                    mma<PA>(accx2[kDiag ? nd : 0], ah, al, bh, bl);
                }
            }
        }
    }
};

/// Rows per tile of the pre-split pass 2 (shared memory: the diagonal
/// kernel holds two model tiles and five row tiles).
template <bool kDiag>
__host__ __device__ constexpr int split_rows() {
    return kDiag ? 32 : 64;
}

/// Operands for 3xbf16 log-densities, rounded once per tile (not once per
/// warp and use): the model arrives pre-split, each row tile is centred into
/// a split bf16 tile (the log-densities' B operand) and into the
/// accumulation's B operand, TF32 (row-major) or bf16 (transposed, row pairs
/// in one word).
template <int PA, bool kDiag>
struct PreSplit {
    static constexpr int kRows = split_rows<kDiag>();
    static constexpr bool kDiagonal = kDiag;
    static constexpr int PL = kBf16x3;
    static constexpr bool kAccBf16 = is_bf16(PA);
    // Accumulation operand tiles, transposed ([dimension][rows], sa words
    // per dimension, = 4 mod 32 for conflict-free ldmatrix): bf16 row pairs
    // per word, or TF32 words with the rows of each 8-row step permuted
    // (row 2t + q at position t + 4q, the order the A fragment sums in).
    __host__ __device__ static constexpr int acc_stride() {
        return kAccBf16 ? (kRows + 8) / 2 : kRows + 4;
    }
    float *xsp, *x2sp, *xa, *x2a;
    int dp, s;
    __host__ __device__ static size_t words(int dp) {
        return size_t(kRows) * (dp + 4) * (kDiag ? 3 : 2) +
               size_t(dp) * acc_stride() * (kDiag ? 2 : 1);
    }
    __device__ PreSplit(float* base, int dp_, int s_, float*& raw) : dp(dp_), s(s_) {
        raw = base;
        xsp = raw + kRows * s;
        x2sp = xsp + kRows * s;
        xa = x2sp + (kDiag ? kRows * s : 0);
        x2a = xa + dp * acc_stride();
    }
    __device__ void stage(const float* raw, int valid, const MmaModelView& m,
                          const float* shift) const {
        constexpr int sa = acc_stride();
        const int q4 = dp / 4;
        for (int e = threadIdx.x; e < kRows * q4; e += kThreads) {
            const int r = e / q4, j = (e - r * q4) * 4;
            float v[4], v2[4];
            centre4(raw, s, r, j, valid, m.d, shift, v);
#pragma unroll
            for (int q = 0; q < 4; q++) v2[q] = v[q] * v[q];
            store_split4(v, reinterpret_cast<__nv_bfloat16*>(xsp + r * s), dp, j);
            if (kDiag) store_split4(v2, reinterpret_cast<__nv_bfloat16*>(x2sp + r * s), dp, j);
            const int pos = kAccBf16 ? r : (r & ~7) + ((r & 7) >> 1) + 4 * (r & 1);
#pragma unroll
            for (int q = 0; q < 4; q++) {
                if (kAccBf16) {
                    reinterpret_cast<__nv_bfloat16*>(xa)[(j + q) * 2 * sa + pos] =
                        __float2bfloat16_rn(v[q]);
                    if (kDiag)
                        reinterpret_cast<__nv_bfloat16*>(x2a)[(j + q) * 2 * sa + pos] =
                            __float2bfloat16_rn(v2[q]);
                } else {
                    xa[(j + q) * sa + pos] = __uint_as_float(to_tf32(v[q]));
                    if (kDiag) x2a[(j + q) * sa + pos] = __uint_as_float(to_tf32(v2[q]));
                }
            }
        }
    }
    __device__ void logits(const float* aw, const float* bw, int lane,
                           float (&lg)[kRows / 8][4]) const {
        for (int k0 = 0; k0 < dp; k0 += 16) {
            uint32_t ah[4], al[4], a2h[4], a2l[4];
            ldsm_a_split(aw, s, dp, k0, lane, ah, al);
            if (kDiag) ldsm_a_split(bw, s, dp, k0, lane, a2h, a2l);
#pragma unroll
            for (int nb = 0; nb < kRows / 8; nb += 2) {
                uint32_t h4[4], l4[4];
                ldsm_b2_split(xsp + nb * 8 * s, s, dp, k0, lane, h4, l4);
#pragma unroll
                for (int q = 0; q < 2; q++) {
                    const uint32_t bh[2] = {h4[2 * q], h4[2 * q + 1]},
                                   bl[2] = {l4[2 * q], l4[2 * q + 1]};
                    mma<PL>(lg[nb + q], ah, al, bh, bl);
                }
                if (kDiag) {
                    ldsm_b2_split(x2sp + nb * 8 * s, s, dp, k0, lane, h4, l4);
#pragma unroll
                    for (int q = 0; q < 2; q++) {
                        const uint32_t bh[2] = {h4[2 * q], h4[2 * q + 1]},
                                       bl[2] = {l4[2 * q], l4[2 * q + 1]};
                        mma<PL>(lg[nb + q], a2h, a2l, bh, bl);
                    }
                }
            }
        }
    }
    /// R^T x' (and R^T x'^2) from the pre-rounded operand tiles.
    __device__ void accumulate(const float (&lg)[kRows / 8][4], int lane, int nd_used,
                               float (&accx)[kMaxNd][4],
                               float (&accx2)[kDiag ? kMaxNd : 1][4]) const {
        constexpr int RS = mma_k(PA), sa = acc_stride();
        // ldmatrix rows: dimension nd*8 + lane % 8 (+8 for matrices 2-3), words
        // 8 ks (+4 for matrices 1, 3): the same 8 words are 16 bf16 rows or 8
        // TF32 rows.
        const int mat = lane >> 3;
        const int lrow = (lane & 7) + 8 * (mat >> 1), lword = 4 * (mat & 1);
#pragma unroll
        for (int ks = 0; ks < kRows / RS; ks++) {
            float av[na_values(PA)];
#pragma unroll
            for (int v = 0; v < na_values(PA); v++)
                av[v] = kAccBf16 ? lg[2 * ks + (v >> 2)][((v >> 1) & 1) * 2 + (v & 1)]
                                 : lg[ks][(v & 1) * 2 + (v >> 1)];
            // bf16 accumulation: r split into two bf16 parts (r = hi + lo), so
            // that only x' is rounded (r x' >= 0 terms of the second moment
            // then keep 2^-9 relative); TF32 rounds r to 2^-11.
            uint32_t ah[4], al[4];
            to_frag<kAccBf16 ? kBf16x3 : PA>(av, ah, al);
            auto acc_mma = [&](float(&c)[4], const uint32_t(&bh)[2], const uint32_t(&bl)[2]) {
                if (kAccBf16) mma1<kBf16>(c, al, bh);
                mma<PA>(c, ah, al, bh, bl);
            };
#pragma unroll
            for (int nd = 0; nd < kMaxNd; nd += 2) {
                if (nd >= nd_used) break;  // dp is a multiple of 16: nd_used is even
                const int at = (nd * 8 + lrow) * sa + 8 * ks + lword;
                uint32_t b4[4], bl[2];
                ldsm_x4(b4, xa + at);
#pragma unroll
                for (int q = 0; q < 2; q++) {
                    const uint32_t bh[2] = {b4[2 * q], b4[2 * q + 1]};
                    acc_mma(accx[nd + q], bh, bl);
                }
                if (kDiag) {
                    ldsm_x4(b4, x2a + at);
#pragma unroll
                    for (int q = 0; q < 2; q++) {
                        const uint32_t bh[2] = {b4[2 * q], b4[2 * q + 1]};
                        acc_mma(accx2[kDiag ? nd + q : 0], bh, bl);
                    }
                }
            }
        }
    }
};

/// The pass-2 skeleton: a block owns BC2 components and a chunk of rows,
/// streamed in T::kRows-row tiles that land while the previous one is
/// computed on.
template <class T>
__global__ void __launch_bounds__(kThreads, 1)
    accumulate_mma_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                          const float* __restrict__ log_norm, MmaModelView m, StatsView st,
                          bool vec16, int64_t rows_per_chunk) {
    constexpr int R = T::kRows;
    constexpr bool kDiag = T::kDiagonal;
    extern __shared__ __align__(16) float smem[];
    const int dp = m.dp, s = dp + 4;
    // am | bm (diagonal) | the policy's row tiles, raw (the next rows, landing) among them
    float* am = smem;
    float* bm = am + BC2 * s;
    float* raw;
    const T tiles(bm + (kDiag ? BC2 * s : 0), dp, s, raw);
    __shared__ __align__(16) float cs[BC2], bsph[BC2];
    __shared__ float norm[R], rowc[R], raw_lz[R], raw_w[R];
    __shared__ __align__(16) float shift[kMmaMaxDim];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int c0 = blockIdx.x * BC2;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);
    const int nd_used = dp / 8;

    auto load_tile = [&](int64_t row0) {
        load_tile_async(x, w, log_norm, end, row0, R, m.d, vec16, s, raw, raw_lz, raw_w);
    };
    load_model_async<kDiag>(m, c0, BC2, s, am, bm, cs, bsph);
    for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
    cp_async_commit();
    if (begin < end) load_tile(begin);
    const float* aw = am + warp * 16 * s;
    const float* bw = bm + warp * 16 * s;

    float accx[kMaxNd][4] = {}, accx2[kDiag ? kMaxNd : 1][4] = {};
    float nkp[2] = {0.f, 0.f}, sx2p[2] = {0.f, 0.f};

    for (int64_t row0 = begin; row0 < end; row0 += R) {
        cp_async_wait<0>();
        __syncthreads();  // raw landed; the previous tile's operand reads are done
        const int valid = (int)min((int64_t)R, end - row0);
        tiles.stage(raw, valid, m, shift);
        if (!kDiag) raw_norms(raw, s, valid, R, m.d, shift, norm);
        row_terms(valid, R, w != nullptr, raw_w, raw_lz, rowc);
        __syncthreads();
        if (row0 + R < end) load_tile(row0 + R);  // raw is free again
        // Log2-densities, transposed: this warp's 16 components x R rows.
        float lg[R / 8][4] = {};
        tiles.logits(aw, bw, lane, lg);
        responsibilities<R / 8, kDiag>(lg, cs, bsph, norm, rowc, warp, g, t, nkp, sx2p);
        tiles.accumulate(lg, lane, nd_used, accx, accx2);
    }

    flush_stats<kDiag>(accx, accx2, nkp, sx2p, m, st, c0, warp, g, t);
}

template <int P, bool kDiag, class Reduce>
cudaError_t log_norm_mma(const float* x, int64_t n, const float* weights, const MmaModelView& m,
                         const Pass1Out& out, cudaStream_t stream) {
    const int x_tiles = (P == kBf16x3 && kDiag) ? 2 : 1;
    const size_t bytes = sizeof(float) *
                         size_t(BR1 * x_tiles + 2 * pass1_comps(P, kDiag) * (kDiag ? 2 : 1)) *
                         (m.dp + 4);
    return launch_pass1(log_norm_mma_kernel<P, kDiag, Reduce>, bytes, x, n, weights, m, out,
                        stream);
}

/// Pass 2 over operand policy T.
template <class T>
cudaError_t accumulate_mma(const float* x, int64_t n, const float* weights, const float* log_norm,
                           const MmaModelView& m, const StatsView& stats, int num_sms,
                           cudaStream_t stream) {
    const size_t words = size_t(BC2) * (m.dp + 4) * (T::kDiagonal ? 2 : 1) + T::words(m.dp);
    return launch_pass2(accumulate_mma_kernel<T>, sizeof(float) * words, T::kRows, x, n, weights,
                        log_norm, m, stats, num_sms, stream);
}

}  // namespace

namespace {

/// Pass 1 at the run-time logits precision, with the reduction policy Reduce.
template <class Reduce>
cudaError_t pass1_mma(const float* x, int64_t n, const float* weights, const MmaModelView& m,
                      MmaPrecision logits, const Pass1Out& out, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (m.d > kMmaMaxDim || m.dp % 16 || m.kp % kMmaCompPad) return cudaErrorInvalidValue;
    if (m.split_bf16 != (logits == MmaPrecision::Bf16x3)) return cudaErrorInvalidValue;
#define FAISS_GMM_LN(P)                                                                       \
    case MmaPrecision::P:                                                                     \
        return m.spherical ? log_norm_mma<k##P, false, Reduce>(x, n, weights, m, out, stream) \
                           : log_norm_mma<k##P, true, Reduce>(x, n, weights, m, out, stream);
    switch (logits) {
        FAISS_GMM_LN(Tf32)
        FAISS_GMM_LN(Tf32x3)
        FAISS_GMM_LN(Bf16)
        FAISS_GMM_LN(Bf16x3)
    }
#undef FAISS_GMM_LN
    return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_log_norm_mma(const float* x, int64_t n, const float* weights,
                                const MmaModelView& m, MmaPrecision logits, float* log_norm,
                                const StatsView& stats, cudaStream_t stream) {
    Pass1Out out;
    out.log_norm = log_norm;
    out.sums = stats.sums;
    return pass1_mma<LseReduce>(x, n, weights, m, logits, out, stream);
}

cudaError_t launch_assign_mma(const float* x, int64_t n, const MmaModelView& m, MmaPrecision logits,
                              const Pass1Out& out, cudaStream_t stream) {
    if (!out.labels) return cudaErrorInvalidValue;
    return with_assign_reduce(out, [&](auto reduce) {
        return pass1_mma<decltype(reduce)>(x, n, nullptr, m, logits, out, stream);
    });
}

cudaError_t launch_accumulate_mma(const float* x, int64_t n, const float* weights,
                                  const float* log_norm, const MmaModelView& m, const MmaPlan& plan,
                                  const StatsView& stats, int num_sms, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (m.d > kMmaMaxDim || m.dp % 16 || m.kp % kMmaCompPad) return cudaErrorInvalidValue;
    if (m.split_bf16 != (plan.logits == MmaPrecision::Bf16x3)) return cudaErrorInvalidValue;
        // The instantiated (logits, accumulate) pairs; see mma_plan_supported.
#define FAISS_GMM_ACC(PL, PA)                                                        \
    if (plan.logits == MmaPrecision::PL && plan.accumulate == MmaPrecision::PA)      \
        return m.spherical ? accumulate_mma<RoundPerUse<k##PL, k##PA, false>>(       \
                                 x, n, weights, log_norm, m, stats, num_sms, stream) \
                           : accumulate_mma<RoundPerUse<k##PL, k##PA, true>>(        \
                                 x, n, weights, log_norm, m, stats, num_sms, stream);
    FAISS_GMM_ACC(Tf32x3, Tf32x3)
    FAISS_GMM_ACC(Tf32x3, Tf32)
    FAISS_GMM_ACC(Tf32, Tf32)
    FAISS_GMM_ACC(Bf16, Bf16)
#undef FAISS_GMM_ACC
    // 3xbf16 log-densities: the pre-split kernel (the model must be split).
    if (plan.logits == MmaPrecision::Bf16x3 && plan.accumulate == MmaPrecision::Tf32)
        return m.spherical ? accumulate_mma<PreSplit<kTf32, false>>(x, n, weights, log_norm, m,
                                                                    stats, num_sms, stream)
                           : accumulate_mma<PreSplit<kTf32, true>>(x, n, weights, log_norm, m,
                                                                   stats, num_sms, stream);
    if (plan.logits == MmaPrecision::Bf16x3 && plan.accumulate == MmaPrecision::Bf16x2)
        return m.spherical ? accumulate_mma<PreSplit<kBf16x2, false>>(x, n, weights, log_norm, m,
                                                                      stats, num_sms, stream)
                           : accumulate_mma<PreSplit<kBf16x2, true>>(x, n, weights, log_norm, m,
                                                                     stats, num_sms, stream);
    return cudaErrorInvalidValue;
}

bool mma_plan_supported(const MmaPlan& p) {
    using M = MmaPrecision;
    const M l = p.logits, a = p.accumulate;
    return (l == M::Tf32x3 && (a == M::Tf32x3 || a == M::Tf32)) || (l == M::Tf32 && a == M::Tf32) ||
           (l == M::Bf16x3 && (a == M::Tf32 || a == M::Bf16x2)) || (l == M::Bf16 && a == M::Bf16);
}

}  // namespace gpu
}  // namespace faiss_gmm
