// Fused GMM E-step on Hopper's warpgroup tensor-core instructions (wgmma,
// sm_90a), d <= kMmaMaxDim: pass 1 (log Z) here, pass 2 (the sufficient
// statistics) in EStepWgmmaAccumulate.cu, the shapes both share in
// WgmmaTiles.cuh. Pass 1 covers the bf16 and TF32 classes (3xbf16
// log-densities) and the fast class (bf16), one skeleton instantiated on
// the precision policies of WgmmaOps.cuh. Same outputs as the mma.sync
// kernels (EStepMmaKernels.cu); what changes is the tile a single
// instruction covers: a warpgroup (4 warps) multiplies 64 x N x 16 at once
// from operands in shared memory (or A in registers), so the issue slots
// mma.sync spent on fragment loads are free for the exponentials.
//
// bf16 operand tiles use the 128-byte-swizzled layout (sw_offset: a
// 128-byte line per row and 64-column block, 16-byte chunks XOR row % 8),
// which measured ~8% faster end to end than the no-swizzle one. The centred
// rows are written once per tile, split into high and low parts; the model
// arrives pre-split (bf16 parts, by launch_model_terms).
//
// Pass 1 (log_norm_wgmma_kernel): a block owns 128 rows (64 per warpgroup,
// the wgmma's M) and sweeps the components in tiles of 64 (32 diagonal),
// the wgmma's N; online log-sum-exp in base 2 as in the mma.sync kernel,
// on one accumulator set while the next tile's products fill the other.
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

/// Centre rows [0, nrows) of a landed raw tile (zero past d and past
/// `valid`) into split bf16 swizzled tiles of `rows` rows: x' into xh / xl
/// and, for the diagonal, x'^2 into x2h / x2l. Row r goes to tile row r +
/// row_off; `chunks` 16-byte column chunks are written (zeros past dp).
/// Lanes take the 8 rows of one 1024-byte swizzle atom, so a warp's 16-byte
/// stores fill 4 atoms' lines without bank conflicts.
template <bool kDiag, class L>
__device__ __forceinline__ void stage_split_rows(const float* raw, int s, int nrows, int valid,
                                                 int d, int dp, int chunks, const float* shift,
                                                 uint8_t* xh, uint8_t* xl, uint8_t* x2h,
                                                 uint8_t* x2l, int rows, int row_off) {
    for (int e = threadIdx.x; e < nrows * chunks; e += kThreads) {
        const int r = (e & 7) + 8 * (e / (8 * chunks)), c = (e >> 3) % chunks;
        float v[8];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int j = 8 * c + 4 * h;
            float v4[4] = {0.f, 0.f, 0.f, 0.f};
            if (j < dp) centre4(raw, s, r, j, valid, d, shift, v4);
#pragma unroll
            for (int q = 0; q < 4; q++) v[4 * h + q] = v4[q];
        }
        const uint32_t off = sw_offset(r + row_off, 8 * c, rows);
        uint4 hi, lo;
        L::parts8(v, hi, lo);
        *reinterpret_cast<uint4*>(xh + off) = hi;
        if (L::kParts == 2) *reinterpret_cast<uint4*>(xl + off) = lo;
        if (kDiag) {
#pragma unroll
            for (int q = 0; q < 8; q++) v[q] *= v[q];
            L::parts8(v, hi, lo);
            *reinterpret_cast<uint4*>(x2h + off) = hi;
            if (L::kParts == 2) *reinterpret_cast<uint4*>(x2l + off) = lo;
        }
    }
}

/// Components per model tile of pass 1 (the wgmma's N).
template <bool kDiag>
__host__ __device__ constexpr int wg_pass1_comps() {
    return kDiag ? 32 : 64;
}
/// Shared memory of pass 1: split row tiles (x', and x'^2 for the diagonal)
/// for 128 rows, then two model buffers. Rows land raw (fp32, 64 at a time)
/// in the model buffers before the sweep. Sized by the parts the precision
/// stages, so that the fast class fits two or three blocks per SM.
template <bool kDiag, int kParts>
size_t wg_pass1_bytes(int dp) {
    const size_t xtile = size_t(kPass1Rows) * sw_width(dp) * 2,
                 mtile = size_t(wg_pass1_comps<kDiag>()) * sw_width(dp) * 2;
    const size_t mbufs = 2 * mtile * wg_tiles<kDiag, kParts>();
    const size_t raw = sizeof(float) * 64 * (dp + 4);
    return 1024 + xtile * wg_tiles<kDiag, kParts>() + std::max(mbufs, raw);  // + alignment
}
template <bool kDiag, int PL, class Reduce>
__global__ void __launch_bounds__(kThreads, wg_pass1_blocks<PL>())
    log_norm_wgmma_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                          MmaModelView m, bool vec16, Pass1Out out) {
    constexpr int BN = wg_pass1_comps<kDiag>();
    using L = LogitsPolicy<PL>;
    // Spherical: the warp's x' fragments (hi and lo, all of d) live in
    // registers for the whole sweep, so that each wgmma reads only the model
    // tile from shared memory. The diagonal's x'^2 would not fit as well.
    constexpr bool kRegA = !kDiag;
    constexpr int KS = kMmaMaxDim / 16;
    extern __shared__ __align__(128) uint8_t smem_raw[];
    uint8_t* const smem = align1024(smem_raw);
    const int dp = m.dp, s = dp + 4;
    const int xtile = kPass1Rows * sw_width(dp) * 2, mtile = BN * sw_width(dp) * 2;
    constexpr int NT = wg_tiles<kDiag, L::kParts>();
    uint8_t* const xh = smem;
    uint8_t* const xl = xh + xtile;               // kParts == 2 only
    uint8_t* const x2h = xh + L::kParts * xtile;  // diagonal only
    uint8_t* const x2l = x2h + xtile;
    uint8_t* const mbuf0 = smem + xtile * NT;
    const int mbuf_bytes = mtile * NT;
    float* const raw = reinterpret_cast<float*>(mbuf0);
    // Three sets of per-component terms: the log-sum-exp of tile t - 1 reads
    // its set while tile t + 1's lands.
    __shared__ __align__(16) float cs[3][BN], bsph[3][BN];
    __shared__ float norm[kPass1Rows];
    __shared__ __align__(16) float shift[kMmaMaxDim];
    __shared__ double red[2][kWarps];
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int wg = warp / 4;
    const int64_t row0 = int64_t(blockIdx.x) * kPass1Rows;

    for (int j = tid; j < dp; j += kThreads) shift[j] = m.shift[j];
    // Rows in two halves of 64 through the raw buffer.
    for (int half = 0; half < 2; half++) {
        const int64_t r0 = row0 + 64 * half;
        const int valid = (int)max((int64_t)0, min((int64_t)64, n - r0));
        if (valid > 0) load_rows_async(x, n, r0, 64, m.d, vec16, s, raw);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();  // raw landed (and shift, the first time)
        stage_split_rows<kDiag, L>(raw, s, 64, valid, m.d, dp, dp / 8, shift, xh, xl, x2h, x2l,
                                   kPass1Rows, 64 * half);
        if (!kDiag) raw_norms(raw, s, valid, 64, m.d, shift, norm + 64 * half);
        __syncthreads();  // raw is free; the split rows are complete
    }
    load_split_model_async<kDiag, L::kParts>(m, 0, BN, mbuf0, cs[0], bsph[0]);
    cp_async_commit();

    // This warpgroup's 64 rows: 8 row blocks from row block 8 wg.
    uint32_t xa_h[kRegA ? KS : 1][4], xa_l[kRegA && L::kParts == 2 ? KS : 1][4];
    if constexpr (kRegA) {
        // ldmatrix.x4: lane l addresses row (l % 8) + 8 ((l / 8) % 2) of the
        // warp's 16, k chunk l / 16: registers a0..a3 of the A fragment.
        const int row = warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            if (16 * ks >= dp) break;
            const uint32_t off = sw_offset(row, 16 * ks + 8 * (lane >> 4), kPass1Rows);
            ldsm_x4(xa_h[ks], xh + off);
            if constexpr (L::kParts == 2) ldsm_x4(xa_l[ks], xl + off);
        }
    }

    Reduce reduce;
    reduce.begin(row0, n, out);
    float acc0[BN / 8][4], acc1[BN / 8][4];
    // Log2-densities of model tile `tile` into acc: async, one commit group.
    auto issue = [&](float(&acc)[BN / 8][4], int tile) {
        const uint8_t* const ah = mbuf0 + (tile & 1) * mbuf_bytes;
        const uint8_t* const al = ah + mtile;
        const uint8_t* const bh = ah + L::kParts * mtile;
        const uint8_t* const bl = bh + mtile;
        begin_products(acc);
        if constexpr (kRegA) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                if (16 * ks >= dp) break;
                const uint64_t dh = sw_desc_k(ah, BN, 0, 16 * ks),
                               dl = sw_desc_k(al, BN, 0, 16 * ks);
                L::rs(acc, xa_h[ks], xa_l[L::kParts == 2 ? ks : 0], dh, dl);
            }
        } else {
            // This warpgroup's 64 rows from row 64 wg of the split tiles.
            for (int k0 = 0; k0 < dp; k0 += 16) {
                L::template ss<BN>(acc, sw_desc_k(xh, kPass1Rows, 64 * wg, k0),
                                   sw_desc_k(xl, kPass1Rows, 64 * wg, k0), sw_desc_k(ah, BN, 0, k0),
                                   sw_desc_k(al, BN, 0, k0));
                if (kDiag)
                    L::template ss<BN>(acc, sw_desc_k(x2h, kPass1Rows, 64 * wg, k0),
                                       sw_desc_k(x2l, kPass1Rows, 64 * wg, k0),
                                       sw_desc_k(bh, BN, 0, k0), sw_desc_k(bl, BN, 0, k0));
            }
        }
        wgmma_commit();
    };
    // Rows g and g + 8 folded over tile `tile` (log-sum-exp / argmax).
    auto lse = [&](float(&acc)[BN / 8][4], int tile) {
        reduce.template tile<BN / 8, kDiag>(acc, cs[tile % 3], bsph[tile % 3], norm, warp, g, t,
                                            tile * BN);
    };
    // Tile t's products run while tile t - 1's log-sum-exp is computed (two
    // accumulator sets, alternating).
    const int ntiles = (m.k + BN - 1) / BN;
    for (int tile = 0; tile < ntiles; tile++) {
        cp_async_wait<0>();
        fence_proxy_async();  // the split rows (first tile) and model tile `tile`
        __syncthreads();      // ... visible; tile - 1's products are done everywhere
        if (tile + 1 < ntiles) {
            const int nt = tile + 1;
            load_split_model_async<kDiag, L::kParts>(m, nt * BN, BN, mbuf0 + (nt & 1) * mbuf_bytes,
                                                     cs[nt % 3], bsph[nt % 3]);
            cp_async_commit();
        }
        if (tile & 1) {
            issue(acc1, tile);
            lse(acc0, tile - 1);
        } else {
            issue(acc0, tile);
            if (tile > 0) lse(acc1, tile - 1);
        }
        wgmma_wait<0>();
        fence_regs(acc0);
        fence_regs(acc1);
    }
    if ((ntiles - 1) & 1)
        lse(acc1, ntiles - 1);
    else
        lse(acc0, ntiles - 1);

    reduce.finish(row0, n, w, out, red);
}

}  // namespace

bool wgmma_device(int device) {
    int major = 0, minor = 0;
    if (device < 0 && cudaGetDevice(&device) != cudaSuccess) return false;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
               cudaSuccess &&
           cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) ==
               cudaSuccess &&
           major == 9 && minor == 0;
}

WgmmaCoverage wgmma_coverage(const MmaPlan& plan, bool spherical) {
    WgmmaCoverage c;
    using M = MmaPrecision;
    // 3xTF32 log-densities stay on mma.sync in pass 1: a wgmma version (x'
    // in registers, 32-component split tiles) took 7.4 ms at (1M, 1024, 128),
    // slower than mma.sync (bench/NOTES.md). Single bf16 logits are covered
    // only with single bf16 accumulation (the fast class), so that both
    // passes read the same (pre-split) model layout.
    const bool fast = plan.logits == M::Bf16 && plan.accumulate == M::Bf16;
    c.log_norm = plan.logits == M::Bf16x3 || fast;
    c.accumulate = (plan.logits == M::Bf16x3 &&
                    (plan.accumulate == M::Bf16x2 || plan.accumulate == M::Tf32)) ||
                   fast || (spherical && plan.logits == M::Tf32x3 && plan.accumulate == M::Tf32x3);
    return c;
}

namespace {

template <bool kDiag, class Reduce>
cudaError_t pass1_wgmma_at(const float* x, int64_t n, const float* weights, const MmaModelView& m,
                           MmaPrecision logits, const Pass1Out& out, cudaStream_t stream) {
    const size_t bytes3 = wg_pass1_bytes<kDiag, 2>(m.dp), bytes1 = wg_pass1_bytes<kDiag, 1>(m.dp);
    return logits == MmaPrecision::Bf16x3
               ? launch_pass1(log_norm_wgmma_kernel<kDiag, kBf16x3, Reduce>, bytes3, x, n, weights,
                              m, out, stream)
               : launch_pass1(log_norm_wgmma_kernel<kDiag, kBf16, Reduce>, bytes1, x, n, weights, m,
                              out, stream);
}

template <class Reduce>
cudaError_t pass1_wgmma(const float* x, int64_t n, const float* weights, const MmaModelView& m,
                        MmaPrecision logits, const Pass1Out& out, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (m.d > kMmaMaxDim || m.dp % 16 || m.kp % kMmaCompPad) return cudaErrorInvalidValue;
    if ((logits != MmaPrecision::Bf16x3 && logits != MmaPrecision::Bf16) || !m.split_bf16)
        return cudaErrorInvalidValue;
    return m.spherical ? pass1_wgmma_at<false, Reduce>(x, n, weights, m, logits, out, stream)
                       : pass1_wgmma_at<true, Reduce>(x, n, weights, m, logits, out, stream);
}

}  // namespace

cudaError_t launch_log_norm_wgmma(const float* x, int64_t n, const float* weights,
                                  const MmaModelView& m, MmaPrecision logits, float* log_norm,
                                  const StatsView& stats, cudaStream_t stream) {
    Pass1Out out;
    out.log_norm = log_norm;
    out.sums = stats.sums;
    return pass1_wgmma<LseReduce>(x, n, weights, m, logits, out, stream);
}

cudaError_t launch_assign_wgmma(const float* x, int64_t n, const MmaModelView& m,
                                MmaPrecision logits, const Pass1Out& out, cudaStream_t stream) {
    if (!out.labels) return cudaErrorInvalidValue;
    return with_assign_reduce(out, [&](auto reduce) {
        return pass1_wgmma<decltype(reduce)>(x, n, nullptr, m, logits, out, stream);
    });
}

}  // namespace gpu
}  // namespace faiss_gmm
