// Fused GMM E-step kernels (fp32 SIMT, first version).
//
// Pass 1 (log_norm_kernel): a block owns 64 rows and sweeps all components
// in 64-wide tiles, keeping an online log-sum-exp per row: log Z.
// Pass 2 (accumulate_kernel): a block owns 64 components and a chunk of
// rows; it recomputes the 64 x 64 log-density tile, turns it into
// responsibilities in shared memory and adds R^T x' (and R^T x'^2) into
// register accumulators; one double atomicAdd per accumulator per block at
// the end. The N x K matrix never reaches global memory.
#include <algorithm>
#include <cfloat>

#include "EStepKernels.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

constexpr int kThreads = 256;
constexpr int BM = 64;   // rows per tile
constexpr int BN = 64;   // components per tile
constexpr int BK = 16;   // dimensions per step of the logit product
constexpr int DC = 128;  // dimensions per accumulation block (grid.z splits larger d)
constexpr int SUB = 32;  // rows per accumulation sub-tile

/// Shared memory of the logit product (padded against bank conflicts).
/// Rows padded by 4 floats: 16-byte aligned for float4 reads of 4 rows (or
/// 4 components) at once, and stores of consecutive kk spread over banks.
struct LogitSmem {
    alignas(16) float xs[BK][BM + 4];
    alignas(16) float x2s[BK][BM + 4];
    alignas(16) float as[BK][BN + 4];
    alignas(16) float bs[BK][BN + 4];
};

/// ||x - shift||^2 of rows [row0, row0 + BM) into norm (one warp per 8 rows).
__device__ void row_norms(const float* __restrict__ x, int64_t n, int64_t row0,
                          const LogDensityView& m, float* norm) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int i = warp; i < BM; i += kThreads / 32) {
        const int64_t row = row0 + i;
        float s = 0;
        if (row < n)
            for (int j = lane; j < m.d; j += 32) {
                float v = x[row * m.d + j] - m.shift[j];
                s += v * v;
            }
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) norm[i] = s;
    }
}

/// Log-densities of rows [row0, +BM) x components [c0, +BN): thread
/// (ty = tid / 16, tx = tid % 16) gets rows ty*4+r, components tx*4+q.
/// Invalid components get -inf; invalid rows get finite garbage (masked later).
template <bool kDiag>
__device__ void logit_tile(const float* __restrict__ x, int64_t n, int64_t row0, int c0,
                           const LogDensityView& m, const float* norm, LogitSmem& sm,
                           float (&L)[4][4]) {
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    // Two-level sums: each BK-wide chunk is summed on its own, then added to
    // the total, so fp32 rounding grows with BK + d / BK terms instead of d.
    float acc1[4][4] = {}, acc2[4][4] = {};
    for (int j0 = 0; j0 < m.d; j0 += BK) {
        float part1[4][4] = {}, part2[4][4] = {};
#pragma unroll
        for (int u = 0; u < BM * BK / kThreads; u++) {
            const int e = tid + u * kThreads, r = e / BK, kk = e % BK, j = j0 + kk;
            const int64_t row = row0 + r;
            float v = (row < n && j < m.d) ? x[row * m.d + j] - m.shift[j] : 0.f;
            sm.xs[kk][r] = v;
            if (kDiag) sm.x2s[kk][r] = v * v;
            const int comp = c0 + r;  // same e -> (component, kk) for the model tiles
            const bool ok = comp < m.k && j < m.d;
            sm.as[kk][r] = ok ? m.a[size_t(comp) * m.d + j] : 0.f;
            if (kDiag) sm.bs[kk][r] = ok ? m.b[size_t(comp) * m.d + j] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            // One 16-byte shared load per operand instead of four.
            const float4 xv = *reinterpret_cast<const float4*>(&sm.xs[kk][ty * 4]);
            const float4 av = *reinterpret_cast<const float4*>(&sm.as[kk][tx * 4]);
            const float xr[4] = {xv.x, xv.y, xv.z, xv.w}, ar[4] = {av.x, av.y, av.z, av.w};
            float x2r[4] = {}, br[4] = {};
            if (kDiag) {
                const float4 x2v = *reinterpret_cast<const float4*>(&sm.x2s[kk][ty * 4]);
                const float4 bv = *reinterpret_cast<const float4*>(&sm.bs[kk][tx * 4]);
                x2r[0] = x2v.x, x2r[1] = x2v.y, x2r[2] = x2v.z, x2r[3] = x2v.w;
                br[0] = bv.x, br[1] = bv.y, br[2] = bv.z, br[3] = bv.w;
            }
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    part1[r][q] = fmaf(xr[r], ar[q], part1[r][q]);
                    if (kDiag) part2[r][q] = fmaf(x2r[r], br[q], part2[r][q]);
                }
        }
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                acc1[r][q] += part1[r][q];
                if (kDiag) acc2[r][q] += part2[r][q];
            }
        __syncthreads();
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int comp = c0 + tx * 4 + q;
        const bool ok = comp < m.k;
        const float cc = ok ? m.c[comp] : 0.f, bb = (ok && !kDiag) ? m.b[comp] : 0.f;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            float quad = kDiag ? acc2[r][q] : norm[ty * 4 + r] * bb;
            L[r][q] = ok ? cc + acc1[r][q] - 0.5f * quad : -INFINITY;
        }
    }
}

/// Pass 1 (and the hard assignment): per row, the online log-sum-exp of
/// the log-densities (kLse) and / or their argmax (kArg); outputs as Pass1Out.
template <bool kDiag, bool kLse, bool kArg, bool kBound>
__global__ void __launch_bounds__(kThreads)
    log_norm_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                    LogDensityView m, Pass1Out out) {
    __shared__ LogitSmem sm;
    __shared__ float norm[BM];
    __shared__ double red[2][kThreads / 32];
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const int64_t row0 = int64_t(blockIdx.x) * BM;
    if (!kDiag) row_norms(x, n, row0, m, norm);
    __syncthreads();
    float run_m[4], run_s[4], best[4];
    int arg[4];
#pragma unroll
    for (int r = 0; r < 4; r++)
        run_m[r] = -INFINITY, run_s[r] = 0.f, best[r] = -INFINITY, arg[r] = 0;
    // kBound: only components after the row's previous pick (value down,
    // index up) compete; see RowReduce.
    float bound_v[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    int bound_a[4] = {-1, -1, -1, -1};
    if (kBound && out.bound_val)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int64_t row = row0 + ty * 4 + r;
            if (row < n) bound_v[r] = out.bound_val[row], bound_a[r] = out.bound_arg[row];
        }
    for (int c0 = 0; c0 < m.k; c0 += BN) {
        float L[4][4];
        logit_tile<kDiag>(x, n, row0, c0, m, norm, sm, L);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            if (kArg) {
                // Lowest index among equal maxima, within the tile and across tiles.
                float bv = -INFINITY;
                int bi = c0 + tx * 4;
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int c = c0 + tx * 4 + q;
                    const bool after = !kBound || L[r][q] < bound_v[r] ||
                                       (L[r][q] == bound_v[r] && c > bound_a[r]);
                    if (after && L[r][q] > bv) bv = L[r][q], bi = c;
                }
                for (int o = 8; o; o >>= 1) {
                    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
                    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
                }
                if (bv > best[r]) best[r] = bv, arg[r] = bi;
            }
            if (!kLse) continue;
            float t = fmaxf(fmaxf(L[r][0], L[r][1]), fmaxf(L[r][2], L[r][3]));
            for (int o = 8; o; o >>= 1) t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, o));
            const float nm = fmaxf(run_m[r], t);
            float s = 0;
#pragma unroll
            for (int q = 0; q < 4; q++) s += expf(L[r][q] - nm);
            for (int o = 8; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            run_s[r] = run_s[r] * expf(run_m[r] - nm) + s;
            run_m[r] = nm;
        }
    }
    double lz_sum = 0, w_sum = 0;
    if (tx == 0) {
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int64_t row = row0 + ty * 4 + r;
            if (row >= n) continue;
            const float lz = kLse ? run_m[r] + logf(run_s[r]) : 0.f;
            if (kArg) {
                out.labels[row] = arg[r];
                if (out.top_val) out.top_val[row] = best[r];
                if (kLse && out.top_resp) out.top_resp[row] = expf(best[r] - lz);
                if (!kLse && out.top_resp && out.log_norm_in)
                    out.top_resp[row] = expf(best[r] - out.log_norm_in[row]);
            }
            if (kLse) {
                if (out.log_norm) out.log_norm[row] = lz;
                const double wi = w ? w[row] : 1.0;
                lz_sum += wi * lz;
                w_sum += wi;
            }
        }
    }
    if (!kLse || !out.sums) return;
    for (int o = 16; o; o >>= 1) {
        lz_sum += __shfl_xor_sync(0xffffffffu, lz_sum, o);
        w_sum += __shfl_xor_sync(0xffffffffu, w_sum, o);
    }
    if (tid % 32 == 0) red[0][tid / 32] = lz_sum, red[1][tid / 32] = w_sum;
    __syncthreads();
    if (tid == 0) {
        double a = 0, b = 0;
        for (int i = 0; i < kThreads / 32; i++) a += red[0][i], b += red[1][i];
        atomicAdd(out.sums, a);
        atomicAdd(out.sums + 1, b);
    }
}

// Spherical: capped at 128 registers for 2 CTAs/SM (some spills, 49 -> 44 ms
// at (1M, 1024, 128)); diagonal: no gain from the cap, so none.
template <bool kDiag>
__global__ void __launch_bounds__(kThreads, kDiag ? 1 : 2)
    accumulate_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ w,
                      const float* __restrict__ log_norm, LogDensityView m, StatsView st,
                      int64_t rows_per_chunk) {
    __shared__ union {
        LogitSmem logit;
        alignas(16) float xa[SUB][DC];
    } sm;
    __shared__ alignas(16) float rs[BM][BN + 4];
    __shared__ float norm[BM], lz[BM], wt[BM];
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const int tc = tid / 16, tj = tid % 16;  // accumulation layout
    const int c0 = blockIdx.x * BN, dc0 = blockIdx.z * DC;
    const int64_t begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t end = min(n, begin + rows_per_chunk);
    float accx[4][8] = {}, accx2[4][8] = {}, nkp[4] = {}, sx2p[4] = {};

    for (int64_t row0 = begin; row0 < end; row0 += BM) {
        if (!kDiag) row_norms(x, end, row0, m, norm);
        if (tid < BM) {
            const int64_t row = row0 + tid;
            lz[tid] = row < end ? log_norm[row] : 0.f;
            wt[tid] = row < end ? (w ? w[row] : 1.f) : 0.f;
        }
        __syncthreads();
        float L[4][4];
        logit_tile<kDiag>(x, end, row0, c0, m, norm, sm.logit, L);
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int i = ty * 4 + r;
                rs[i][tx * 4 + q] = wt[i] > 0.f ? wt[i] * expf(L[r][q] - lz[i]) : 0.f;
            }
        __syncthreads();
        for (int h = 0; h < BM / SUB; h++) {
#pragma unroll
            for (int u = 0; u < SUB * DC / kThreads; u++) {
                const int e = tid + u * kThreads, i = e / DC, jj = e % DC, j = dc0 + jj;
                const int64_t row = row0 + h * SUB + i;
                sm.xa[i][jj] = (row < end && j < m.d) ? x[row * m.d + j] - m.shift[j] : 0.f;
            }
            __syncthreads();
#pragma unroll 4
            for (int i = 0; i < SUB; i++) {
                // Thread (tc, tj) owns components tc*4.. and dimensions tj*8..:
                // three 16-byte shared loads per row.
                const float4 r4 = *reinterpret_cast<const float4*>(&rs[h * SUB + i][tc * 4]);
                const float4 x0 = *reinterpret_cast<const float4*>(&sm.xa[i][tj * 8]);
                const float4 x1 = *reinterpret_cast<const float4*>(&sm.xa[i][tj * 8 + 4]);
                const float rr[4] = {r4.x, r4.y, r4.z, r4.w};
                const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
                for (int q = 0; q < 4; q++)
#pragma unroll
                    for (int v = 0; v < 8; v++) {
                        accx[q][v] = fmaf(rr[q], xv[v], accx[q][v]);
                        if (kDiag) accx2[q][v] = fmaf(rr[q], xv[v] * xv[v], accx2[q][v]);
                    }
            }
            // Nk (and the spherical second moment): rows i = tj, tj + 16 of the sub-tile.
#pragma unroll
            for (int i = tj; i < SUB; i += 16)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const float r = rs[h * SUB + i][tc * 4 + q];
                    nkp[q] += r;
                    if (!kDiag) sx2p[q] = fmaf(r, norm[h * SUB + i], sx2p[q]);
                }
            __syncthreads();
        }
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int comp = c0 + tc * 4 + q;
        if (comp >= m.k) continue;
#pragma unroll
        for (int v = 0; v < 8; v++) {
            const int j = dc0 + tj * 8 + v;
            if (j >= m.d) continue;
            atomicAdd(st.sum_x + size_t(comp) * m.d + j, double(accx[q][v]));
            if (kDiag) atomicAdd(st.sum_x2 + size_t(comp) * m.d + j, double(accx2[q][v]));
        }
    }
    if (blockIdx.z == 0) {
#pragma unroll
        for (int q = 0; q < 4; q++)
            for (int o = 8; o; o >>= 1) {
                nkp[q] += __shfl_xor_sync(0xffffffffu, nkp[q], o);
                sx2p[q] += __shfl_xor_sync(0xffffffffu, sx2p[q], o);
            }
        if (tj == 0)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int comp = c0 + tc * 4 + q;
                if (comp >= m.k) continue;
                atomicAdd(st.nk + comp, double(nkp[q]));
                if (!kDiag) atomicAdd(st.sum_x2 + comp, double(sx2p[q]));
            }
    }
}

}  // namespace

namespace {

template <bool kLse, bool kArg, bool kBound = false>
void pass1(const float* x, int64_t n, const float* weights, const LogDensityView& m,
           const Pass1Out& out, cudaStream_t stream) {
    if (n == 0) return;
    const dim3 grid{unsigned((n + BM - 1) / BM)};
    if (m.spherical)
        log_norm_kernel<false, kLse, kArg, kBound>
            <<<grid, kThreads, 0, stream>>>(x, n, weights, m, out);
    else
        log_norm_kernel<true, kLse, kArg, kBound>
            <<<grid, kThreads, 0, stream>>>(x, n, weights, m, out);
}

}  // namespace

void launch_log_norm(const float* x, int64_t n, const float* weights, const LogDensityView& m,
                     float* log_norm, const StatsView& stats, cudaStream_t stream) {
    Pass1Out out;
    out.log_norm = log_norm;
    out.sums = stats.sums;
    pass1<true, false>(x, n, weights, m, out, stream);
}

cudaError_t launch_assign(const float* x, int64_t n, const LogDensityView& m, const Pass1Out& out,
                          cudaStream_t stream) {
    if (!out.labels) return cudaErrorInvalidValue;
    const bool lse = assign_lse(out);
    // Every pass of a top-T runs the bounded form (bit-identical values).
    if (out.top_val || out.bound_val) {
        if (lse)
            pass1<true, true, true>(x, n, nullptr, m, out, stream);
        else
            pass1<false, true, true>(x, n, nullptr, m, out, stream);
    } else if (lse) {
        pass1<true, true>(x, n, nullptr, m, out, stream);
    } else {
        pass1<false, true>(x, n, nullptr, m, out, stream);
    }
    return cudaGetLastError();
}

void launch_accumulate(const float* x, int64_t n, const float* weights, const float* log_norm,
                       const LogDensityView& m, const StatsView& stats, int num_sms,
                       cudaStream_t stream) {
    if (n == 0) return;
    const int ctiles = (m.k + BN - 1) / BN, dchunks = (m.d + DC - 1) / DC;
    const int64_t row_tiles = (n + BM - 1) / BM;
    const int64_t target = int64_t(std::max(num_sms, 1)) * 4;
    int64_t chunks = std::max<int64_t>(1, (target + ctiles * dchunks - 1) / (ctiles * dchunks));
    chunks = std::min(chunks, std::min<int64_t>(row_tiles, 65535));
    const int64_t rows_per_chunk = ((row_tiles + chunks - 1) / chunks) * BM;
    chunks = (n + rows_per_chunk - 1) / rows_per_chunk;
    const dim3 grid{unsigned(ctiles), unsigned(chunks), unsigned(dchunks)};
    if (m.spherical)
        accumulate_kernel<false>
            <<<grid, kThreads, 0, stream>>>(x, n, weights, log_norm, m, stats, rows_per_chunk);
    else
        accumulate_kernel<true>
            <<<grid, kThreads, 0, stream>>>(x, n, weights, log_norm, m, stats, rows_per_chunk);
}

}  // namespace gpu
}  // namespace faiss_gmm
