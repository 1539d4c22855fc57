/**
 * mma.sync building blocks for the E-step kernels (EStepMmaKernels.cu):
 * the precisions' fragment shapes and layouts (TF32 m16n8k8, bf16
 * m16n8k16, their 3-product split forms), fragment loads from fp32 and
 * pre-split bf16 tiles, the split stores, the centring of landed rows, the
 * model's staging and the responsibilities of a transposed log-density
 * tile. Device code only.
 */
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "EStepKernels.cuh"
#include "MmaCommon.cuh"

namespace faiss_gmm {
namespace gpu {
namespace mma_sync_ops {

using namespace mma_common;

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

}  // namespace mma_sync_ops
}  // namespace gpu
}  // namespace faiss_gmm
