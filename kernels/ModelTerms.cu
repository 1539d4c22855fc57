// The model's per-component terms, computed on the device from the raw
// model (weights, means, variances) and the centre, in double, and written in
// the layout the E-step kernels read (LogDensityView or MmaModelView). The
// host formerly did this O(K * D) work (a log, and three divisions, per
// variance, in double) on every E-step: milliseconds at K = 4096.
#include <cuda_bf16.h>

#include <cmath>

#include "EStepFullKernels.cuh"
#include "EStepKernels.cuh"

namespace faiss_gmm {
namespace gpu {

namespace {

constexpr int kThreads = 256;
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

/// One warp per (padded) component: a_kj = (mu_kj - s_j) / var_kj, b_kj =
/// 1 / var_kj, c_k = log pi_k - (d log 2 pi + log det + quad) / 2, as
/// faiss_gmm::LogDensityTerms (the CPU backend's terms), then scaled and
/// formatted for the target.
__global__ void __launch_bounds__(kThreads) model_terms_kernel(RawModelView raw, TermsTarget out) {
    const int warp = (blockIdx.x * kThreads + threadIdx.x) / 32, lane = threadIdx.x % 32;
    const int ci = warp;
    const int d = raw.d, rows = out.mma ? out.kp : raw.k, stride = out.mma ? out.dp : d;
    if (ci >= rows) return;
    const bool sph = raw.spherical;
    // Scales: the mma kernels read log2 units with b as -b / 2.
    const double sa = out.mma ? kLog2e : 1.0, sb = out.mma ? -0.5 * kLog2e : 1.0;
    auto put = [&](float* base, int j, double v) {
        if (!out.split_bf16) {
            base[size_t(ci) * stride + j] = float(v);
            return;
        }
        __nv_bfloat16* h = reinterpret_cast<__nv_bfloat16*>(base + size_t(ci) * stride);
        const __nv_bfloat16 hi = __float2bfloat16_rn(float(v));
        h[j] = hi;
        h[stride + j] = __float2bfloat16_rn(float(v - double(__bfloat162float(hi))));
    };
    if (ci >= raw.k) {  // padding past k: no mass, zero terms
        for (int j = lane; j < stride; j += 32) {
            put(out.a, j, 0.0);
            if (!sph) put(out.b, j, 0.0);
        }
        if (lane == 0) {
            out.c[ci] = -INFINITY;
            if (sph) out.b[ci] = 0.f;
        }
        return;
    }
    const float* mu = raw.means + size_t(ci) * d;
    const double vsph = sph ? double(raw.variances[ci]) : 0.0;
    double quad = 0, log_det = 0;
    for (int j = lane; j < stride; j += 32) {
        double av = 0, bv = 0;
        if (j < d) {
            const double var = sph ? vsph : double(raw.variances[size_t(ci) * d + j]);
            const double m = double(mu[j]) - double(raw.centre[j]);
            av = m / var;
            quad += m * av;
            if (!sph) {
                log_det += log(var);
                bv = 1.0 / var;
            }
        }
        put(out.a, j, sa * av);
        if (!sph) put(out.b, j, sb * bv);
    }
    for (int o = 16; o; o >>= 1) {
        quad += __shfl_xor_sync(0xffffffffu, quad, o);
        log_det += __shfl_xor_sync(0xffffffffu, log_det, o);
    }
    if (lane == 0) {
        if (sph) {
            log_det = d * log(vsph);
            out.b[ci] = float(sb / vsph);
        }
        const double log_pi = log(fmax(double(raw.weights[ci]), 1e-300));
        out.c[ci] = float(sa * (log_pi - 0.5 * (d * kLog2Pi + log_det + quad)));
    }
}


/**
 * One block per component: S_k (fp32, d x d) into shared memory in double,
 * its Cholesky factor L in place (lower triangle; the column below each
 * pivot in parallel, then the trailing update), W = L^-1 by forward
 * substitution a column per thread (kept, transposed, in the strictly
 * upper triangle, its diagonal apart), then W rounded to float and into
 * bf16 parts, as faiss_gmm::FullDensityTerms computes it on the host.
 */
__global__ void __launch_bounds__(kThreads)
    full_terms_kernel(const float* __restrict__ covs, const float* __restrict__ weights, int d,
                      int dp, int parts, uint16_t* __restrict__ w, float* __restrict__ c,
                      int32_t* __restrict__ bad) {
    extern __shared__ double a[];  // d x d, then d: W's diagonal
    double* wdiag = a + size_t(d) * d;
    __shared__ int not_pd;
    const int ci = blockIdx.x, tid = threadIdx.x;
    const float* s = covs + size_t(ci) * d * d;
    for (int e = tid; e < d * d; e += kThreads) a[e] = double(s[e]);
    if (tid == 0) not_pd = 0;
    __syncthreads();
    for (int j = 0; j < d; j++) {
        if (tid == 0) {
            const double p = a[j * d + j];
            if (!(p > 0) || !isfinite(p)) not_pd = 1;
            a[j * d + j] = sqrt(fmax(p, 0.0));
        }
        __syncthreads();
        if (not_pd) break;
        const double pivot = a[j * d + j];
        for (int i = j + 1 + tid; i < d; i += kThreads) a[i * d + j] /= pivot;
        __syncthreads();
        // Trailing update of the lower triangle: a_it -= l_ij l_tj, j < t <= i.
        const int m = d - j - 1;
        for (int e = tid; e < m * m; e += kThreads) {
            const int i = j + 1 + e / m, t = j + 1 + e % m;
            if (t <= i) a[i * d + t] -= a[i * d + j] * a[t * d + j];
        }
        __syncthreads();
    }
    if (not_pd) {
        if (tid == 0) bad[ci] = 1;
        return;
    }
    for (int col = tid; col < d; col += kThreads) {
        wdiag[col] = 1.0 / a[col * d + col];
        for (int i = col + 1; i < d; i++) {
            double acc = a[i * d + col] * wdiag[col];
            for (int t = col + 1; t < i; t++) acc += a[i * d + t] * a[col * d + t];
            a[col * d + i] = -acc / a[i * d + i];  // W[i][col], transposed
        }
    }
    __syncthreads();
    double hl = 0;
    bool finite = true;
    for (int i = tid; i < d; i += kThreads) {
        hl += log(wdiag[i]);
        finite = finite && wdiag[i] > 0 && isfinite(wdiag[i]);
    }
    // The block's sum of log W_ii (and whether all are positive and finite).
    __shared__ double red[kThreads / 32];
    __shared__ int fin[kThreads / 32];
#pragma unroll
    for (int o = 16; o; o >>= 1) hl += __shfl_xor_sync(0xffffffffu, hl, o);
    const int all_fin = __all_sync(0xffffffffu, finite);
    if (tid % 32 == 0) red[tid / 32] = hl, fin[tid / 32] = all_fin;
    __syncthreads();
    if (tid == 0) {
        double h = 0;
        int ok = 1;
        for (int i = 0; i < kThreads / 32; i++) h += red[i], ok &= fin[i];
        bad[ci] = ok ? 0 : 1;
        const double log_pi = log(fmax(double(weights[ci]), 1e-300));
        c[ci] = float(kLog2e * double(float(log_pi - 0.5 * d * kLog2Pi + h)));
    }
    uint16_t* out = w + size_t(ci) * parts * dp * dp;
    for (int e = tid; e < dp * dp; e += kThreads) {
        const int i = e / dp, j = e % dp;
        const double v = i >= d || j > i ? 0.0 : (i == j ? wdiag[i] : a[j * d + i]);
        const float f = float(v);
        const __nv_bfloat16 hi = __float2bfloat16_rn(f);
        out[e] = __bfloat16_as_ushort(hi);
        if (parts == 2)
            out[dp * dp + e] = __bfloat16_as_ushort(__float2bfloat16_rn(f - __bfloat162float(hi)));
    }
}

}  // namespace

cudaError_t launch_model_terms(const RawModelView& raw, const TermsTarget& out,
                               cudaStream_t stream) {
    const int rows = out.mma ? out.kp : raw.k;
    if (rows <= 0) return cudaSuccess;
    if (out.mma && (out.dp < raw.d || out.kp < raw.k)) return cudaErrorInvalidValue;
    const int blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
    model_terms_kernel<<<blocks, kThreads, 0, stream>>>(raw, out);
    return cudaGetLastError();
}

cudaError_t launch_full_model_terms(const float* covs, const float* weights, int d, int k, int dp,
                                   int w_parts, uint16_t* w, float* c, int32_t* bad,
                                   cudaStream_t stream) {
    if (k <= 0) return cudaSuccess;
    if (d < 1 || d > kFullMaxDim || dp < d || (w_parts != 1 && w_parts != 2))
        return cudaErrorInvalidValue;
    const size_t bytes = (size_t(d) * d + d) * sizeof(double);
    cudaError_t e = cudaFuncSetAttribute(full_terms_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
    full_terms_kernel<<<k, kThreads, bytes, stream>>>(covs, weights, d, dp, w_parts, w, c, bad);
    return cudaGetLastError();
}

}  // namespace gpu
}  // namespace faiss_gmm
