/**
 * Device helpers shared by the tensor-core E-step kernels (mma.sync in
 * EStepMmaKernels.cu, wgmma in EStepWgmmaKernels.cu): the block shapes both
 * families agree on, TF32 / bf16 rounding, exp2, cp.async row and tile
 * loads, the per-row terms, pass 1's log-sum-exp and write-out, the flush
 * of pass 2's accumulators, and the two launch shapes. Each family keeps its
 * own fragment and tile layouts. Kernels only; no host policy.
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
constexpr int kMaxNd = kMmaMaxDim / 8;  // accumulator n-blocks (8 dims each)
/// Rows per block of pass 1, both kernel families: 16 per warp, the rows
/// RowReduce::finish writes.
constexpr int kPass1Rows = 128;
/// Components per block of pass 2, both kernel families: 16 per warp, the
/// rows of the C fragments flush_stats writes.
constexpr int kPass2Comps = 128;
/// The plan's precisions as template arguments (MmaPrecision values).
constexpr int kTf32 = int(MmaPrecision::Tf32), kTf32x3 = int(MmaPrecision::Tf32x3),
              kBf16 = int(MmaPrecision::Bf16), kBf16x3 = int(MmaPrecision::Bf16x3),
              kBf16x2 = int(MmaPrecision::Bf16x2);
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

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

/// bf16x2 bits of (a, b), and in lo those of their remainders (lo =
/// round(v - hi)): the two parts of a split (3xbf16) operand.
__device__ __forceinline__ uint32_t split_bf16x2(float a, float b, uint32_t& lo) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    const float2 f = __bfloat1622float2(h);
    lo = bf16x2_bits(__floats2bfloat162_rn(a - f.x, b - f.y));
    return bf16x2_bits(h);
}

/// c += a b on bf16 tensor cores (m16n8k16, fp32 accumulators).
__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
        "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Four 8x8 b16 matrices (or 8x4 32-bit ones): lane l names row l % 8 of
/// matrix l / 8; register i receives matrix i's (row g, word t).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* row_addr) {
    const unsigned a = unsigned(__cvta_generic_to_shared(row_addr));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/// As ldsm_x4, transposed: register i receives matrix i's (word t, row g).
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* row_addr) {
    const unsigned a = unsigned(__cvta_generic_to_shared(row_addr));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
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

/**
 * sums[0] += the block's a, sums[1] += its b (each thread's share): a warp
 * reduction, then one double atomic each. red is kWarps x 2 of shared
 * memory; ends with a barrier, so every thread of the block calls it.
 */
__device__ __forceinline__ void add_block_sums(double a, double b, double (*red)[kWarps],
                                               double* sums) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int o = 16; o; o >>= 1) {
        a += __shfl_xor_sync(0xffffffffu, a, o);
        b += __shfl_xor_sync(0xffffffffu, b, o);
    }
    if (lane == 0) red[0][warp] = a, red[1][warp] = b;
    __syncthreads();
    if (threadIdx.x == 0) {
        double sa = 0, sb = 0;
        for (int i = 0; i < kWarps; i++) sa += red[0][i], sb += red[1][i];
        atomicAdd(sums, sa);
        atomicAdd(sums + 1, sb);
    }
}

/**
 * Pass 1's reduction over the components of each row, the policy the pass-1
 * skeletons (mma.sync and wgmma) plug in: the online log-sum-exp (base 2)
 * of the E-step (kLse: log Z and sum w log Z), the argmax of the hard
 * assignment (kArg: k-means' nearest mean, predict's most probable
 * component, and with kLse its responsibility), or both. A thread holds
 * rows g and g + 8 of its warp's 16 (C fragments of 8-component blocks).
 */
template <bool kLse, bool kArg, bool kBound = false>
struct RowReduce {
    static_assert(kArg || !kBound, "a bound restricts the argmax");
    float run_m[2] = {-INFINITY, -INFINITY}, run_s[2] = {0.f, 0.f};
    float best[2] = {-INFINITY, -INFINITY};
    int arg[2] = {0, 0};
    /// kBound: the row's previous pick (value, index); only components after
    /// it in the order (value down, index up) compete, so that pass j of a
    /// top-T finds each row's j-th component (the values are bit-identical
    /// from pass to pass: the same kernel on the same inputs).
    float bound_v[2] = {INFINITY, INFINITY};
    int bound_a[2] = {-1, -1};

    /// Read the bound of the warp's rows g and g + 8 (kBound; none when
    /// out.bound_val is null).
    __device__ __forceinline__ void begin(int64_t row0, int64_t n, const Pass1Out& out) {
        if (!kBound || !out.bound_val) return;
        const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int64_t row = row0 + warp * 16 + g + 8 * h;
            if (row < n) bound_v[h] = out.bound_val[row], bound_a[h] = out.bound_arg[row];
        }
    }

    /// Fold one tile of NB * 8 components from c0: adds the per-component
    /// terms cs (and bsph ||x'||^2) to the log2-densities in place first.
    template <int NB, bool kDiag>
    __device__ __forceinline__ void tile(float (&acc)[NB][4], const float* cs, const float* bsph,
                                         const float* norm, int warp, int g, int t, int c0) {
        float mx[2] = {-INFINITY, -INFINITY};
        int ax[2] = {0, 0};
#pragma unroll
        for (int nb = 0; nb < NB; nb++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int col = nb * 8 + 2 * t + (i & 1), h = i >> 1;
                float l = acc[nb][i] + cs[col];
                if (!kDiag) l = fmaf(bsph[col], norm[warp * 16 + g + 8 * h], l);
                acc[nb][i] = l;
                if (kArg) {
                    // Columns visit in increasing order: ties keep the first.
                    const bool after =
                        !kBound || l < bound_v[h] || (l == bound_v[h] && c0 + col > bound_a[h]);
                    if (after && l > mx[h]) mx[h] = l, ax[h] = col;
                } else {
                    mx[h] = fmaxf(mx[h], l);
                }
            }
#pragma unroll
        for (int h = 0; h < 2; h++) {
#pragma unroll
            for (int o = 1; o <= 2; o <<= 1) {
                const float om = __shfl_xor_sync(0xffffffffu, mx[h], o);
                if (kArg) {
                    const int oa = __shfl_xor_sync(0xffffffffu, ax[h], o);
                    if (om > mx[h] || (om == mx[h] && oa < ax[h])) mx[h] = om, ax[h] = oa;
                } else {
                    mx[h] = fmaxf(mx[h], om);
                }
            }
            // Earlier tiles hold smaller indices: a tie keeps theirs.
            if (kArg && mx[h] > best[h]) best[h] = mx[h], arg[h] = c0 + ax[h];
            if (!kLse) continue;
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

    /**
     * End of pass 1 for the warp's rows g and g + 8 of 16 from row0 + 16
     * warp: log Z into out.log_norm and the block's sum w log Z, sum w
     * into out.sums (one double atomic each; red is kWarps x 2 of shared
     * memory), and / or the argmax into out.labels (with its
     * responsibility into out.top_resp when both). With kLse it ends with a
     * barrier: every thread of the block calls it.
     */
    __device__ __forceinline__ void finish(int64_t row0, int64_t n, const float* __restrict__ w,
                                           const Pass1Out& out, double (*red)[kWarps]) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
        double lz_sum = 0, w_sum = 0;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int64_t row = row0 + warp * 16 + g + 8 * h;
            float lz2 = 0;
            if (kLse) {
                run_s[h] += __shfl_xor_sync(0xffffffffu, run_s[h], 1);
                run_s[h] += __shfl_xor_sync(0xffffffffu, run_s[h], 2);
                lz2 = run_m[h] + log2f(run_s[h]);
            }
            if (t != 0 || row >= n) continue;
            if (kArg) {
                out.labels[row] = arg[h];
                if (out.top_val) out.top_val[row] = best[h];
                if (kLse && out.top_resp) out.top_resp[row] = exp2f(best[h] - lz2);
                if (!kLse && out.top_resp && out.log_norm_in)
                    out.top_resp[row] = exp2f(best[h] - kLog2e * out.log_norm_in[row]);
            }
            if (kLse) {
                const float lz = lz2 * kLn2;
                if (out.log_norm) out.log_norm[row] = lz;
                const double wi = w ? w[row] : 1.0;
                lz_sum += wi * lz;
                w_sum += wi;
            }
        }
        if (!kLse || !out.sums) return;
        add_block_sums(lz_sum, w_sum, red, out.sums);
    }
};
/// The E-step's pass 1: log Z only.
using LseReduce = RowReduce<true, false>;

/**
 * f(RowReduce<...>{}) with the policy a hard assignment writing `out`
 * needs: the log-sum-exp when assign_lse(out), and the bounded argmax for
 * every pass of a top-T (top_val or bound_val), so that the passes compute
 * bit-identical values. Returns f's result.
 */
template <class F>
cudaError_t with_assign_reduce(const Pass1Out& out, F&& f) {
    if (out.top_val || out.bound_val)
        return assign_lse(out) ? f(RowReduce<true, true, true>{})
                               : f(RowReduce<false, true, true>{});
    return assign_lse(out) ? f(RowReduce<true, true>{}) : f(RowReduce<false, true>{});
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

/// Grid of pass 2: component tiles x row chunks filling `slots` blocks
/// (the SMs times the blocks that fit on one) once.
inline dim3 pass2_grid(const MmaModelView& m, int64_t n, int rows_per_tile, int slots,
                       int64_t& rows_per_chunk) {
    const int ctiles = (m.k + kPass2Comps - 1) / kPass2Comps;
    const int64_t row_tiles = (n + rows_per_tile - 1) / rows_per_tile;
    int64_t chunks = std::max<int64_t>(1, std::max(slots, 1) / ctiles);
    chunks = std::min(chunks, std::min<int64_t>(row_tiles, 65535));
    rows_per_chunk = ((row_tiles + chunks - 1) / chunks) * rows_per_tile;
    chunks = (n + rows_per_chunk - 1) / rows_per_chunk;
    return dim3{unsigned(ctiles), unsigned(chunks)};
}

/// Whether every row of x starts 16-byte aligned (16-byte cp.async copies).
inline bool rows_vec16(const float* x, int d) {
    return d % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

/**
 * Launch a pass-1 kernel (signature of log_norm_mma_kernel: x, n, w, model,
 * vec16, outputs), one block per kPass1Rows rows, with `bytes` of dynamic
 * shared memory. Returns the first CUDA error.
 */
template <class Kernel>
cudaError_t launch_pass1(Kernel kernel, size_t bytes, const float* x, int64_t n, const float* w,
                         const MmaModelView& m, const Pass1Out& out, cudaStream_t stream) {
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
    const dim3 grid{unsigned((n + kPass1Rows - 1) / kPass1Rows)};
    kernel<<<grid, kThreads, bytes, stream>>>(x, n, w, m, rows_vec16(x, m.d), out);
    return cudaGetLastError();
}

/**
 * Launch a pass-2 kernel (signature of accumulate_mma_kernel: x, n, w,
 * log_norm, model, stats, vec16, rows_per_chunk) on pass2_grid with row
 * tiles of rows_per_tile and `bytes` of dynamic shared memory. Returns the
 * first CUDA error.
 */
template <class Kernel>
cudaError_t launch_pass2(Kernel kernel, size_t bytes, int rows_per_tile, const float* x, int64_t n,
                         const float* w, const float* log_norm, const MmaModelView& m,
                         const StatsView& stats, int num_sms, cudaStream_t stream) {
    cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
    // Fill every SM with as many blocks as fit at once (the fast class's
    // wgmma kernels fit several).
    int per_sm = 1;
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, bytes);
    if (e != cudaSuccess) return e;
    int64_t rows_per_chunk = 0;
    const dim3 grid =
        pass2_grid(m, n, rows_per_tile, num_sms * std::max(per_sm, 1), rows_per_chunk);
    kernel<<<grid, kThreads, bytes, stream>>>(x, n, w, log_norm, m, stats, rows_vec16(x, m.d),
                                              rows_per_chunk);
    return cudaGetLastError();
}

}  // namespace mma_common
}  // namespace gpu
}  // namespace faiss_gmm
