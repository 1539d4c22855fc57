// The model's per-component terms, computed on the device from the raw
// model (weights, means, variances) and the centre, in double, and written in
// the layout the E-step kernels read (LogDensityView or MmaModelView). The
// host formerly did this O(K * D) work (a log, and three divisions, per
// variance, in double) on every E-step: milliseconds at K = 4096.
#include <cuda_bf16.h>

#include <cmath>

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

}  // namespace gpu
}  // namespace faiss_gmm
