/** Checked CUDA calls and owning device buffers (CUDA builds only). */
#pragma once

#include <cuda_runtime_api.h>
#include <faiss_gmm/utils/Common.h>

#include <string>

/// Run a CUDA runtime call; on failure throw faiss_gmm::Error naming the
/// call, the error and the place.
#define FAISS_GMM_CUDA_CHECK(call)                                                             \
    do {                                                                                       \
        cudaError_t err__ = (call);                                                            \
        if (err__ != cudaSuccess) {                                                            \
            throw ::faiss_gmm::Error(std::string("faiss-gmm: CUDA error in ") + #call + ": " + \
                                     cudaGetErrorString(err__) + " (" + __FILE__ + ":" +       \
                                     std::to_string(__LINE__) + ")");                          \
        }                                                                                      \
    } while (0)

namespace faiss_gmm {
namespace gpu {

/** cudaMalloc'ed array of T, freed on destruction; grows on reserve(). */
template <class T>
class DeviceBuffer {
   public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (p_) cudaFree(p_);
    }
    /** At least n elements (contents not kept); "out of memory" names the size. */
    void reserve(size_t n) {
        if (n <= n_) return;
        if (p_) cudaFree(p_);
        p_ = nullptr;
        n_ = 0;
        cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T));
        if (e != cudaSuccess) {
            cudaGetLastError();
            throw Error("faiss-gmm: cannot allocate " + std::to_string(n * sizeof(T)) +
                        " bytes on the GPU: " + cudaGetErrorString(e));
        }
        n_ = n;
    }
    T* data() { return p_; }
    const T* data() const { return p_; }
    /** Bytes allocated on the device. */
    size_t bytes() const { return n_ * sizeof(T); }

   private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

/** Page-locked host array of T (cudaHostAlloc), for copies that overlap kernels. */
template <class T>
class PinnedBuffer {
   public:
    PinnedBuffer() = default;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() {
        if (p_) cudaFreeHost(p_);
    }
    /** At least n elements (contents not kept); failure names the size. */
    void reserve(size_t n) {
        if (n <= n_) return;
        if (p_) cudaFreeHost(p_);
        p_ = nullptr;
        n_ = 0;
        cudaError_t e =
            cudaHostAlloc(reinterpret_cast<void**>(&p_), n * sizeof(T), cudaHostAllocDefault);
        if (e != cudaSuccess) {
            cudaGetLastError();
            throw Error("faiss-gmm: cannot allocate " + std::to_string(n * sizeof(T)) +
                        " bytes of page-locked host memory: " + cudaGetErrorString(e));
        }
        n_ = n;
    }
    T* data() { return p_; }

   private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

/**
 * A CUDA event (timing disabled), destroyed with its owner. Created by
 * create() on the current device, which must be the device of the streams
 * it will be recorded on.
 */
class Event {
   public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event() {
        if (e_) cudaEventDestroy(e_);
    }
    void create() {
        if (!e_) FAISS_GMM_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming));
    }
    cudaEvent_t get() const { return e_; }

   private:
    cudaEvent_t e_ = nullptr;
};

}  // namespace gpu
}  // namespace faiss_gmm
