#include <cuda_fp16.h>

#include <algorithm>

#include <kernels/ConvertKernels.cuh>

namespace faiss_gmm {
namespace gpu {

namespace {

/// 16 values per thread and step: one 16-byte load of uint8 (or two of
/// half), four 16-byte stores. Memory-bound; the tail goes value by value.
template <class In>
__global__ void to_float_kernel(const In* __restrict__ in, int64_t count, float* __restrict__ out) {
    const int64_t groups = count / 16;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
        float v[16];
        if constexpr (sizeof(In) == 1) {
            const uint4 raw = reinterpret_cast<const uint4*>(in)[g];
            const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
            for (int i = 0; i < 16; i++) v[i] = float((w[i / 4] >> (8 * (i % 4))) & 0xff);
        } else {
            const uint4 r0 = reinterpret_cast<const uint4*>(in)[2 * g];
            const uint4 r1 = reinterpret_cast<const uint4*>(in)[2 * g + 1];
            const uint32_t w[8] = {r0.x, r0.y, r0.z, r0.w, r1.x, r1.y, r1.z, r1.w};
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
                v[2 * i] = f.x;
                v[2 * i + 1] = f.y;
            }
        }
        float4* o = reinterpret_cast<float4*>(out) + 4 * g;
#pragma unroll
        for (int i = 0; i < 4; i++) o[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    }
    for (int64_t i = groups * 16 + int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
         i += stride) {
        if constexpr (sizeof(In) == 1)
            out[i] = float(in[i]);
        else
            out[i] = __half2float(*reinterpret_cast<const __half*>(&in[i]));
    }
}

template <class In>
cudaError_t launch(const In* in, int64_t count, float* out, cudaStream_t stream) {
    if (count <= 0) return cudaSuccess;
    // 16-byte accesses need aligned buffers (cudaMalloc gives 256 bytes).
    if ((reinterpret_cast<uintptr_t>(in) | reinterpret_cast<uintptr_t>(out)) % 16 != 0)
        return cudaErrorMisalignedAddress;
    const int threads = 256;
    const int64_t groups = count / 16 + 1;
    const int blocks = int(std::min<int64_t>((groups + threads - 1) / threads, 65536));
    to_float_kernel<In><<<blocks, threads, 0, stream>>>(in, count, out);
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_u8_to_float(const uint8_t* in, int64_t count, float* out, cudaStream_t stream) {
    return launch(in, count, out, stream);
}

cudaError_t launch_f16_to_float(const uint16_t* in, int64_t count, float* out,
                                cudaStream_t stream) {
    return launch(in, count, out, stream);
}

}  // namespace gpu
}  // namespace faiss_gmm
