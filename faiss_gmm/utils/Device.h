/** Which accelerators this process can see. */
#pragma once

namespace faiss_gmm {

/** Number of visible CUDA devices; 0 without CUDA support or without a GPU. */
int cuda_device_count();

}  // namespace faiss_gmm
