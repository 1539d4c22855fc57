/**
 * Hopper warpgroup tensor-core building blocks for the E-step kernels
 * (EStepWgmmaKernels.cu, sm_90a): the 128-byte-swizzled bf16 tile layout and
 * its shared-memory descriptors, the wgmma instruction shapes the kernels
 * issue, fences, and the precision policies of the log-density product
 * (how many bf16 parts each operand carries). Device code only.
 */
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "MmaCommon.cuh"

namespace faiss_gmm {
namespace gpu {
namespace wgmma_ops {

using namespace mma_common;

/// Columns of a bf16 operand tile: dp rounded up to whole 64-column blocks
/// (one 128-byte line per row and block, the 128-byte swizzle's width).
__host__ __device__ constexpr int sw_width(int dp) { return (dp + 63) / 64 * 64; }

/// Byte offset of element (row r, column j) of a bf16 tile of `rows` rows in
/// the 128-byte-swizzled layout wgmma reads: column blocks of 64 (rows x 128
/// bytes each), a 128-byte line per row, and the 16-byte chunks of a line
/// permuted by XOR with r % 8 (so that the 8 rows of a core matrix sit in
/// distinct banks). Tiles start 1024-byte aligned.
__device__ __forceinline__ uint32_t sw_offset(int r, int j, int rows) {
    return (j >> 6) * rows * 128 + r * 128 + ((((j >> 3) & 7) ^ (r & 7)) << 4) + (j & 7) * 2;
}

/// wgmma shared-memory descriptor, no swizzle: lbo = bytes between core
/// matrices along k, sbo = along M / N.
__device__ __forceinline__ uint64_t smem_desc(const void* p, uint32_t lbo, uint32_t sbo) {
    const uint32_t a = uint32_t(__cvta_generic_to_shared(p));
    return uint64_t((a & 0x3ffff) >> 4) | (uint64_t((lbo >> 4) & 0x3fff) << 16) |
           (uint64_t((sbo >> 4) & 0x3fff) << 32);
}

/// K-major descriptor of a swizzled tile (`rows` rows): rows from r0 (a
/// multiple of 8), the k16 step at column k0 (a multiple of 16).
__device__ __forceinline__ uint64_t sw_desc_k(const uint8_t* tile, int rows, int r0, int k0) {
    return smem_desc(tile + (k0 >> 6) * rows * 128 + r0 * 128 + (k0 & 63) * 2, 16, 1024) |
           (uint64_t(1) << 62);
}
/// MN-major descriptor of a swizzled tile (`rows` rows, read as B with k =
/// rows from r0, a multiple of 8, and n = columns): n blocks of 64 are
/// rows x 128 bytes apart, 8-row k groups 1024.
__device__ __forceinline__ uint64_t sw_desc_mn(const uint8_t* tile, int rows, int r0) {
    return smem_desc(tile + r0 * 128, rows * 128, 1024) | (uint64_t(1) << 62);
}
/// The dynamic shared memory rounded up to 1024 bytes (the swizzle's period).
__device__ __forceinline__ uint8_t* align1024(uint8_t* p) {
    const uint32_t a = uint32_t(__cvta_generic_to_shared(p));
    return p + ((1024u - (a & 1023u)) & 1023u);
}

__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/// Shared memory written by ordinary stores is read next by wgmma (the
/// async proxy): each writing thread fences before the barrier.
__device__ __forceinline__ void fence_proxy_async() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
/// Pins register values in place across wgmma fences and waits: the
/// compiler may otherwise sink a register write past wgmma.fence (and the
/// wgmmas get serialised, C7515) or hoist a read above the wait.
template <int NB>
__device__ __forceinline__ void fence_regs(float (&d)[NB][4]) {
#pragma unroll
    for (int j = 0; j < NB; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) asm volatile("" : "+f"(d[j][i])::"memory");
}

/// Zero a product's accumulators and open it: pinned (fence_regs) so the
/// zeroing is not sunk past wgmma.fence.
template <int NB>
__device__ __forceinline__ void begin_products(float (&d)[NB][4]) {
#pragma unroll
    for (int j = 0; j < NB; j++) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.f;
    fence_regs(d);
    wgmma_fence();
}

// The accumulator operands of a wgmma ("+f" of d[j][0..3], j < NB) and
// their %-register lists, written once: each wrapper below spells only its
// instruction and its other operands.
#define FGMM_WG_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define FGMM_WG_ACC4 FGMM_WG_D4(0), FGMM_WG_D4(1), FGMM_WG_D4(2), FGMM_WG_D4(3)
#define FGMM_WG_ACC8 FGMM_WG_ACC4, FGMM_WG_D4(4), FGMM_WG_D4(5), FGMM_WG_D4(6), FGMM_WG_D4(7)
#define FGMM_WG_ACC16                                                                           \
    FGMM_WG_ACC8, FGMM_WG_D4(8), FGMM_WG_D4(9), FGMM_WG_D4(10), FGMM_WG_D4(11), FGMM_WG_D4(12), \
        FGMM_WG_D4(13), FGMM_WG_D4(14), FGMM_WG_D4(15)
#define FGMM_WG_R16 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define FGMM_WG_R32                                                                               \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define FGMM_WG_R64                                                                               \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
    "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
    "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
    "%56, %57, %58, %59, %60, %61, %62, %63}"

/// d (64 x 32, fp32) = A * B (+ d when accumulate), bf16 operands from
/// shared memory (both K-major).
__device__ __forceinline__ void wgmma_ss_n32(float (&d)[4][4], uint64_t desc_a, uint64_t desc_b,
                                             int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 " FGMM_WG_R16
        ", %16, %17, p, 1, 1, 0, 0;\n}\n"
        : FGMM_WG_ACC4
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

/// d (64 x 64, fp32) = A * B (+ d when accumulate), bf16 operands from
/// shared memory (both K-major).
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[8][4], uint64_t desc_a, uint64_t desc_b,
                                             int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FGMM_WG_R32
        ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : FGMM_WG_ACC8
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

/// d (64 x 128, fp32) += A * B, bf16 A from registers (the C-fragment
/// layout of the previous product), B from shared memory MN-major.
__device__ __forceinline__ void wgmma_rs_n128_mn(float (&d)[16][4], const uint32_t (&a)[4],
                                                 uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FGMM_WG_R64
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : FGMM_WG_ACC16
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

/// d (64 x 64, fp32) += A * B, bf16 A from registers (ldmatrix of a
/// swizzled tile), B from shared memory K-major.
__device__ __forceinline__ void wgmma_rs_n64_k(float (&d)[8][4], const uint32_t (&a)[4],
                                               uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FGMM_WG_R32
        ", {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
        : FGMM_WG_ACC8
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

/// d (64 x 128, fp32) += A * B, TF32 A from registers (the C-fragment
/// layout of the previous product, k permuted), B from shared memory K-major.
__device__ __forceinline__ void wgmma_rs_n128_tf32(float (&d)[16][4], const uint32_t (&a)[4],
                                                   uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 " FGMM_WG_R64
        ", {%64, %65, %66, %67}, %68, p, 1, 1;\n}\n"
        : FGMM_WG_ACC16
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

/// d (64 x 32, fp32) += A * B, TF32 operands from shared memory (both
/// K-major; the hardware reads the top 19 bits of each word).
__device__ __forceinline__ void wgmma_ss_tf32_n32(float (&d)[4][4], uint64_t desc_a,
                                                  uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32 " FGMM_WG_R16
        ", %16, %17, p, 1, 1;\n}\n"
        : FGMM_WG_ACC4
        : "l"(desc_a), "l"(desc_b), "r"(1));
}

template <int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 8][4], uint64_t a, uint64_t b, int acc) {
    if constexpr (N == 64)
        wgmma_ss_n64(d, a, b, acc);
    else
        wgmma_ss_n32(d, a, b, acc);
}

/// Split 8 values into bf16 high and low parts (16 bytes each).
__device__ __forceinline__ void split8(const float (&v)[8], uint4& hi, uint4& lo) {
    uint32_t h[4], l[4];
#pragma unroll
    for (int q = 0; q < 4; q++) h[q] = split_bf16x2(v[2 * q], v[2 * q + 1], l[q]);
    hi = make_uint4(h[0], h[1], h[2], h[3]);
    lo = make_uint4(l[0], l[1], l[2], l[3]);
}

/// Round 8 values to bf16 (16 bytes), to nearest.
__device__ __forceinline__ uint4 round8(const float (&v)[8]) {
    uint32_t h[4];
#pragma unroll
    for (int q = 0; q < 4; q++) h[q] = bf16x2_bits(__floats2bfloat162_rn(v[2 * q], v[2 * q + 1]));
    return make_uint4(h[0], h[1], h[2], h[3]);
}

/**
 * Precision policy of the log-density product, by the plan's logits
 * precision: kBf16x3 (each operand staged as bf16 high and low parts, three
 * products: ~16 significant bits) or kBf16 (one part, one product). The pass
 * skeletons stage kParts operand tiles and call ss / rs for each k16 step.
 */
template <int PL>
struct LogitsPolicy {
    static_assert(PL == kBf16x3 || PL == kBf16, "wgmma log-densities are bf16 or 3xbf16");
    static constexpr int kParts = PL == kBf16x3 ? 2 : 1;  ///< bf16 parts per staged operand

    /// d += A * B (64 x N, one k16 step), both operands in shared memory
    /// (the low-part descriptors are read only when kParts == 2).
    template <int N>
    static __device__ __forceinline__ void ss(float (&d)[N / 8][4], uint64_t ah, uint64_t al,
                                              uint64_t bh, uint64_t bl) {
        if constexpr (kParts == 2) {
            wgmma_ss<N>(d, al, bh, 1);
            wgmma_ss<N>(d, ah, bl, 1);
        }
        wgmma_ss<N>(d, ah, bh, 1);
    }
    /// d += A * B (64 x 64, one k16 step), A from registers (high and low
    /// fragments), B K-major in shared memory.
    static __device__ __forceinline__ void rs(float (&d)[8][4], const uint32_t (&ah)[4],
                                              const uint32_t (&al)[4], uint64_t bh, uint64_t bl) {
        if constexpr (kParts == 2) {
            wgmma_rs_n64_k(d, al, bh);
            wgmma_rs_n64_k(d, ah, bl);
        }
        wgmma_rs_n64_k(d, ah, bh);
    }
    /// The staged parts of 8 values: hi (and lo when split).
    static __device__ __forceinline__ void parts8(const float (&v)[8], uint4& hi, uint4& lo) {
        if constexpr (kParts == 2)
            split8(v, hi, lo);
        else
            hi = round8(v);
    }
};

/**
 * Precision policy of the accumulation R^T x' (and R^T x'^2), by the plan's
 * accumulate precision: kTf32 (r and x' rounded to TF32: one product on the
 * transposed TF32 tile), kBf16x2 (r as two bf16 parts, x' one: two
 * products), kBf16 (both rounded once: one product).
 */
template <int PA>
struct AccumulatePolicy {
    static_assert(PA == kTf32 || PA == kBf16 || PA == kBf16x2, "wgmma accumulation precision");
    static constexpr bool kTf32Op = PA == kTf32;           ///< TF32 operands (transposed tile)
    static constexpr int kRParts = PA == kBf16x2 ? 2 : 1;  ///< bf16 parts of r
};

}  // namespace wgmma_ops
}  // namespace gpu
}  // namespace faiss_gmm
