#include <faiss_gmm/utils/Device.h>

#ifdef FAISS_GMM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace faiss_gmm {

int cuda_device_count() {
#ifdef FAISS_GMM_WITH_CUDA
    int n = 0;
    // No driver or no device is not an error here: it means "use the CPU".
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
#else
    return 0;
#endif
}

}  // namespace faiss_gmm
