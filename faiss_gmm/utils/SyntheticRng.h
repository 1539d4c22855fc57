/**
 * The counter-based generator behind SyntheticSource, written once for the
 * host (faiss_gmm/DataSource.cpp) and the device (kernels/SyntheticKernels.cu)
 * so that both make the same rows: splitmix64 seeds a row's state, wyrand
 * draws 64 bits per step.
 */
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FAISS_GMM_HOST_DEVICE __host__ __device__
#else
#define FAISS_GMM_HOST_DEVICE
#endif

namespace faiss_gmm {
namespace synthetic_rng {

/** splitmix64: a bijective mixer; seeds the per-row generator. */
FAISS_GMM_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/** wyrand: one 64 x 64 -> 128-bit multiply per 64 random bits, passes BigCrush. */
FAISS_GMM_HOST_DEVICE inline uint64_t next64(uint64_t& s) {
    s += 0xa0761d6478bd642fULL;
    const uint64_t b = s ^ 0xe7037ed1a0b428dbULL;
#if defined(__CUDA_ARCH__)
    return __umul64hi(s, b) ^ (s * b);
#else
    const __uint128_t t = __uint128_t(s) * b;
    return uint64_t(t >> 64) ^ uint64_t(t);
#endif
}

/** A uniform double in [0, 1) from the next 53 bits of s. */
FAISS_GMM_HOST_DEVICE inline double next_unit(uint64_t& s) {
    return double(next64(s) >> 11) * 0x1.0p-53;
}

}  // namespace synthetic_rng
}  // namespace faiss_gmm
