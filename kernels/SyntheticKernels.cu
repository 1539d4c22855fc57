#include <cuda_fp16.h>
#include <faiss_gmm/utils/SyntheticRng.h>

#include <algorithm>
#include <kernels/SyntheticKernels.cuh>

namespace faiss_gmm {
namespace gpu {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxStageBytes = kSyntheticMaxRowBytes + 8;  // staged rows per block

using synthetic_rng::mix64;
using synthetic_rng::next64;

/// std::upper_bound over the cumulative weights, as SyntheticSource::component_of.
__device__ __forceinline__ int component_of(uint64_t& s, const double* cdf, int k) {
    const double u = synthetic_rng::next_unit(s);
    int lo = 0, hi = k;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (u < cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return min(lo, k - 1);
}

/// One stored element from a draw; _rn intrinsics keep the host's separate
/// roundings (no fused multiply-add), so the values match bit for bit.
template <class T>
__device__ __forceinline__ T store_value(float v, float scale, float offset) {
    const float y = __fadd_rn(__fmul_rn(scale, v), offset);
    if constexpr (sizeof(T) == 4) {
        return y;
    } else if constexpr (sizeof(T) == 1) {
        const float q = __fadd_rn(y, 0.5f);
        return T(uint32_t(fminf(255.f, fmaxf(0.f, q))));
    } else {
        return __half_as_ushort(__float2half_rn(y));
    }
}

/// A block stages `rows` rows (one per thread) in shared memory, then
/// writes them out as one contiguous, coalesced range.
template <class T>
__global__ void __launch_bounds__(kThreads)
    synthetic_rows_kernel(SyntheticRowsView v, int64_t i0, int64_t count, int rows, int stride,
                          T* __restrict__ out) {
    extern __shared__ __align__(16) uint8_t smem[];
    const int levels = 1 << v.noise_bits, per_draw = 64 / v.noise_bits;
    float* const z = reinterpret_cast<float*>(smem);
    uint8_t* const stage = smem + sizeof(float) * levels;
    for (int j = threadIdx.x; j < levels; j += kThreads) z[j] = v.noise[j];
    const int d = v.d;
    const size_t row_bytes = size_t(d) * sizeof(T);
    const bool words = row_bytes % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 4 == 0;
    for (int64_t b0 = int64_t(blockIdx.x) * rows; b0 < count; b0 += int64_t(gridDim.x) * rows) {
        const int nr = int(min(int64_t(rows), count - b0));
        __syncthreads();  // the table has landed; the previous rows are written out
        if (threadIdx.x < nr) {
            uint64_t s = mix64(v.key + uint64_t(i0 + b0 + threadIdx.x));
            const int c = component_of(s, v.cdf, v.k);
            const float* mu = v.centers + size_t(c) * d;
            const float* sd = v.stddevs + size_t(c) * d;
            T* o = reinterpret_cast<T*>(stage + size_t(threadIdx.x) * stride);
            uint64_t bits = 0;
            int left = 0;
            for (int j = 0; j < d; j++) {
                if (left == 0) bits = next64(s), left = per_draw;
                const float x = __fadd_rn(mu[j], __fmul_rn(sd[j], z[bits & (levels - 1)]));
                bits >>= v.noise_bits;
                left--;
                o[j] = store_value<T>(x, v.scale, v.offset);
            }
        }
        __syncthreads();
        uint8_t* const dst = reinterpret_cast<uint8_t*>(out) + size_t(b0) * row_bytes;
        if (words) {
            const int rw = int(row_bytes / 4), sw = stride / 4;
            const uint32_t* src = reinterpret_cast<const uint32_t*>(stage);
            uint32_t* d32 = reinterpret_cast<uint32_t*>(dst);
            for (int e = threadIdx.x; e < nr * rw; e += kThreads)
                d32[e] = src[(e / rw) * sw + e % rw];
        } else {
            const int rb = int(row_bytes);
            for (int e = threadIdx.x; e < nr * rb; e += kThreads)
                dst[e] = stage[(e / rb) * stride + e % rb];
        }
    }
}

template <class T>
cudaError_t launch_typed(const SyntheticRowsView& v, int64_t i0, int64_t count, void* out,
                         cudaStream_t stream) {
    // Rows padded to a word plus one, so that one thread per row writes
    // distinct banks.
    const int stride = int((size_t(v.d) * sizeof(T) + 3) / 4 * 4 + 4);
    const int rows = std::min(kThreads, kMaxStageBytes / stride);
    if (rows < 1) return cudaErrorInvalidValue;
    const size_t smem = sizeof(float) * (size_t(1) << v.noise_bits) + size_t(rows) * stride;
    cudaError_t e = cudaFuncSetAttribute(synthetic_rows_kernel<T>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
    int device = 0, sms = 0;
    if ((e = cudaGetDevice(&device)) != cudaSuccess) return e;
    if ((e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device)) != cudaSuccess)
        return e;
    const int64_t blocks = std::min<int64_t>((count + rows - 1) / rows, int64_t(sms) * 8);
    synthetic_rows_kernel<T><<<unsigned(blocks), kThreads, smem, stream>>>(
        v, i0, count, rows, stride, static_cast<T*>(out));
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_synthetic_rows(const SyntheticRowsView& v, int64_t i0, int64_t count, void* out,
                                  cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    if (count < 0 || v.d <= 0 || v.k <= 0 || v.noise_bits <= 0 || v.noise_bits > 16 || !out)
        return cudaErrorInvalidValue;
    switch (v.element) {
        case 0:
            return launch_typed<float>(v, i0, count, out, stream);
        case 1:
            return launch_typed<uint8_t>(v, i0, count, out, stream);
        case 2:
            return launch_typed<uint16_t>(v, i0, count, out, stream);
        default:
            return cudaErrorInvalidValue;
    }
}

}  // namespace gpu
}  // namespace faiss_gmm
