/**
 * Shapes the two wgmma passes share (EStepWgmmaKernels.cu, pass 1;
 * EStepWgmmaAccumulate.cu, pass 2): operand tiles per staged set, the
 * blocks per SM the fast class is compiled for, and the asynchronous copy
 * of the pre-split model into swizzled tiles. Device code only (sm_90a).
 */
#pragma once

#include <cstdint>

#include "MmaCommon.cuh"
#include "WgmmaOps.cuh"

namespace faiss_gmm {
namespace gpu {
namespace wgmma_ops {

/// Start copying components [c0, c0 + ncomp) of the pre-split model into
/// swizzled tiles (a's kParts parts, then b's for the diagonal: each ncomp
/// rows x sw_width(dp) bf16), with c (and bsph) into cs (bsph).
template <bool kDiag, int kParts>
__device__ __forceinline__ void load_split_model_async(const MmaModelView& m, int c0, int ncomp,
                                                       uint8_t* tiles, float* cs, float* bsph) {
    const int dp = m.dp, q8 = dp / 8, tile = ncomp * sw_width(dp) * 2;
    for (int e = threadIdx.x; e < ncomp * q8; e += kThreads) {
        const int cc = e / q8, q = e - cc * q8;
        const size_t src = size_t(c0 + cc) * dp + 4 * q;  // words: dp bf16 high parts, then low
        const uint32_t off = sw_offset(cc, 8 * q, ncomp);
        cp_async16(tiles + off, m.a + src);
        if (kParts == 2) cp_async16(tiles + tile + off, m.a + src + dp / 2);
        if (kDiag) {
            cp_async16(tiles + kParts * tile + off, m.b + src);
            if (kParts == 2) cp_async16(tiles + 3 * tile + off, m.b + src + dp / 2);
        }
    }
    for (int e = threadIdx.x; e < ncomp / 4; e += kThreads) {
        cp_async16(cs + 4 * e, m.c + c0 + 4 * e);
        if (!kDiag) cp_async16(bsph + 4 * e, m.bsph + c0 + 4 * e);
    }
}

/// Operand tiles per staged row set or model tile: kParts bf16 parts of
/// x' (of a), and of x'^2 (of b) for the diagonal.
template <bool kDiag, int kParts>
__host__ __device__ constexpr int wg_tiles() {
    return (kDiag ? 2 : 1) * kParts;
}

// Blocks per SM the fast class's kernels are compiled for (registers
// capped at 65536 / (kThreads * blocks)); its smaller shared memory
// (wg_pass1_bytes) lets several blocks overlap one another's staging and
// exponentials with their products. The split classes need one block's
// registers and shared memory.
#ifndef FAISS_GMM_WG_FAST_PASS1_BLOCKS
#define FAISS_GMM_WG_FAST_PASS1_BLOCKS 2
#endif
#ifndef FAISS_GMM_WG_FAST_PASS2_BLOCKS
#define FAISS_GMM_WG_FAST_PASS2_BLOCKS 2
#endif
template <int PL>
constexpr int wg_pass1_blocks() {
    return PL == kBf16 ? FAISS_GMM_WG_FAST_PASS1_BLOCKS : 1;
}
template <bool kDiag, int PL>
constexpr int wg_pass2_blocks() {
    return PL == kBf16 && !kDiag ? FAISS_GMM_WG_FAST_PASS2_BLOCKS : 1;
}

}  // namespace wgmma_ops
}  // namespace gpu
}  // namespace faiss_gmm
