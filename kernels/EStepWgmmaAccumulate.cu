// Pass 2 of the wgmma E-step (sm_90a; pass 1 and the overview in
// EStepWgmmaKernels.cu): the sufficient statistics of the bf16 class (3xbf16
// log-densities, 2xbf16 accumulation), the TF32 class (3xbf16, TF32
// accumulation) and the fast class (bf16, bf16) through one skeleton on the
// policies of WgmmaOps.cuh, and of the spherical fp32 class (3xTF32
// throughout).
//
// A block owns 128 components (64 per warpgroup) and streams row tiles
// (accumulate_wgmma_kernel, accumulate_wgmma_f32_kernel). The transposed
// log-densities (components x rows) are exponentiated in registers and, as
// the A operand from registers, multiply the row tile: R^T x' without the
// responsibilities leaving registers. For bf16 the row tile is stored once
// (128-byte swizzle) and read both ways (K-major for the log-densities,
// MN-major for the accumulation); TF32 needs K-major B, so the rows are also
// stored transposed, permuted to the order the A fragment sums in. The TF32
// tiles keep the no-swizzle "core matrix" layout (8 rows x 16 bytes per
// 128-byte block, cm_offset32 and the transposed tf32_sbo tiles), split into
// a TF32 high part and an fp32 remainder; the fp32 model is split in place
// as it lands.
#include <cuda_bf16.h>

#include <algorithm>

#include "EStepKernels.cuh"
#include "MmaCommon.cuh"
#include "WgmmaOps.cuh"
#include "WgmmaTiles.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

using namespace mma_common;
using namespace wgmma_ops;

/// Rows per tile of pass 2 (the first product's N, the second's K).
template <bool kDiag>
__host__ __device__ constexpr int wg_pass2_rows() {
    return kDiag ? 32 : 64;
}

/// This thread's per-component terms in pass 2: c_k (and bsph_k) of its
/// C-fragment rows g and g + 8 (components warp * 16 + g, + 8), read once.
struct CompTerms {
    float c[2], b[2];
};
template <bool kDiag>
__device__ __forceinline__ CompTerms comp_terms(const float* cs, const float* bsph, int warp,
                                                int g) {
    CompTerms ct;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        ct.c[h] = cs[warp * 16 + g + 8 * h];
        ct.b[h] = kDiag ? 0.f : bsph[warp * 16 + g + 8 * h];
    }
    return ct;
}

/// Log2-densities of this thread's C fragments (components x NB 8-row
/// blocks) into responsibilities in place, r = exp2(l + c_k + rowc (+ bsph_k
/// ||x'||^2)); adds Nk (and the spherical second moment) of rows g and g + 8.
template <int NB, bool kDiag>
__device__ __forceinline__ void responsibilities_regs(float (&lg)[NB][4], const CompTerms& ct,
                                                      const float* rowc, const float* norm, int t,
                                                      float (&nkp)[2], float (&sx2p)[2]) {
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
        const float2 rc = *reinterpret_cast<const float2*>(&rowc[nb * 8 + 2 * t]);
        float2 nr = make_float2(0.f, 0.f);
        if (!kDiag) nr = *reinterpret_cast<const float2*>(&norm[nb * 8 + 2 * t]);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int h = i >> 1;
            const float rci = (i & 1) ? rc.y : rc.x, nri = (i & 1) ? nr.y : nr.x;
            float l = lg[nb][i] + (ct.c[h] + rci);
            if (!kDiag) l = fmaf(ct.b[h], nri, l);
            const float resp = fast_exp2(l);
            lg[nb][i] = resp;
            nkp[h] += resp;
            if (!kDiag) sx2p[h] = fmaf(resp, nri, sx2p[h]);
        }
    }
}

/// Row sets of pass 2: bf16 accumulation stages the next row tile into a
/// second set while the accumulation reads the first; TF32 accumulation
/// (larger transposed tiles) has room for one.
template <bool kAccTf32>
__host__ __device__ constexpr int wg_pass2_sets() {
    return kAccTf32 ? 1 : 2;
}
/// The TF32 accumulation operand: x' (and x'^2) transposed, [dims][rows],
/// K-major core matrices of 8 dimensions x 4 rows. K blocks kTlbo bytes
/// apart (128 plus 16 of padding: a warp's stores of one dimension for 8
/// rows hit distinct banks), 8-dimension blocks tf32_sbo(R) apart.
constexpr int kTlbo = 144;
__host__ __device__ constexpr int tf32_sbo(int rows) { return rows / 4 * kTlbo + 16; }

/// Shared memory of pass 2: the split model tiles of 128 components, the
/// row sets (split bf16 tiles padded to kMmaMaxDim columns, and the
/// transposed TF32 tiles for TF32 accumulation), the raw landing tile.
template <bool kDiag, bool kAccTf32, int kParts>
size_t wg_pass2_bytes(int dp) {
    constexpr int R = wg_pass2_rows<kDiag>();
    const size_t mtile = size_t(kPass2Comps) * sw_width(dp) * 2, xtile = size_t(R) * kMmaMaxDim * 2;
    const size_t ttile = kAccTf32 ? size_t(kMmaMaxDim / 8) * tf32_sbo(R) : 0;
    constexpr int NT = wg_tiles<kDiag, kParts>();
    return 1024 + mtile * NT +  // + alignment
           wg_pass2_sets<kAccTf32>() * (xtile * NT + ttile * (kDiag ? 2 : 1)) +
           sizeof(float) * R * (dp + 4);
}

/// Pass 2's staging of one landed row tile: R rows, kThreads / R threads
/// per row (lanes of one row 32 / TPR apart, so that a quarter-warp's
/// 16-byte reads of the raw rows hit distinct banks), each centring and
/// splitting 16 / TPR column chunks into the swizzled tiles (zeros past
/// dp), and for the spherical case summing ||x'||^2 of its row (fp32, as
/// pass 1's raw_norms) into norm.
template <bool kDiag, class L, bool kAccTf32, int R>
__device__ __forceinline__ void stage_pass2_rows(const float* raw, int s, int valid, int d, int dp,
                                                 const float* shift, uint8_t* xh, uint8_t* xl,
                                                 uint8_t* x2h, uint8_t* x2l, uint8_t* xt,
                                                 uint8_t* x2t, float* norm) {
    constexpr int TPR = kThreads / R, RPW = 32 / TPR, CPT = (kMmaMaxDim / 8) / TPR;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int r = warp * RPW + lane % RPW, cg = lane / RPW;
    float nrm = 0.f;
#pragma unroll
    for (int i = 0; i < CPT; i++) {
        const int c = cg * CPT + i;
        float v[8];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int j = 8 * c + 4 * h;
            float v4[4] = {0.f, 0.f, 0.f, 0.f};
            if (j < dp) centre4(raw, s, r, j, valid, d, shift, v4);
#pragma unroll
            for (int q = 0; q < 4; q++) v[4 * h + q] = v4[q];
        }
        const uint32_t off = sw_offset(r, 8 * c, R);
        uint4 hi, lo;
        L::parts8(v, hi, lo);
        *reinterpret_cast<uint4*>(xh + off) = hi;
        if (L::kParts == 2) *reinterpret_cast<uint4*>(xl + off) = lo;
        // TF32 operand: row r of each 8-row step at k position (r % 8) / 2 +
        // 4 (r % 2), the order the A fragment (the previous product's C
        // fragment) sums in: k = t + 4q holds row 2t + q.
        const int pos = (r & ~7) + ((r & 7) >> 1) + 4 * (r & 1);
        const uint32_t toff = c * tf32_sbo(R) + (pos >> 2) * kTlbo + (pos & 3) * 4;
        if (kAccTf32)
#pragma unroll
            for (int q = 0; q < 8; q++)
                *reinterpret_cast<uint32_t*>(xt + toff + q * 16) = to_tf32(v[q]);
#pragma unroll
        for (int q = 0; q < 8; q++) {
            if (!kDiag) nrm = fmaf(v[q], v[q], nrm);
            v[q] *= v[q];
        }
        if (kDiag) {
            L::parts8(v, hi, lo);
            *reinterpret_cast<uint4*>(x2h + off) = hi;
            if (L::kParts == 2) *reinterpret_cast<uint4*>(x2l + off) = lo;
            if (kAccTf32)
#pragma unroll
                for (int q = 0; q < 8; q++)
                    *reinterpret_cast<uint32_t*>(x2t + toff + q * 16) = to_tf32(v[q]);
        }
    }
    if (!kDiag) {
#pragma unroll
        for (int o = RPW; o < 32; o <<= 1) nrm += __shfl_xor_sync(0xffffffffu, nrm, o);
        if (cg == 0) norm[r] = nrm;
    }
}

template <bool kDiag, int PL, int PA>
__global__ void __launch_bounds__(kThreads, wg_pass2_blocks<kDiag, PL>())
    accumulate_wgmma_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                            const float* __restrict__ log_norm, MmaModelView m, StatsView st,
                            bool vec16, int64_t rows_per_chunk) {
    using L = LogitsPolicy<PL>;
    using A = AccumulatePolicy<PA>;
    constexpr bool kAccTf32 = A::kTf32Op;
    constexpr int R = wg_pass2_rows<kDiag>();
    constexpr int NX = wg_tiles<kDiag, L::kParts>();  // split row tiles per set
    constexpr int kSets = wg_pass2_sets<kAccTf32>();
    extern __shared__ __align__(128) uint8_t smem_raw[];
    uint8_t* const smem = align1024(smem_raw);
    const int dp = m.dp, s = dp + 4;
    const int mtile = kPass2Comps * sw_width(dp) * 2, xtile = R * kMmaMaxDim * 2;
    constexpr int ttile = kAccTf32 ? kMmaMaxDim / 8 * tf32_sbo(R) : 0;
    constexpr int NT = kDiag ? 2 : 1;  // transposed TF32 tiles per set
    const int set_bytes = NX * xtile + NT * ttile;
    uint8_t* const model = smem;  // a hi | a lo | b hi | b lo (lo parts for kParts == 2)
    // set b: x hi | x lo | x2 hi | x2 lo | xt | x2t
    uint8_t* const xsets = smem + mtile * NX;
    float* const raw = reinterpret_cast<float*>(xsets + kSets * set_bytes);
    __shared__ __align__(16) float cs[kPass2Comps], bsph[kPass2Comps];
    __shared__ __align__(16) float norm[2][R], rowc[2][R];
    __shared__ float raw_lz[R], raw_w[R];
    __shared__ __align__(16) float shift[kMmaMaxDim];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int wg = warp / 4;
    const int c0 = blockIdx.x * kPass2Comps;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);

    auto load_tile = [&](int64_t row0) {
        load_tile_async(x, w, log_norm, end, row0, R, m.d, vec16, s, raw, raw_lz, raw_w);
    };
    load_split_model_async<kDiag, L::kParts>(m, c0, kPass2Comps, model, cs, bsph);
    for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
    cp_async_commit();
    if (begin < end) load_tile(begin);
    // This warpgroup's 64 components: 8 blocks from block 8 wg.
    const uint8_t* const mah = model;  // this warpgroup's rows: 64 wg onwards
    const uint8_t* const mal = mah + mtile;
    const uint8_t* const mbh = mah + L::kParts * mtile;
    const uint8_t* const mbl = mbh + mtile;

    float accx[kMaxNd][4], accx2[kDiag ? kMaxNd : 1][4];
#pragma unroll
    for (int j = 0; j < kMaxNd; j++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            accx[j][i] = 0.f;
            if (kDiag) accx2[kDiag ? j : 0][i] = 0.f;
        }
    }
    float nkp[2] = {0.f, 0.f}, sx2p[2] = {0.f, 0.f};
    float lg[R / 8][4];
    CompTerms ct;  // read at the first tile, once the model has landed
    bool have_terms = false;

    int set = 0;
    for (int64_t row0 = begin; row0 < end; row0 += R, set = (set + 1) % kSets) {
        cp_async_wait<0>();
        __syncthreads();  // raw landed; this set's previous products are done
        if (!have_terms) {
            ct = comp_terms<kDiag>(cs, bsph, warp, g);
            have_terms = true;
        }
        uint8_t* const xh = xsets + set * set_bytes;
        uint8_t* const xl = xh + xtile;
        uint8_t* const x2h = xh + L::kParts * xtile;
        uint8_t* const x2l = x2h + xtile;
        uint8_t* const xt = xh + NX * xtile;
        uint8_t* const x2t = xt + ttile;
        const int valid = (int)min((int64_t)R, end - row0);
        stage_pass2_rows<kDiag, L, kAccTf32, R>(raw, s, valid, m.d, dp, shift, xh, xl, x2h, x2l, xt,
                                                x2t, norm[set]);
        row_terms(valid, R, w != nullptr, raw_w, raw_lz, rowc[set]);
        fence_proxy_async();
        __syncthreads();
        if (row0 + R < end) load_tile(row0 + R);  // raw is free again

        // Log2-densities, transposed: this warpgroup's 64 components x R
        // rows. The wait also retires the previous tile's accumulation,
        // which ran under this tile's staging.
        begin_products(lg);
        for (int k0 = 0; k0 < dp; k0 += 16) {
            L::template ss<R>(lg, sw_desc_k(mah, kPass2Comps, 64 * wg, k0),
                              sw_desc_k(mal, kPass2Comps, 64 * wg, k0), sw_desc_k(xh, R, 0, k0),
                              sw_desc_k(xl, R, 0, k0));
            if (kDiag)
                L::template ss<R>(lg, sw_desc_k(mbh, kPass2Comps, 64 * wg, k0),
                                  sw_desc_k(mbl, kPass2Comps, 64 * wg, k0),
                                  sw_desc_k(x2h, R, 0, k0), sw_desc_k(x2l, R, 0, k0));
        }
        wgmma_commit();
        wgmma_wait<0>();
        fence_regs(lg);
        fence_regs(accx);
        if constexpr (kDiag) fence_regs(accx2);
        responsibilities_regs<R / 8, kDiag>(lg, ct, rowc[set], norm[set], t, nkp, sx2p);
        // R^T x' (and R^T x'^2): A = the responsibilities (bf16, registers),
        // B = the row tile's high parts read MN-major (k = rows, n = dims).
        // Left in flight under the next tile's staging.
        if constexpr (kAccTf32) {
            // TF32: A = r rounded to TF32 (k = t + 4q holds row 2t + q, C
            // columns 2t and 2t + 1), B = the transposed TF32 tile.
            uint32_t af[R / 8][4];
#pragma unroll
            for (int ks = 0; ks < R / 8; ks++) {
                af[ks][0] = to_tf32(lg[ks][0]);
                af[ks][1] = to_tf32(lg[ks][2]);
                af[ks][2] = to_tf32(lg[ks][1]);
                af[ks][3] = to_tf32(lg[ks][3]);
            }
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < R / 8; ks++) {
                const uint32_t koff = ks * 2 * kTlbo;
                wgmma_rs_n128_tf32(accx, af[ks], smem_desc(xt + koff, kTlbo, tf32_sbo(R)));
                if constexpr (kDiag)
                    wgmma_rs_n128_tf32(accx2, af[ks], smem_desc(x2t + koff, kTlbo, tf32_sbo(R)));
            }
        } else {
            // bf16: for Bf16x2 r is split into two bf16 parts (r = hi + lo,
            // two products), so that only x' is rounded: the r x'^2 >= 0
            // terms of the second moment then keep 2^-9 relative (one rounded
            // r as well reached 5e-3 at k = 4096 with few rows per
            // component); Bf16 rounds r once (one product). B = the split
            // tile's high parts read MN-major.
            constexpr int RP = A::kRParts;
            uint32_t afh[R / 16][4], afl[RP == 2 ? R / 16 : 1][4];
#pragma unroll
            for (int ks = 0; ks < R / 16; ks++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int blk = 2 * ks + (q >> 1), i = 2 * (q & 1);
                    const __nv_bfloat162 h = __floats2bfloat162_rn(lg[blk][i], lg[blk][i + 1]);
                    const float2 f = __bfloat1622float2(h);
                    afh[ks][q] = bf16x2_bits(h);
                    if constexpr (RP == 2)
                        afl[ks][q] = bf16x2_bits(
                            __floats2bfloat162_rn(lg[blk][i] - f.x, lg[blk][i + 1] - f.y));
                }
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < R / 16; ks++) {
                const uint64_t bx = sw_desc_mn(xh, R, 16 * ks);
                if constexpr (RP == 2) wgmma_rs_n128_mn(accx, afl[ks], bx);
                wgmma_rs_n128_mn(accx, afh[ks], bx);
                if constexpr (kDiag) {
                    const uint64_t bx2 = sw_desc_mn(x2h, R, 16 * ks);
                    if constexpr (RP == 2) wgmma_rs_n128_mn(accx2, afl[ks], bx2);
                    wgmma_rs_n128_mn(accx2, afh[ks], bx2);
                }
            }
        }
        wgmma_commit();
        if constexpr (kSets == 1) wgmma_wait<0>();  // the next staging rewrites this set
    }
    wgmma_wait<0>();
    fence_regs(accx);
    if constexpr (kDiag) fence_regs(accx2);

    flush_stats<kDiag>(accx, accx2, nkp, sx2p, m, st, c0, warp, g, t);
}

/// Rows per tile of the 3xTF32 pass 2 (the fp32 class, spherical): the
/// split fp32 model tiles of 128 components take 128 KB of shared memory.
constexpr int kF32Rows = 32;

/// Shared memory of the 3xTF32 pass 2: model hi / lo (K-major fp32 core
/// matrices, 8 rows x 4 words), row tile hi / lo (the same layout), the
/// transposed TF32 tiles hi / lo (kMmaMaxDim dimensions), the raw landing tile.
size_t wg_f32_pass2_bytes(int dp) {
    const size_t mtile = size_t(kPass2Comps) * dp * 4, xtile = size_t(kF32Rows) * dp * 4;
    const size_t ttile = size_t(kMmaMaxDim / 8) * tf32_sbo(kF32Rows);
    return 2 * (mtile + xtile + ttile) + sizeof(float) * kF32Rows * (dp + 4);
}

/// Byte offset of word (row r, column j) of an fp32 tile in the K-major
/// core-matrix layout (8 rows x 16 bytes per 128-byte block, blocks along k
/// 128 bytes apart, 8-row blocks `sbo` apart).
__device__ __forceinline__ uint32_t cm_offset32(int r, int j, int sbo) {
    return (r >> 3) * sbo + (j >> 2) * 128 + (r & 7) * 16 + (j & 3) * 4;
}

/// Split a landed fp32 tile in place: hi = TF32 (to nearest), lo = the
/// remainder (exact in fp32; the hardware truncates it to TF32).
__device__ __forceinline__ void split_tf32_tile(uint8_t* hi, uint8_t* lo, int bytes) {
    float4* const h4 = reinterpret_cast<float4*>(hi);
    float4* const l4 = reinterpret_cast<float4*>(lo);
    for (int e = threadIdx.x; e < bytes / 16; e += kThreads) {
        const float4 v = h4[e];
        const float4 h = make_float4(__uint_as_float(to_tf32(v.x)), __uint_as_float(to_tf32(v.y)),
                                     __uint_as_float(to_tf32(v.z)), __uint_as_float(to_tf32(v.w)));
        h4[e] = h;
        l4[e] = make_float4(v.x - h.x, v.y - h.y, v.z - h.z, v.w - h.w);
    }
}

/// Start copying components [c0, c0 + ncomp) of the fp32 model rows into a
/// K-major core-matrix tile, with c and bsph.
__device__ __forceinline__ void load_f32_model_async(const MmaModelView& m, int c0, int ncomp,
                                                     uint8_t* tile, float* cs, float* bsph) {
    const int dp = m.dp, q4 = dp / 4, sbo = dp * 32;
    for (int e = threadIdx.x; e < ncomp * q4; e += kThreads) {
        const int cc = e / q4, q = e - cc * q4;
        cp_async16(tile + cm_offset32(cc, 4 * q, sbo), m.a + size_t(c0 + cc) * dp + 4 * q);
    }
    for (int e = threadIdx.x; e < ncomp / 4; e += kThreads) {
        cp_async16(cs + 4 * e, m.c + c0 + 4 * e);
        cp_async16(bsph + 4 * e, m.bsph + c0 + 4 * e);
    }
}

/// Pass 2 for the fp32 class (3xTF32 log-densities, 3xTF32 accumulation),
/// spherical: as accumulate_wgmma_kernel with TF32 operands split into a
/// TF32 high part and an fp32 remainder (which the hardware truncates to
/// TF32), three products per step; one row set (shared memory).
__global__ void __launch_bounds__(kThreads, 1)
    accumulate_wgmma_f32_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                                const float* __restrict__ log_norm, MmaModelView m, StatsView st,
                                bool vec16, int64_t rows_per_chunk) {
    constexpr int R = kF32Rows;
    constexpr int TPR = kThreads / R, RPW = 32 / TPR, CPT = (kMmaMaxDim / 8) / TPR;
    extern __shared__ __align__(128) uint8_t smem[];
    const int dp = m.dp, s = dp + 4, sbo = dp * 32;  // model and row tiles: dp words a row
    const int mtile = kPass2Comps * dp * 4, xtile = R * dp * 4;
    constexpr int ttile = kMmaMaxDim / 8 * tf32_sbo(R);
    uint8_t* const mh = smem;
    uint8_t* const ml = mh + mtile;
    uint8_t* const xh = ml + mtile;
    uint8_t* const xl = xh + xtile;
    uint8_t* const th = xl + xtile;
    uint8_t* const tl = th + ttile;
    float* const raw = reinterpret_cast<float*>(tl + ttile);
    __shared__ __align__(16) float cs[kPass2Comps], bsph[kPass2Comps];
    __shared__ __align__(16) float norm[R], rowc[R];
    __shared__ float raw_lz[R], raw_w[R];
    __shared__ __align__(16) float shift[kMmaMaxDim];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int wg = warp / 4;
    const int c0 = blockIdx.x * kPass2Comps;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);

    auto load_tile = [&](int64_t row0) {
        load_tile_async(x, w, log_norm, end, row0, R, m.d, vec16, s, raw, raw_lz, raw_w);
    };
    load_f32_model_async(m, c0, kPass2Comps, mh, cs, bsph);
    for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
    cp_async_commit();
    if (begin < end) load_tile(begin);
    cp_async_wait<1>();
    __syncthreads();
    split_tf32_tile(mh, ml, mtile);
    const uint8_t* const wmh = mh + 8 * wg * sbo;
    const uint8_t* const wml = ml + 8 * wg * sbo;
    const CompTerms ct = comp_terms<false>(cs, bsph, warp, g);

    float accx[kMaxNd][4], accx2[1][4] = {};
#pragma unroll
    for (int j = 0; j < kMaxNd; j++) accx[j][0] = accx[j][1] = accx[j][2] = accx[j][3] = 0.f;
    float nkp[2] = {0.f, 0.f}, sx2p[2] = {0.f, 0.f};
    float lg[R / 8][4];

    for (int64_t row0 = begin; row0 < end; row0 += R) {
        cp_async_wait<0>();
        __syncthreads();  // raw landed; the previous tile's products are done
        const int valid = (int)min((int64_t)R, end - row0);
        {  // stage: split row tile (K-major), split transposed tiles, norms
            const int r = warp * RPW + lane % RPW, cg = lane / RPW;
            const int pos = (r & ~7) + ((r & 7) >> 1) + 4 * (r & 1);
            float nrm = 0.f;
#pragma unroll
            for (int i = 0; i < CPT; i++) {
                const int c = cg * CPT + i;
                float v[8], hi[8], lo[8];
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int j = 8 * c + 4 * hh;
                    float v4[4] = {0.f, 0.f, 0.f, 0.f};
                    if (j < dp) centre4(raw, s, r, j, valid, m.d, shift, v4);
#pragma unroll
                    for (int q = 0; q < 4; q++) v[4 * hh + q] = v4[q];
                }
#pragma unroll
                for (int q = 0; q < 8; q++) {
                    hi[q] = __uint_as_float(to_tf32(v[q]));
                    lo[q] = v[q] - hi[q];
                    nrm = fmaf(v[q], v[q], nrm);
                }
                if (8 * c < dp) {
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) {
                        const uint32_t off = cm_offset32(r, 8 * c + 4 * hh, sbo);
                        *reinterpret_cast<float4*>(xh + off) =
                            make_float4(hi[4 * hh], hi[4 * hh + 1], hi[4 * hh + 2], hi[4 * hh + 3]);
                        *reinterpret_cast<float4*>(xl + off) =
                            make_float4(lo[4 * hh], lo[4 * hh + 1], lo[4 * hh + 2], lo[4 * hh + 3]);
                    }
                }
                const uint32_t toff = c * tf32_sbo(R) + (pos >> 2) * kTlbo + (pos & 3) * 4;
#pragma unroll
                for (int q = 0; q < 8; q++) {
                    *reinterpret_cast<float*>(th + toff + q * 16) = hi[q];
                    *reinterpret_cast<float*>(tl + toff + q * 16) = lo[q];
                }
            }
#pragma unroll
            for (int o = RPW; o < 32; o <<= 1) nrm += __shfl_xor_sync(0xffffffffu, nrm, o);
            if (cg == 0) norm[r] = nrm;
        }
        row_terms(valid, R, w != nullptr, raw_w, raw_lz, rowc);
        fence_proxy_async();
        __syncthreads();
        if (row0 + R < end) load_tile(row0 + R);  // raw is free again

        // 3xTF32 log-densities, transposed: 64 components x R rows.
        begin_products(lg);
        for (int k0 = 0; k0 < dp; k0 += 8) {
            const uint32_t koff = k0 * 32;  // two 16-byte k blocks of 128 bytes
            const uint64_t ah = smem_desc(wmh + koff, 128, sbo),
                           al = smem_desc(wml + koff, 128, sbo);
            const uint64_t bh = smem_desc(xh + koff, 128, sbo), bl = smem_desc(xl + koff, 128, sbo);
            wgmma_ss_tf32_n32(lg, al, bh);
            wgmma_ss_tf32_n32(lg, ah, bl);
            wgmma_ss_tf32_n32(lg, ah, bh);
        }
        wgmma_commit();
        wgmma_wait<0>();
        fence_regs(lg);
        fence_regs(accx);
        responsibilities_regs<R / 8, false>(lg, ct, rowc, norm, t, nkp, sx2p);
        // 3xTF32 R^T x': r split into TF32 hi and an fp32 remainder (k = t +
        // 4q holds row 2t + q: C columns 2t, 2t + 1), B the transposed tiles.
        uint32_t afh[R / 8][4], afl[R / 8][4];
#pragma unroll
        for (int ks = 0; ks < R / 8; ks++) {
            const float v[4] = {lg[ks][0], lg[ks][2], lg[ks][1], lg[ks][3]};
#pragma unroll
            for (int q = 0; q < 4; q++) {
                afh[ks][q] = to_tf32(v[q]);
                afl[ks][q] = __float_as_uint(v[q] - __uint_as_float(afh[ks][q]));
            }
        }
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < R / 8; ks++) {
            const uint32_t koff = ks * 2 * kTlbo;
            const uint64_t bh = smem_desc(th + koff, kTlbo, tf32_sbo(R));
            const uint64_t bl = smem_desc(tl + koff, kTlbo, tf32_sbo(R));
            wgmma_rs_n128_tf32(accx, afl[ks], bh);
            wgmma_rs_n128_tf32(accx, afh[ks], bl);
            wgmma_rs_n128_tf32(accx, afh[ks], bh);
        }
        wgmma_commit();
        wgmma_wait<0>();  // the next staging rewrites the tiles
        fence_regs(accx);
    }

    flush_stats<false>(accx, accx2, nkp, sx2p, m, st, c0, warp, g, t);
}

}  // namespace

namespace {
template <int PL, int PA>
cudaError_t accumulate_wgmma(const float* x, int64_t n, const float* weights, const float* log_norm,
                             const MmaModelView& m, const StatsView& stats, int num_sms,
                             cudaStream_t stream) {
    constexpr bool kTf32Op = AccumulatePolicy<PA>::kTf32Op;
    constexpr int kParts = LogitsPolicy<PL>::kParts;
    return m.spherical
               ? launch_pass2(accumulate_wgmma_kernel<false, PL, PA>,
                              wg_pass2_bytes<false, kTf32Op, kParts>(m.dp), wg_pass2_rows<false>(),
                              x, n, weights, log_norm, m, stats, num_sms, stream)
               : launch_pass2(accumulate_wgmma_kernel<true, PL, PA>,
                              wg_pass2_bytes<true, kTf32Op, kParts>(m.dp), wg_pass2_rows<true>(), x,
                              n, weights, log_norm, m, stats, num_sms, stream);
}
}  // namespace

cudaError_t launch_accumulate_wgmma(const float* x, int64_t n, const float* weights,
                                    const float* log_norm, const MmaModelView& m,
                                    const MmaPlan& plan, const StatsView& stats, int num_sms,
                                    cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (m.d > kMmaMaxDim || m.dp % 16 || m.kp % kMmaCompPad) return cudaErrorInvalidValue;
    using M = MmaPrecision;
    if (plan.logits == M::Tf32x3 && plan.accumulate == M::Tf32x3 && m.spherical && !m.split_bf16)
        return launch_pass2(accumulate_wgmma_f32_kernel, wg_f32_pass2_bytes(m.dp), kF32Rows, x, n,
                            weights, log_norm, m, stats, num_sms, stream);
    if (!m.split_bf16) return cudaErrorInvalidValue;
    if (plan.logits == M::Bf16x3 && plan.accumulate == M::Bf16x2)
        return accumulate_wgmma<kBf16x3, kBf16x2>(x, n, weights, log_norm, m, stats, num_sms,
                                                  stream);
    if (plan.logits == M::Bf16x3 && plan.accumulate == M::Tf32)
        return accumulate_wgmma<kBf16x3, kTf32>(x, n, weights, log_norm, m, stats, num_sms, stream);
    if (plan.logits == M::Bf16 && plan.accumulate == M::Bf16)
        return accumulate_wgmma<kBf16, kBf16>(x, n, weights, log_norm, m, stats, num_sms, stream);
    return cudaErrorInvalidValue;
}

}  // namespace gpu
}  // namespace faiss_gmm
