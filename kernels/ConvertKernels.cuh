/**
 * Element conversion on the device: rows that crossed PCIe as uint8 or
 * float16 (4x / 2x fewer bytes than float32) become the float32 rows the
 * E-step kernels read.
 */
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace faiss_gmm {
namespace gpu {

/** out[i] = float(in[i]) for count uint8 values; queued on stream. */
cudaError_t launch_u8_to_float(const uint8_t* in, int64_t count, float* out, cudaStream_t stream);

/** out[i] = float(in[i]) for count IEEE half values (as bits); queued on stream. */
cudaError_t launch_f16_to_float(const uint16_t* in, int64_t count, float* out,
                                cudaStream_t stream);

}  // namespace gpu
}  // namespace faiss_gmm
