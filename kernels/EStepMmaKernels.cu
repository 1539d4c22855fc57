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

namespace faiss_gmm {
namespace gpu {

namespace {

using namespace mma_common;

// mma.sync-only helpers: precisions, fragment layouts, fragment loads.

constexpr int BR1 = kPass1Rows;   // rows per block, pass 1 (16 per warp)
constexpr int BN1 = 64;           // components per tile, pass 1
constexpr int BC2 = kPass2Comps;  // components per block, pass 2 (16 per warp)
constexpr int BR2 = 64;           // rows per tile, pass 2

__host__ __device__ constexpr bool is_bf16(int p) {
    return p == kBf16 || p == kBf16x3 || p == kBf16x2;
}
__host__ __device__ constexpr bool is_split(int p) { return p == kTf32x3 || p == kBf16x3; }
/// K of one mma (and of one step over d or over rows).
__host__ __device__ constexpr int mma_k(int p) { return is_bf16(p) ? 16 : 8; }
/// fp32 values in an A fragment (4 registers) and a B fragment (2 registers).
__host__ __device__ constexpr int na_values(int p) { return is_bf16(p) ? 8 : 4; }
__host__ __device__ constexpr int nb_values(int p) { return is_bf16(p) ? 4 : 2; }

// Fragment layouts (PTX ISA, mma.m16n8k8 .tf32 / m16n8k16 .bf16), with
// g = lane / 4 and t = lane % 4: (row, column) of A value v, and the k of
// B value v (its n is g). C value i sits at (g + 8 (i / 2), 2t + i % 2).
template <int P>
__device__ __forceinline__ int a_row(int v, int g) {
    return g + 8 * (is_bf16(P) ? ((v >> 1) & 1) : (v & 1));
}
template <int P>
__device__ __forceinline__ int a_col(int v, int t) {
    return is_bf16(P) ? 2 * t + (v & 1) + 8 * (v >> 2) : t + 4 * (v >> 1);
}
template <int P>
__device__ __forceinline__ int b_k(int v, int t) {
    return is_bf16(P) ? 2 * t + (v & 1) + 8 * (v >> 1) : t + 4 * v;
}

/// Round fp32 values into fragment registers; for split precisions also the
/// rounded remainders (lo = round(v - hi)).
template <int P, int NR>
__device__ __forceinline__ void to_frag(const float* v, uint32_t (&hi)[NR], uint32_t (&lo)[NR]) {
#pragma unroll
    for (int r = 0; r < NR; r++) {
        if (is_bf16(P)) {
            if (is_split(P))
                hi[r] = split_bf16x2(v[2 * r], v[2 * r + 1], lo[r]);
            else
                hi[r] = bf16x2_bits(__floats2bfloat162_rn(v[2 * r], v[2 * r + 1]));
        } else {
            hi[r] = to_tf32(v[r]);
            // v - hi is exact; the tensor cores truncate it to TF32 (an
            // error of 2^-11 of a part that is itself <= 2^-12 of v).
            if (is_split(P)) lo[r] = __float_as_uint(v[r] - __uint_as_float(hi[r]));
        }
    }
}

template <int P>
__device__ __forceinline__ void mma1(float (&c)[4], const uint32_t (&a)[4],
                                     const uint32_t (&b)[2]) {
    if (is_bf16(P))
        mma_bf16_16816(c, a, b[0], b[1]);
    else
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/// c += a * b at precision P (split: the two small cross terms first).
template <int P>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4],
                                    const uint32_t (&bh)[2], const uint32_t (&bl)[2]) {
    if (is_split(P)) {
        mma1<P>(c, al, bh);
        mma1<P>(c, ah, bl);
    }
    mma1<P>(c, ah, bh);
}

/// A fragment (rows m0.., columns k0..) of a row-major fp32 tile with stride s.
template <int P, bool kSquare = false>
__device__ __forceinline__ void load_a(const float* tile, int s, int k0, int g, int t,
                                       uint32_t (&hi)[4], uint32_t (&lo)[4]) {
    float v[na_values(P)];
#pragma unroll
    for (int i = 0; i < na_values(P); i++) {
        v[i] = tile[a_row<P>(i, g) * s + k0 + a_col<P>(i, t)];
        if (kSquare) v[i] *= v[i];
    }
    to_frag<P>(v, hi, lo);
}

/// B fragment whose column n = g is row g of a row-major tile (k along the row).
template <int P, bool kSquare = false>
__device__ __forceinline__ void load_b(const float* tile, int s, int k0, int g, int t,
                                       uint32_t (&hi)[2], uint32_t (&lo)[2]) {
    float v[nb_values(P)];
#pragma unroll
    for (int i = 0; i < nb_values(P); i++) {
        v[i] = tile[g * s + k0 + b_k<P>(i, t)];
        if (kSquare) v[i] *= v[i];
    }
    to_frag<P>(v, hi, lo);
}

/// A fragment (rows 0..15 of `tile`, k0..k0+15) of a pre-split bf16 tile:
/// one ldmatrix for the high parts, one for the low.
__device__ __forceinline__ void ldsm_a_split(const float* tile, int s, int dp, int k0, int lane,
                                             uint32_t (&hi)[4], uint32_t (&lo)[4]) {
    const int mat = lane >> 3;
    const float* p = tile + ((lane & 7) + 8 * (mat & 1)) * s + k0 / 2 + 4 * (mat >> 1);
    ldsm_x4(hi, p);
    ldsm_x4(lo, p + dp / 2);
}

/// B fragments of two 8-row blocks (rows 0..15 of `tile`, k0..k0+15) of a
/// pre-split bf16 tile: {b0, b1} of the first block in regs 0-1, the second in 2-3.
__device__ __forceinline__ void ldsm_b2_split(const float* tile, int s, int dp, int k0, int lane,
                                              uint32_t (&hi)[4], uint32_t (&lo)[4]) {
    const int mat = lane >> 3;
    const float* p = tile + ((lane & 7) + 8 * (mat >> 1)) * s + k0 / 2 + 4 * (mat & 1);
    ldsm_x4(hi, p);
    ldsm_x4(lo, p + dp / 2);
}

/// Split four values into bf16 hi / lo and store them at half-words
/// j..j+3 and dp + j.. of a split row (8-byte stores).
__device__ __forceinline__ void store_split4(const float (&v)[4], __nv_bfloat16* row, int dp,
                                             int j) {
    __nv_bfloat162 h[2], l[2];
#pragma unroll
    for (int q = 0; q < 2; q++) {
        h[q] = __floats2bfloat162_rn(v[2 * q], v[2 * q + 1]);
        const float2 f = __bfloat1622float2(h[q]);
        l[q] = __floats2bfloat162_rn(v[2 * q] - f.x, v[2 * q + 1] - f.y);
    }
    *reinterpret_cast<uint2*>(row + j) = make_uint2(bf16x2_bits(h[0]), bf16x2_bits(h[1]));
    *reinterpret_cast<uint2*>(row + dp + j) = make_uint2(bf16x2_bits(l[0]), bf16x2_bits(l[1]));
}

/// Centre a landed raw tile: dst = raw - shift, zero past d and past `valid` rows.
__device__ __forceinline__ void centre_rows(const float* raw, int valid, int nrows, int d, int dp,
                                            int s, const float* shift, float* dst) {
    for (int e = threadIdx.x; e < nrows * dp; e += kThreads) {
        const int r = e / dp, j = e - r * dp;
        dst[r * s + j] = (r < valid && j < d) ? raw[r * s + j] - shift[j] : 0.f;
    }
}

/// Start copying components [c0, c0 + ncomp) of the formatted model (rows of
/// a and b, and c / bsph) into shared memory.
template <bool kDiag>
__device__ __forceinline__ void load_model_async(const MmaModelView& m, int c0, int ncomp, int s,
                                                 float* as, float* bs, float* cs, float* bsph) {
    const int q = m.dp / 4;
    for (int e = threadIdx.x; e < ncomp * q; e += kThreads) {
        const int cc = e / q, j = (e - cc * q) * 4;
        const size_t src = size_t(c0 + cc) * m.dp + j;
        cp_async16(as + cc * s + j, m.a + src);
        if (kDiag) cp_async16(bs + cc * s + j, m.b + src);
    }
    for (int e = threadIdx.x; e < ncomp / 4; e += kThreads) {
        cp_async16(cs + 4 * e, m.c + c0 + 4 * e);
        if (!kDiag) cp_async16(bsph + 4 * e, m.bsph + c0 + 4 * e);
    }
}

/// Log2-densities of a warp's 16 components x NB*8 rows (transposed C
/// fragments) into responsibilities in place; adds Nk (and the spherical
/// second moment) of rows g and g + 8 into nkp / sx2p.
template <int NB, bool kDiag>
__device__ __forceinline__ void responsibilities(float (&lg)[NB][4], const float* cs,
                                                 const float* bsph, const float* norm,
                                                 const float* rowc, int warp, int g, int t,
                                                 float (&nkp)[2], float (&sx2p)[2]) {
#pragma unroll
    for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int cl = warp * 16 + g + 8 * (i >> 1), r = nb * 8 + 2 * t + (i & 1);
            float l = lg[nb][i] + cs[cl] + rowc[r];
            if (!kDiag) l = fmaf(bsph[cl], norm[r], l);
            const float resp = fast_exp2(l);
            lg[nb][i] = resp;
            nkp[i >> 1] += resp;
            if (!kDiag) sx2p[i >> 1] = fmaf(resp, norm[r], sx2p[i >> 1]);
        }
}

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

template <int PL, int PA, bool kDiag>
__global__ void __launch_bounds__(kThreads, 1)
    accumulate_mma_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                          const float* __restrict__ log_norm, MmaModelView m, StatsView st,
                          bool vec16, int64_t rows_per_chunk) {
    extern __shared__ __align__(16) float smem[];
    const int dp = m.dp, s = dp + 4;
    // am | bm (diagonal) | xs (centred rows) | raw (the next rows, landing)
    float* am = smem;
    float* bm = am + BC2 * s;
    float* xs = bm + (kDiag ? BC2 * s : 0);
    float* raw = xs + BR2 * s;
    __shared__ __align__(16) float cs[BC2], bsph[BC2];
    __shared__ float norm[BR2], rowc[BR2], raw_lz[BR2], raw_w[BR2], shift[kMmaMaxDim];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int c0 = blockIdx.x * BC2;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);
    const int nd_used = dp / 8;

    // Rows (with their log Z and weight) land in `raw` while the previous
    // tile is being computed on.
    auto load_tile = [&](int64_t row0) {
        load_tile_async(x, w, log_norm, end, row0, BR2, m.d, vec16, s, raw, raw_lz, raw_w);
    };
    load_model_async<kDiag>(m, c0, BC2, s, am, bm, cs, bsph);
    for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
    cp_async_commit();
    if (begin < end) load_tile(begin);
    const float* aw = am + warp * 16 * s;
    const float* bw = bm + warp * 16 * s;

    float accx[kMaxNd][4] = {}, accx2[kDiag ? kMaxNd : 1][4] = {};
    float nkp[2] = {0.f, 0.f}, sx2p[2] = {0.f, 0.f};

    for (int64_t row0 = begin; row0 < end; row0 += BR2) {
        cp_async_wait<0>();
        __syncthreads();  // raw landed; the previous tile's reads of xs are done
        const int valid = (int)min((int64_t)BR2, end - row0);
        centre_rows(raw, valid, BR2, m.d, dp, s, shift, xs);
        if (!kDiag) raw_norms(raw, s, valid, BR2, m.d, shift, norm);
        row_terms(valid, BR2, w != nullptr, raw_w, raw_lz, rowc);
        __syncthreads();
        if (row0 + BR2 < end) load_tile(row0 + BR2);  // raw is free again
        // Log2-densities, transposed: this warp's 16 components x BR2 rows.
        float lg[BR2 / 8][4] = {};
        for (int k0 = 0; k0 < dp; k0 += mma_k(PL)) {
            uint32_t ah[4], al[4], a2h[4], a2l[4];
            load_a<PL>(aw, s, k0, g, t, ah, al);
            if (kDiag) load_a<PL>(bw, s, k0, g, t, a2h, a2l);
#pragma unroll
            for (int nb = 0; nb < BR2 / 8; nb++) {
                uint32_t bh[2], bl[2];
                load_b<PL>(xs + nb * 8 * s, s, k0, g, t, bh, bl);
                mma<PL>(lg[nb], ah, al, bh, bl);
                if (kDiag) {
                    load_b<PL, true>(xs + nb * 8 * s, s, k0, g, t, bh, bl);
                    mma<PL>(lg[nb], a2h, a2l, bh, bl);
                }
            }
        }
        responsibilities<BR2 / 8, kDiag>(lg, cs, bsph, norm, rowc, warp, g, t, nkp, sx2p);
        // R^T x' (and R^T x'^2): the summed index is the row.
        constexpr int RS = mma_k(PA);
#pragma unroll
        for (int ks = 0; ks < BR2 / RS; ks++) {
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

    flush_stats<kDiag>(accx, accx2, nkp, sx2p, m, st, c0, warp, g, t);
}

/// Rows per tile of the pre-split pass 2 (shared memory: the diagonal
/// kernel holds two model tiles and five row tiles).
template <bool kDiag>
__host__ __device__ constexpr int split_rows() {
    return kDiag ? 32 : 64;
}

/// Pass 2 for 3xbf16 log-densities: as accumulate_mma_kernel, but every
/// operand is rounded once per tile (not once per warp and use): the model
/// arrives pre-split, each row tile is centred into a split bf16 tile (the
/// log-densities' B operand) and into the accumulation's B operand, TF32
/// (row-major) or bf16 (transposed, row pairs in one word).
template <int PA, bool kDiag>
__global__ void __launch_bounds__(kThreads, 1)
    accumulate_split_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                            const float* __restrict__ log_norm, MmaModelView m, StatsView st,
                            bool vec16, int64_t rows_per_chunk) {
    constexpr int R = split_rows<kDiag>();
    constexpr int PL = kBf16x3;
    constexpr bool kAccBf16 = is_bf16(PA);
    extern __shared__ __align__(16) float smem[];
    const int dp = m.dp, s = dp + 4;
    // Accumulation operand tiles, transposed ([dimension][rows], sa words
    // per dimension, = 4 mod 32 for conflict-free ldmatrix): bf16 row pairs
    // per word, or TF32 words with the rows of each 8-row step permuted
    // (row 2t + q at position t + 4q, the order the A fragment sums in).
    const int sa = kAccBf16 ? (R + 8) / 2 : R + 4;
    const int acc_words = dp * sa;
    float* am = smem;
    float* bm = am + BC2 * s;
    float* raw = bm + (kDiag ? BC2 * s : 0);
    float* xsp = raw + R * s;
    float* x2sp = xsp + R * s;
    float* xa = x2sp + (kDiag ? R * s : 0);
    float* x2a = xa + acc_words;
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
        const int q4 = dp / 4;
        for (int e = tid; e < R * q4; e += kThreads) {
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
        if (!kDiag) raw_norms(raw, s, valid, R, m.d, shift, norm);
        row_terms(valid, R, w != nullptr, raw_w, raw_lz, rowc);
        __syncthreads();
        if (row0 + R < end) load_tile(row0 + R);  // raw is free again

        // Log2-densities, transposed: this warp's 16 components x R rows.
        float lg[R / 8][4] = {};
        for (int k0 = 0; k0 < dp; k0 += 16) {
            uint32_t ah[4], al[4], a2h[4], a2l[4];
            ldsm_a_split(aw, s, dp, k0, lane, ah, al);
            if (kDiag) ldsm_a_split(bw, s, dp, k0, lane, a2h, a2l);
#pragma unroll
            for (int nb = 0; nb < R / 8; nb += 2) {
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
        responsibilities<R / 8, kDiag>(lg, cs, bsph, norm, rowc, warp, g, t, nkp, sx2p);
        // R^T x' (and R^T x'^2) from the pre-rounded operand tiles.
        constexpr int RS = mma_k(PA);
        // ldmatrix rows: dimension nd*8 + lane % 8 (+8 for matrices 2-3), words
        // 8 ks (+4 for matrices 1, 3): the same 8 words are 16 bf16 rows or 8
        // TF32 rows.
        const int mat = lane >> 3;
        const int lrow = (lane & 7) + 8 * (mat >> 1), lword = 4 * (mat & 1);
#pragma unroll
        for (int ks = 0; ks < R / RS; ks++) {
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

    flush_stats<kDiag>(accx, accx2, nkp, sx2p, m, st, c0, warp, g, t);
}

template <int PA, bool kDiag>
cudaError_t accumulate_split(const float* x, int64_t n, const float* weights, const float* log_norm,
                             const MmaModelView& m, const StatsView& stats, int num_sms,
                             cudaStream_t stream) {
    constexpr int R = split_rows<kDiag>();
    const int s = m.dp + 4;
    const int acc_words = m.dp * (is_bf16(PA) ? (R + 8) / 2 : R + 4);
    const size_t words = size_t(BC2) * s * (kDiag ? 2 : 1) + size_t(R) * s * (kDiag ? 3 : 2) +
                         size_t(acc_words) * (kDiag ? 2 : 1);
    return launch_pass2(accumulate_split_kernel<PA, kDiag>, sizeof(float) * words, R, x, n, weights,
                        log_norm, m, stats, num_sms, stream);
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

template <int PL, int PA, bool kDiag>
cudaError_t accumulate_mma(const float* x, int64_t n, const float* weights, const float* log_norm,
                           const MmaModelView& m, const StatsView& stats, int num_sms,
                           cudaStream_t stream) {
    const size_t bytes = sizeof(float) * size_t(BC2 * (kDiag ? 2 : 1) + 2 * BR2) * (m.dp + 4);
    return launch_pass2(accumulate_mma_kernel<PL, PA, kDiag>, bytes, BR2, x, n, weights, log_norm,
                        m, stats, num_sms, stream);
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
#define FAISS_GMM_ACC(PL, PA)                                                                      \
    if (plan.logits == MmaPrecision::PL && plan.accumulate == MmaPrecision::PA)                    \
        return m.spherical ? accumulate_mma<k##PL, k##PA, false>(x, n, weights, log_norm, m,       \
                                                                 stats, num_sms, stream)           \
                           : accumulate_mma<k##PL, k##PA, true>(x, n, weights, log_norm, m, stats, \
                                                                num_sms, stream);
    FAISS_GMM_ACC(Tf32x3, Tf32x3)
    FAISS_GMM_ACC(Tf32x3, Tf32)
    FAISS_GMM_ACC(Tf32, Tf32)
    FAISS_GMM_ACC(Bf16, Bf16)
#undef FAISS_GMM_ACC
    // 3xbf16 log-densities: the pre-split kernel (the model must be split).
    if (plan.logits == MmaPrecision::Bf16x3 && plan.accumulate == MmaPrecision::Tf32)
        return m.spherical ? accumulate_split<kTf32, false>(x, n, weights, log_norm, m, stats,
                                                            num_sms, stream)
                           : accumulate_split<kTf32, true>(x, n, weights, log_norm, m, stats,
                                                           num_sms, stream);
    if (plan.logits == MmaPrecision::Bf16x3 && plan.accumulate == MmaPrecision::Bf16x2)
        return m.spherical ? accumulate_split<kBf16x2, false>(x, n, weights, log_norm, m, stats,
                                                              num_sms, stream)
                           : accumulate_split<kBf16x2, true>(x, n, weights, log_norm, m, stats,
                                                             num_sms, stream);
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
