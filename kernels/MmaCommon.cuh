/**
 * Device helpers shared by the tensor-core E-step kernels (mma.sync in
 * EStepMmaKernels.cu, wgmma in EStepWgmmaKernels.cu): fragment layouts,
 * operand rounding, cp.async tile loads, the per-row terms and the flush of
 * a block's accumulators. Kernels only; no host policy.
 */
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "EStepKernels.cuh"

namespace faiss_gmm {
namespace gpu {
namespace mma_common {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int BR1 = 128;                // rows per block, pass 1 (16 per warp)
constexpr int BN1 = 64;                 // components per tile, pass 1
constexpr int BC2 = 128;                // components per block, pass 2 (16 per warp)
constexpr int BR2 = 64;                 // rows per tile, pass 2
constexpr int kMaxNd = kMmaMaxDim / 8;  // accumulator n-blocks (8 dims each)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

constexpr int kTf32 = int(MmaPrecision::Tf32), kTf32x3 = int(MmaPrecision::Tf32x3),
              kBf16 = int(MmaPrecision::Bf16), kBf16x3 = int(MmaPrecision::Bf16x3);

__host__ __device__ constexpr bool is_bf16(int p) { return p == kBf16 || p == kBf16x3; }
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

/// TF32 rounding (to nearest, ties away) in two integer operations: the
/// tensor cores read the top 19 bits of the register. cvt.rna.tf32.f32
/// compiles to a longer sequence on sm_90.
__device__ __forceinline__ uint32_t to_tf32(float x) {
    return (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
}

/// 2^x on the SFU (max error ~2 ulp; denormal results flush to zero, far
/// below what a responsibility or a partial log-sum-exp can use).
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t bf16x2_bits(__nv_bfloat162 v) {
    return *reinterpret_cast<uint32_t*>(&v);
}

/// Round fp32 values into fragment registers; for split precisions also the
/// rounded remainders (lo = round(v - hi)).
template <int P, int NR>
__device__ __forceinline__ void to_frag(const float* v, uint32_t (&hi)[NR], uint32_t (&lo)[NR]) {
#pragma unroll
    for (int r = 0; r < NR; r++) {
        if (is_bf16(P)) {
            const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * r], v[2 * r + 1]);
            hi[r] = bf16x2_bits(h);
            if (is_split(P)) {
                const float2 f = __bfloat1622float2(h);
                lo[r] = bf16x2_bits(__floats2bfloat162_rn(v[2 * r] - f.x, v[2 * r + 1] - f.y));
            }
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
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
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

/// Four 8x8 b16 matrices (or 8x4 32-bit ones): lane l names row l % 8 of
/// matrix l / 8; register i receives matrix i's (row g, word t).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* row_addr) {
    const unsigned a = unsigned(__cvta_generic_to_shared(row_addr));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
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

/// Four centred values (r, j..j+3) of a landed raw tile: zero past d and
/// past `valid` rows (raw holds garbage there). j is a multiple of 4.
__device__ __forceinline__ void centre4(const float* raw, int s, int r, int j, int valid, int d,
                                        const float* shift, float (&v)[4]) {
    const float4 x4 = *reinterpret_cast<const float4*>(raw + r * s + j);
    const float4 s4 = *reinterpret_cast<const float4*>(shift + j);
    const float xs[4] = {x4.x - s4.x, x4.y - s4.y, x4.z - s4.z, x4.w - s4.w};
#pragma unroll
    for (int q = 0; q < 4; q++) v[q] = (r < valid && j + q < d) ? xs[q] : 0.f;
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

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
    const unsigned s = unsigned(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
    const unsigned s = unsigned(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// Start copying rows [row0, row0 + nrows) of x (those before `end`) into a
/// [nrows][s] tile, raw: a warp per row (coalesced, no index division),
/// 16-byte copies when rows are 16-byte aligned.
__device__ __forceinline__ void load_rows_async(const float* __restrict__ x, int64_t end,
                                                int64_t row0, int nrows, int d, bool vec16, int s,
                                                float* tile) {
    const int valid = int((int)min((int64_t)nrows, end - row0));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < valid; r += kWarps) {
        const float* src = x + (row0 + r) * d;
        if (vec16)
            for (int j = 4 * lane; j < d; j += 128) cp_async16(tile + r * s + j, src + j);
        else
            for (int j = lane; j < d; j += 32) cp_async4(tile + r * s + j, src + j);
    }
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

/// Start copying rows [row0, row0 + nrows) before `end` into `raw`, with
/// their log Z and weight; one commit group.
__device__ __forceinline__ void load_tile_async(const float* __restrict__ x,
                                                const float* __restrict__ w,
                                                const float* __restrict__ log_norm, int64_t end,
                                                int64_t row0, int nrows, int d, bool vec16, int s,
                                                float* raw, float* raw_lz, float* raw_w) {
    load_rows_async(x, end, row0, nrows, d, vec16, s, raw);
    const int64_t row = row0 + threadIdx.x;
    if (int(threadIdx.x) < nrows && row < end) {
        cp_async4(raw_lz + threadIdx.x, log_norm + row);
        if (w) cp_async4(raw_w + threadIdx.x, w + row);
    }
    cp_async_commit();
}

/// Per-row term of a landed tile: r = w exp(l - log Z) = exp2(l' + rowc),
/// rowc = log2 w - log2(e) log Z (-inf for weight 0 and past `valid`).
__device__ __forceinline__ void row_terms(int valid, int nrows, bool weighted, const float* raw_w,
                                          const float* raw_lz, float* rowc) {
    const int i = threadIdx.x;
    if (i >= nrows) return;
    float rc = -INFINITY;
    if (i < valid) {
        const float wi = weighted ? raw_w[i] : 1.f;
        if (wi > 0.f) rc = log2f(wi) - kLog2e * raw_lz[i];
    }
    rowc[i] = rc;
}

/// ||x - shift||^2 of the first `valid` rows of a landed raw tile (zero
/// after), one warp per row, from fp32 values as pass 1 computes them.
__device__ __forceinline__ void raw_norms(const float* raw, int s, int valid, int nrows, int d,
                                          const float* shift, float* norm) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < nrows; r += kWarps) {
        float acc = 0;
        if (r < valid)
            for (int j = lane; j < d; j += 32) {
                const float v = raw[r * s + j] - shift[j];
                acc = fmaf(v, v, acc);
            }
#pragma unroll
        for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) norm[r] = acc;
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

/// One tile of pass 1's online log-sum-exp (base 2) for rows g and g + 8
/// of the warp's 16 (C fragments of NB 8-component blocks): adds the
/// per-component terms cs (and bsph ||x'||^2) to the log2-densities in
/// place, then folds the tile into the running max / sum.
template <int NB, bool kDiag>
__device__ __forceinline__ void lse_tile(float (&acc)[NB][4], const float* cs, const float* bsph,
                                         const float* norm, int warp, int g, int t,
                                         float (&run_m)[2], float (&run_s)[2]) {
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < NB; nb++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int col = nb * 8 + 2 * t + (i & 1), h = i >> 1;
            float l = acc[nb][i] + cs[col];
            if (!kDiag) l = fmaf(bsph[col], norm[warp * 16 + g + 8 * h], l);
            acc[nb][i] = l;
            mx[h] = fmaxf(mx[h], l);
        }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
        const float nm = fmaxf(run_m[h], mx[h]);
        if (nm == -INFINITY) continue;  // nothing finite yet
        float sum = 0;
#pragma unroll
        for (int nb = 0; nb < NB; nb++)
            sum += fast_exp2(acc[nb][2 * h] - nm) + fast_exp2(acc[nb][2 * h + 1] - nm);
        run_s[h] = run_s[h] * fast_exp2(run_m[h] - nm) + sum;
        run_m[h] = nm;
    }
}

/// End of pass 1: log Z of the warp's rows g and g + 8 (of 16 from row0 +
/// 16 warp) into log_norm, and the block's sum w log Z, sum w into sums
/// (one double atomic each; red is kWarps x 2 of shared memory). Ends with
/// a barrier: every thread of the block calls it.
__device__ __forceinline__ void finish_log_norm(float (&run_m)[2], float (&run_s)[2], int64_t row0,
                                                int64_t n, const float* __restrict__ w,
                                                float* __restrict__ log_norm,
                                                double* __restrict__ sums, double (*red)[kWarps]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    double lz_sum = 0, w_sum = 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        run_s[h] += __shfl_xor_sync(0xffffffffu, run_s[h], 1);
        run_s[h] += __shfl_xor_sync(0xffffffffu, run_s[h], 2);
        const int64_t row = row0 + warp * 16 + g + 8 * h;
        if (t == 0 && row < n) {
            const float lz = (run_m[h] + log2f(run_s[h])) * kLn2;
            log_norm[row] = lz;
            const double wi = w ? w[row] : 1.0;
            lz_sum += wi * lz;
            w_sum += wi;
        }
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) {
        lz_sum += __shfl_xor_sync(0xffffffffu, lz_sum, o);
        w_sum += __shfl_xor_sync(0xffffffffu, w_sum, o);
    }
    if (lane == 0) red[0][warp] = lz_sum, red[1][warp] = w_sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double a = 0, b = 0;
        for (int i = 0; i < kWarps; i++) a += red[0][i], b += red[1][i];
        atomicAdd(sums, a);
        atomicAdd(sums + 1, b);
    }
}

/// A block's register accumulators into the double statistics: one atomic
/// per accumulator (C fragments: component rows g / g + 8, dimensions 2t, 2t + 1).
template <bool kDiag>
__device__ __forceinline__ void flush_stats(const float (&accx)[kMaxNd][4],
                                            const float (&accx2)[kDiag ? kMaxNd : 1][4],
                                            float (&nkp)[2], float (&sx2p)[2],
                                            const MmaModelView& m, const StatsView& st, int c0,
                                            int warp, int g, int t) {
    const int nd_used = m.dp / 8;
#pragma unroll
    for (int nd = 0; nd < kMaxNd; nd++) {
        if (nd >= nd_used) break;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int comp = c0 + warp * 16 + g + 8 * (i >> 1), j = nd * 8 + 2 * t + (i & 1);
            if (comp >= m.k || j >= m.d) continue;
            atomicAdd(st.sum_x + size_t(comp) * m.d + j, double(accx[nd][i]));
            if (kDiag)
                atomicAdd(st.sum_x2 + size_t(comp) * m.d + j, double(accx2[kDiag ? nd : 0][i]));
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        for (int o = 1; o <= 2; o <<= 1) {
            nkp[h] += __shfl_xor_sync(0xffffffffu, nkp[h], o);
            sx2p[h] += __shfl_xor_sync(0xffffffffu, sx2p[h], o);
        }
        const int comp = c0 + warp * 16 + g + 8 * h;
        if (t == 0 && comp < m.k) {
            atomicAdd(st.nk + comp, double(nkp[h]));
            if (!kDiag) atomicAdd(st.sum_x2 + comp, double(sx2p[h]));
        }
    }
}

/// Grid of pass 2: component tiles x row chunks filling the SMs once (one
/// block per SM: shared memory and registers allow no more).
inline dim3 pass2_grid(const MmaModelView& m, int64_t n, int rows_per_tile, int num_sms,
                       int64_t& rows_per_chunk) {
    const int ctiles = (m.k + BC2 - 1) / BC2;
    const int64_t row_tiles = (n + rows_per_tile - 1) / rows_per_tile;
    int64_t chunks = std::max<int64_t>(1, std::max(num_sms, 1) / ctiles);
    chunks = std::min(chunks, std::min<int64_t>(row_tiles, 65535));
    rows_per_chunk = ((row_tiles + chunks - 1) / chunks) * rows_per_tile;
    chunks = (n + rows_per_chunk - 1) / rows_per_chunk;
    return dim3{unsigned(ctiles), unsigned(chunks)};
}

/// Whether every row of x starts 16-byte aligned (16-byte cp.async copies).
inline bool rows_vec16(const float* x, int d) {
    return d % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

}  // namespace mma_common
}  // namespace gpu
}  // namespace faiss_gmm
