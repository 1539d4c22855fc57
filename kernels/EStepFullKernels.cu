// Full-covariance E-step on bf16 tensor cores (mma.sync m16n8k16), issue 17.
//
// Both passes share one log-density tile: for the 16 rows of a warp and one
// component, the whitened vectors W_k z (z = x - shift - mu'_k, centred on
// the component so that bf16 rounds small numbers) as an mma product with W_k
// from shared memory, skipping the blocks above W_k's diagonal (0.56 of the
// dense work at d = 128), then their squared norms. The split class rounds
// z and W_k into two bf16 parts and takes three products (hi hi + hi lo +
// lo hi); the fast class one.
//  - Pass 1: a block owns 128 rows (their x - shift in registers, as A
//    fragments) and sweeps the components, W_k double-buffered with
//    cp.async; an online log-sum-exp (and argmax) per row.
//  - Pass 2: a block owns one component (W_k resident) and a chunk of rows,
//    streamed in 128-row tiles: z tile, log-densities, r, then r z and
//    sum r z z^T as a second product (z^T (r z), the blocks on and below the
//    diagonal only), accumulated in registers and added to doubles once per
//    block. A tile whose responsibilities are all zero (underflowed) skips
//    its accumulation: its contribution is exactly zero.
#include <cuda_bf16.h>

#include "EStepFullKernels.cuh"
#include "MmaCommon.cuh"

namespace faiss_gmm {
namespace gpu {
namespace {

using namespace mma_common;

constexpr int kRows = 128;  // rows per tile, both passes (16 per warp)

/// Tile geometry of a padded dimension DP = 16 KT: shared-memory rows are
/// padded by 16 bytes so that the eight rows an ldmatrix reads hit
/// distinct banks.
template <int KT>
struct Geo {
    static constexpr int DP = 16 * KT;
    static constexpr int WS = DP + 8;          // bf16 elements per shared row
    static constexpr int W_PART = DP * WS;     // one part of W_k
    static constexpr int T_PART = kRows * WS;  // one part of a row tile
};

/// c += a b with AP parts of a and BP of b (hi hi, plus hi lo and lo hi
/// where a part exists): the small cross terms first.
template <int AP, int BP>
__device__ __forceinline__ void mma_p(float (&c)[4], const uint32_t (&ah)[4],
                                      const uint32_t (&al)[4], uint32_t bh0, uint32_t bh1,
                                      uint32_t bl0, uint32_t bl1) {
    if (AP == 2) mma_bf16_16816(c, al, bh0, bh1);
    if (BP == 2) mma_bf16_16816(c, ah, bl0, bl1);
    mma_bf16_16816(c, ah, bh0, bh1);
}

/// One value into its parts in shared memory (part stride `ps`).
template <bool kSplit>
__device__ __forceinline__ void store_parts(__nv_bfloat16* p, int ps, float v) {
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    p[0] = h;
    if (kSplit) p[ps] = __float2bfloat16_rn(v - __bfloat162float(h));
}

template <bool kSplit>
__device__ __forceinline__ float load_parts(const __nv_bfloat16* p, int ps) {
    float v = __bfloat162float(p[0]);
    if (kSplit) v += __bfloat162float(p[ps]);
    return v;
}

/**
 * The log-density tile both passes share: ||W_k z||^2 for rows g (d2[0])
 * and g + 8 (d2[1]) of the warp's 16, every lane of a quad holding the sum.
 * afrag(s, hi, lo) gives the A fragments of z for columns 16 s ..; wsm is
 * W_k's parts in shared memory. Only the 16 x 16 blocks of W_k on and
 * below its diagonal are multiplied.
 */
template <int KT, int ZP, int WP, class AFrag>
__device__ __forceinline__ void whitened_norms(AFrag&& afrag, const __nv_bfloat16* wsm,
                                               float (&d2)[2]) {
    using G = Geo<KT>;
    const int lane = threadIdx.x % 32, q = lane / 8, r8 = lane % 8;
    float acc[2 * KT][4];
#pragma unroll
    for (int i = 0; i < 2 * KT; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
    for (int s = 0; s < KT; s++) {
        uint32_t ah[4], al[4];
        afrag(s, ah, al);
#pragma unroll
        for (int p = s; p < KT; p++) {
            // Matrices: output dims 16p.. / 16p+8.. (W's rows) x k 16s.. / 16s+8...
            const __nv_bfloat16* b =
                wsm + (16 * p + 8 * (q >> 1) + r8) * G::WS + 16 * s + 8 * (q & 1);
            uint32_t bh[4], bl[4] = {0, 0, 0, 0};
            ldsm_x4(bh, b);
            if (WP == 2) ldsm_x4(bl, b + G::W_PART);
            mma_p<ZP, WP>(acc[2 * p], ah, al, bh[0], bh[1], bl[0], bl[1]);
            mma_p<ZP, WP>(acc[2 * p + 1], ah, al, bh[2], bh[3], bl[2], bl[3]);
        }
    }
    d2[0] = d2[1] = 0.f;
#pragma unroll
    for (int i = 0; i < 2 * KT; i++) {
        d2[0] = fmaf(acc[i][0], acc[i][0], fmaf(acc[i][1], acc[i][1], d2[0]));
        d2[1] = fmaf(acc[i][2], acc[i][2], fmaf(acc[i][3], acc[i][3], d2[1]));
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        d2[h] += __shfl_xor_sync(0xffffffffu, d2[h], 1);
        d2[h] += __shfl_xor_sync(0xffffffffu, d2[h], 2);
    }
}

/// Start copying component ci's WP parts of W_k, mu'_k and c_k.
template <int KT, int WP>
__device__ __forceinline__ void load_component(const FullModelView& m, int ci, __nv_bfloat16* wdst,
                                               float* mudst, float* cdst) {
    using G = Geo<KT>;
    constexpr int CH = G::DP / 8;  // 16-byte chunks per row
    const uint16_t* src = m.w + size_t(ci) * WP * G::DP * G::DP;
    for (int e = threadIdx.x; e < WP * G::DP * CH; e += kThreads) {
        const int pr = e / CH, ch = e % CH;  // part-major rows
        cp_async16(wdst + pr * G::WS + ch * 8, src + pr * G::DP + ch * 8);
    }
    for (int e = threadIdx.x; e < G::DP / 4; e += kThreads)
        cp_async16(mudst + 4 * e, m.mu + size_t(ci) * G::DP + 4 * e);
    if (threadIdx.x == 0) cp_async4(cdst, m.c + ci);
    cp_async_commit();
}

template <int KT, int ZP, int WP>
__global__ void __launch_bounds__(kThreads, 1)
    full_log_norm_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                         FullModelView m, Pass1Out out) {
    using G = Geo<KT>;
    extern __shared__ __align__(16) unsigned char smem[];
    __nv_bfloat16* wbuf = reinterpret_cast<__nv_bfloat16*>(smem);        // 2 x WP x W_PART
    float* mubuf = reinterpret_cast<float*>(wbuf + 2 * WP * G::W_PART);  // 2 x DP
    float* cbuf = mubuf + 2 * G::DP;                                     // 2
    __shared__ double red[2][kWarps];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int64_t row0 = int64_t(blockIdx.x) * kRows + warp * 16 + g;
    // x - shift of rows g, g + 8 in A-fragment order: value v is at row
    // g + 8 ((v >> 1) & 1), column 16 s + 2t + (v & 1) + 8 (v >> 2).
    float xv[KT][8];
#pragma unroll
    for (int s = 0; s < KT; s++)
#pragma unroll
        for (int v = 0; v < 8; v++) {
            const int64_t row = row0 + 8 * ((v >> 1) & 1);
            const int col = 16 * s + 2 * t + (v & 1) + 8 * (v >> 2);
            xv[s][v] = row < n && col < m.d ? x[row * m.d + col] - m.shift[col] : 0.f;
        }
    const bool arg = out.labels != nullptr, bounded = out.bound_val != nullptr;
    float run_m[2] = {-INFINITY, -INFINITY}, run_s[2] = {0.f, 0.f};
    float best[2] = {-INFINITY, -INFINITY}, bound_v[2] = {INFINITY, INFINITY};
    int best_a[2] = {0, 0}, bound_a[2] = {-1, -1};
#pragma unroll
    for (int h = 0; h < 2; h++)
        if (bounded && row0 + 8 * h < n)
            bound_v[h] = out.bound_val[row0 + 8 * h], bound_a[h] = out.bound_arg[row0 + 8 * h];
    load_component<KT, WP>(m, 0, wbuf, mubuf, cbuf);
    for (int ci = 0; ci < m.k; ci++) {
        const int b = ci & 1;
        if (ci + 1 < m.k) {
            load_component<KT, WP>(m, ci + 1, wbuf + (b ^ 1) * WP * G::W_PART,
                                   mubuf + (b ^ 1) * G::DP, cbuf + (b ^ 1));
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const float* mu = mubuf + b * G::DP;
        float d2[2];
        whitened_norms<KT, ZP, WP>(
            [&](int s, uint32_t(&ah)[4], uint32_t(&al)[4]) {
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int col = 16 * s + 2 * t + 8 * (r >> 1);
                    ah[r] =
                        split_bf16x2(xv[s][2 * r] - mu[col], xv[s][2 * r + 1] - mu[col + 1], al[r]);
                }
            },
            wbuf + b * WP * G::W_PART, d2);
        const float cc = cbuf[b];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const float l = fmaf(-0.5f * kLog2e, d2[h], cc);
            if (arg) {
                const bool after =
                    !bounded || l < bound_v[h] || (l == bound_v[h] && ci > bound_a[h]);
                if (after && l > best[h]) best[h] = l, best_a[h] = ci;
            }
            const float nm = fmaxf(run_m[h], l);
            if (nm == -INFINITY) continue;
            run_s[h] = run_s[h] * fast_exp2(run_m[h] - nm) + fast_exp2(l - nm);
            run_m[h] = nm;
        }
        __syncthreads();  // buffer b is refilled by the next iteration's load
    }
    double lz_sum = 0, w_sum = 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int64_t row = row0 + 8 * h;
        if (t != 0 || row >= n) continue;
        const float lz2 = run_m[h] + log2f(run_s[h]);
        if (out.log_norm) out.log_norm[row] = lz2 * kLn2;
        if (arg) {
            out.labels[row] = best_a[h];
            if (out.top_resp) out.top_resp[row] = exp2f(best[h] - lz2);
            if (out.top_val) out.top_val[row] = best[h];
        }
        const double wi = w ? w[row] : 1.0;
        lz_sum += wi * double(lz2 * kLn2);
        w_sum += wi;
    }
    if (out.sums) add_block_sums(lz_sum, w_sum, red, out.sums);
}

/**
 * The warps' share of sum r z z^T in pass 2: i-blocks (16 dims) are taken
 * in pairs (p, KT - 1 - p), whose blocks on and below the diagonal are
 * 2 KT + 2 tiles of 16 x 8 together, the same for every pair; the pairs'
 * warps split a tile's 16-row k-steps between them.
 */
template <int KT>
struct AccumulateRole {
    static constexpr int NP = (KT + 1) / 2;  // i-block pairs
    static constexpr int R = kWarps / NP;    // warps per pair
    int ahi, alo, nh2, nl2, q;               // blocks, their tile pairs, k-step offset
    bool on;
    __device__ AccumulateRole(int warp) {
        const int p = warp % NP;
        q = warp / NP;
        on = q < R;
        ahi = KT - 1 - p;
        alo = p;
        nh2 = ahi + 1;                   // j-blocks 0 .. 2 ahi + 1, in pairs
        nl2 = alo == ahi ? 0 : alo + 1;  // the middle block of an odd KT stands alone
    }
};

template <int KT, int ZP, int WP, bool kOneHot>
__global__ void __launch_bounds__(kThreads, 1)
    full_accumulate_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                           const float* __restrict__ log_norm, const int32_t* __restrict__ labels,
                           FullModelView m, FullStatsView st, int64_t rows_per_chunk) {
    using G = Geo<KT>;
    constexpr bool kSplit = ZP == 2;  // z and r z carry two parts
    extern __shared__ __align__(16) unsigned char smem[];
    __nv_bfloat16* wsm = reinterpret_cast<__nv_bfloat16*>(smem);  // WP x W_PART
    __nv_bfloat16* zsm = wsm + WP * G::W_PART;                    // ZP x T_PART
    __nv_bfloat16* rzsm = zsm + ZP * G::T_PART;                   // ZP x T_PART
    float* mu = reinterpret_cast<float*>(rzsm + ZP * G::T_PART);  // DP
    float* rowc = mu + G::DP;                                     // kRows: log2 w - log2 e log Z
    float* rowr = rowc + kRows;                                   // kRows: r
    __shared__ float cc;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int q4 = lane / 8, r8 = lane % 8;
    const int ci = blockIdx.x;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);
    if (!kOneHot) {
        load_component<KT, WP>(m, ci, wsm, mu, &cc);
    } else {
        for (int e = threadIdx.x; e < G::DP / 4; e += kThreads)
            cp_async16(mu + 4 * e, m.mu + size_t(ci) * G::DP + 4 * e);
        cp_async_commit();
    }
    cp_async_wait<0>();
    const AccumulateRole<KT> role(warp);
    float acc[KT + 1][2][4];
#pragma unroll
    for (int u = 0; u <= KT; u++)
#pragma unroll
        for (int i = 0; i < 8; i++) acc[u][i / 4][i % 4] = 0.f;
    float s1[KT / 2];
#pragma unroll
    for (int j = 0; j < KT / 2; j++) s1[j] = 0.f;
    float nkp = 0.f;
    for (int64_t t0 = begin; t0 < end; t0 += kRows) {
        const int valid = int(min(int64_t(kRows), end - t0));
        __syncthreads();  // the previous tile's readers are done (and mu, W_k landed)
        // The tile's loads are issued in batches before any is used: one at
        // a time, each waits out the latency of L2 (the block is alone on
        // its SM), which cost ~8x the tile's products.
        constexpr int kPer = kRows * G::DP / kThreads, kBatch = kPer % 32 == 0 ? 32 : 16;
        static_assert(kPer % kBatch == 0, "whole batches");
        const float* xt = x + t0 * m.d;
#pragma unroll 1
        for (int b0 = 0; b0 < kPer; b0 += kBatch) {
            float v[kBatch];
#pragma unroll
            for (int u = 0; u < kBatch; u++) {
                const int e = threadIdx.x + (b0 + u) * kThreads, row = e / G::DP, j = e % G::DP;
                v[u] = row < valid && j < m.d ? xt[row * m.d + j] : 0.f;
            }
#pragma unroll
            for (int u = 0; u < kBatch; u++) {
                const int e = threadIdx.x + (b0 + u) * kThreads, row = e / G::DP, j = e % G::DP;
                const float z = row < valid && j < m.d ? (v[u] - m.shift[j]) - mu[j] : 0.f;
                store_parts<kSplit>(zsm + row * G::WS + j, G::T_PART, z);
            }
        }
        if (threadIdx.x < kRows) {
            const int row = threadIdx.x;
            float rc = -INFINITY, rr = 0.f;
            if (row < valid) {
                const float wi = w ? w[t0 + row] : 1.f;
                if (kOneHot)
                    rr = labels[t0 + row] == ci ? wi : 0.f;
                else if (wi > 0.f)
                    rc = log2f(wi) - kLog2e * log_norm[t0 + row];
            }
            rowc[row] = rc;
            rowr[row] = rr;
        }
        __syncthreads();
        if (!kOneHot) {
            float d2[2];
            whitened_norms<KT, ZP, WP>(
                [&](int s, uint32_t(&ah)[4], uint32_t(&al)[4]) {
                    const __nv_bfloat16* a =
                        zsm + (warp * 16 + r8 + 8 * (q4 & 1)) * G::WS + 16 * s + 8 * (q4 >> 1);
                    ldsm_x4(ah, a);
                    if (kSplit) ldsm_x4(al, a + G::T_PART);
                },
                wsm, d2);
            if (t == 0)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int row = warp * 16 + g + 8 * h;
                    rowr[row] = fast_exp2(fmaf(-0.5f * kLog2e, d2[h], cc) + rowc[row]);
                }
            __syncthreads();
        }
        // r z (the accumulation's B operand) and the first moments.
        bool any = false;
        for (int row = warp; row < kRows; row += kWarps) {
            const float r = rowr[row];
            any |= r != 0.f;
            if (lane == 0) nkp += r;
#pragma unroll
            for (int jj = 0; jj < KT / 2; jj++) {
                const int j = lane + 32 * jj;
                const float z = load_parts<kSplit>(zsm + row * G::WS + j, G::T_PART);
                s1[jj] = fmaf(r, z, s1[jj]);
                store_parts<kSplit>(rzsm + row * G::WS + j, G::T_PART, r * z);
            }
        }
        if (!__syncthreads_or(any)) continue;  // every r underflowed: nothing to add
        if (!role.on) continue;
        for (int ks = role.q; ks < kRows / 16; ks += AccumulateRole<KT>::R) {
            // A = z^T of i-blocks ahi and alo (rows of z are its k).
            uint32_t hh[4], hl[4] = {0, 0, 0, 0}, lh[4] = {0, 0, 0, 0}, ll[4] = {0, 0, 0, 0};
            const int arow = (16 * ks + r8 + 8 * (q4 >> 1)) * G::WS + 8 * (q4 & 1);
            ldsm_x4_t(hh, zsm + arow + 16 * role.ahi);
            if (kSplit) ldsm_x4_t(hl, zsm + G::T_PART + arow + 16 * role.ahi);
            if (role.nl2) {
                ldsm_x4_t(lh, zsm + arow + 16 * role.alo);
                if (kSplit) ldsm_x4_t(ll, zsm + G::T_PART + arow + 16 * role.alo);
            }
            const int brow = (16 * ks + r8 + 8 * (q4 & 1)) * G::WS + 8 * (q4 >> 1);
#pragma unroll
            for (int u = 0; u <= KT; u++) {
                const bool hi_blk = u < role.nh2;
                if (!hi_blk && u - role.nh2 >= role.nl2) continue;
                const int jb = hi_blk ? 2 * u : 2 * (u - role.nh2);
                uint32_t ah[4], al[4];
#pragma unroll
                for (int i = 0; i < 4; i++)
                    ah[i] = hi_blk ? hh[i] : lh[i], al[i] = hi_blk ? hl[i] : ll[i];
                uint32_t bh[4], bl[4] = {0, 0, 0, 0};
                ldsm_x4_t(bh, rzsm + brow + 8 * jb);
                if (kSplit) ldsm_x4_t(bl, rzsm + G::T_PART + brow + 8 * jb);
                mma_p<ZP, ZP>(acc[u][0], ah, al, bh[0], bh[1], bl[0], bl[1]);
                mma_p<ZP, ZP>(acc[u][1], ah, al, bh[2], bh[3], bl[2], bl[3]);
            }
        }
    }
    // One double atomic per accumulator of the block.
    if (role.on) {
#pragma unroll
        for (int u = 0; u <= KT; u++) {
            const bool hi_blk = u < role.nh2;
            if (!hi_blk && u - role.nh2 >= role.nl2) continue;
            const int a = hi_blk ? role.ahi : role.alo;
            const int jb = hi_blk ? 2 * u : 2 * (u - role.nh2);
#pragma unroll
            for (int tt = 0; tt < 2; tt++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int ii = 16 * a + g + 8 * (i >> 1), jj = 8 * (jb + tt) + 2 * t + (i & 1);
                    if (ii < m.d && jj <= ii)
                        atomicAdd(st.sum_zz + (size_t(ci) * G::DP + ii) * G::DP + jj,
                                  double(acc[u][tt][i]));
                }
        }
    }
#pragma unroll
    for (int jj = 0; jj < KT / 2; jj++) {
        const int j = lane + 32 * jj;
        if (j < m.d) atomicAdd(st.sum_z + size_t(ci) * G::DP + j, double(s1[jj]));
    }
    if (lane == 0) atomicAdd(st.nk + ci, double(nkp));
}

__global__ void finish_kernel(FullModelView m, FullStatsView st, const double* __restrict__ mo,
                              double* __restrict__ out) {
    const int c = blockIdx.x, d = m.d, dp = m.dp;
    double* onk = out;
    double* ox = out + m.k;
    double* oxx = ox + size_t(m.k) * d;
    const double nk = st.nk[c];
    const double* sz = st.sum_z + size_t(c) * dp;
    const double* mc = mo + size_t(c) * d;
    if (threadIdx.x == 0) onk[c] += nk;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ox[size_t(c) * d + j] += sz[j] + nk * mc[j];
    // x - s = z + mo: sum r (x - s)(x - s)^T = zz + mo sz^T + sz mo^T + nk mo mo^T.
    for (int e = threadIdx.x; e < d * d; e += blockDim.x) {
        const int i = e / d, j = e % d;
        const double zz = st.sum_zz[(size_t(c) * dp + max(i, j)) * dp + min(i, j)];
        oxx[size_t(c) * d * d + e] += zz + mc[i] * sz[j] + sz[i] * mc[j] + nk * mc[i] * mc[j];
    }
}

template <int KT, int WP>
size_t pass1_bytes() {
    using G = Geo<KT>;
    return 2 * WP * G::W_PART * sizeof(__nv_bfloat16) + (2 * G::DP + 4) * sizeof(float);
}

template <int KT, int ZP, int WP>
size_t pass2_bytes() {
    using G = Geo<KT>;
    return (WP * G::W_PART + 2 * ZP * G::T_PART) * sizeof(__nv_bfloat16) +
           (G::DP + 2 * kRows) * sizeof(float);
}

template <int KT, int ZP, int WP>
cudaError_t log_norm_kt(const float* x, int64_t n, const float* w, const FullModelView& m,
                        const Pass1Out& out, cudaStream_t stream) {
    auto kernel = full_log_norm_kernel<KT, ZP, WP>;
    const size_t bytes = pass1_bytes<KT, WP>();
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
    const dim3 grid{unsigned((n + kRows - 1) / kRows)};
    kernel<<<grid, kThreads, bytes, stream>>>(x, n, w, m, out);
    return cudaGetLastError();
}

template <int KT, int ZP, int WP, bool kOneHot>
cudaError_t accumulate_kt(const float* x, int64_t n, const float* w, const float* log_norm,
                          const int32_t* labels, const FullModelView& m, const FullStatsView& st,
                          int num_sms, cudaStream_t stream) {
    auto kernel = full_accumulate_kernel<KT, ZP, WP, kOneHot>;
    const size_t bytes = pass2_bytes<KT, ZP, WP>();
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
    // Row chunks: at least two waves of blocks, and chunks of at most 64K
    // rows (the blocks running together share their rows through L2; each
    // block adds ~0.6 d^2 doubles once).
    const int64_t tiles = (n + kRows - 1) / kRows;
    int64_t chunks = std::max<int64_t>((n + 65535) / 65536, (2 * int64_t(num_sms) + m.k - 1) / m.k);
    chunks = std::max<int64_t>(1, std::min<int64_t>(std::min<int64_t>(chunks, tiles), 65535));
    const int64_t rows_per_chunk = (tiles + chunks - 1) / chunks * kRows;
    chunks = (n + rows_per_chunk - 1) / rows_per_chunk;
    const dim3 grid{unsigned(m.k), unsigned(chunks)};
    kernel<<<grid, kThreads, bytes, stream>>>(x, n, w, log_norm, labels, m, st, rows_per_chunk);
    return cudaGetLastError();
}

/// f.template operator()<KT>() for the view's padded dimension.
template <class F>
cudaError_t with_kt(int dp, F&& f) {
    switch (dp / 16) {
        case 2:
            return f(std::integral_constant<int, 2>{});
        case 4:
            return f(std::integral_constant<int, 4>{});
        case 6:
            return f(std::integral_constant<int, 6>{});
        case 8:
            return f(std::integral_constant<int, 8>{});
        default:
            return cudaErrorInvalidValue;
    }
}

bool valid_view(const FullModelView& m) {
    return m.d >= 1 && m.d <= kFullMaxDim && m.dp == full_padded_dim(m.d) && m.k >= 1 &&
           full_parts_supported(m.z_parts, m.w_parts);
}

/// f(ZP, WP) as template constants for the view's parts.
template <class F>
cudaError_t with_parts(const FullModelView& m, F&& f) {
    if (m.z_parts == 2 && m.w_parts == 2)
        return f(std::integral_constant<int, 2>{}, std::integral_constant<int, 2>{});
    if (m.z_parts == 2)
        return f(std::integral_constant<int, 2>{}, std::integral_constant<int, 1>{});
    return f(std::integral_constant<int, 1>{}, std::integral_constant<int, 1>{});
}

}  // namespace

cudaError_t launch_full_log_norm(const float* x, int64_t n, const float* weights,
                                 const FullModelView& m, const Pass1Out& out, cudaStream_t stream) {
    if (!valid_view(m)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    return with_kt(m.dp, [&](auto kt) {
        return with_parts(m, [&](auto zp, auto wp) {
            return log_norm_kt<decltype(kt)::value, decltype(zp)::value, decltype(wp)::value>(
                x, n, weights, m, out, stream);
        });
    });
}

cudaError_t launch_full_accumulate(const float* x, int64_t n, const float* weights,
                                   const float* log_norm, const int32_t* labels,
                                   const FullModelView& m, const FullStatsView& st, int num_sms,
                                   cudaStream_t stream) {
    if (!valid_view(m)) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    return with_kt(m.dp, [&](auto kt) {
        constexpr int KT = decltype(kt)::value;
        if (labels)  // one-hot: W is not read; z in two parts, as the accurate classes
            return accumulate_kt<KT, 2, 1, true>(x, n, weights, nullptr, labels, m, st, num_sms,
                                                 stream);
        return with_parts(m, [&](auto zp, auto wp) {
            return accumulate_kt<KT, decltype(zp)::value, decltype(wp)::value, false>(
                x, n, weights, log_norm, nullptr, m, st, num_sms, stream);
        });
    });
}

cudaError_t launch_full_finish(const FullModelView& m, const FullStatsView& st, const double* mo,
                               double* out, cudaStream_t stream) {
    if (!valid_view(m)) return cudaErrorInvalidValue;
    finish_kernel<<<m.k, 256, 0, stream>>>(m, st, mo, out);
    return cudaGetLastError();
}

}  // namespace gpu
}  // namespace faiss_gmm
