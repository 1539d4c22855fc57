#include <faiss_gmm/gpu/GpuSynthetic.h>

#include <kernels/SyntheticKernels.cuh>

namespace faiss_gmm {
namespace gpu {

struct DeviceRowGenerator::View : SyntheticRowsView {};

namespace {

template <class T>
void upload(DeviceBuffer<T>& b, const T* host, size_t n) {
    b.reserve(n);
    FAISS_GMM_CUDA_CHECK(cudaMemcpy(b.data(), host, sizeof(T) * n, cudaMemcpyHostToDevice));
}

int element_code(ElementType t) {
    switch (t) {
        case ElementType::Float32:
            return 0;
        case ElementType::UInt8:
            return 1;
        case ElementType::Float16:
            return 2;
        default:
            throw Error("faiss-gmm: no device generator for " + std::string(to_string(t)) +
                        " rows");
    }
}

}  // namespace

std::unique_ptr<DeviceRowGenerator> DeviceRowGenerator::for_source(const DataSource& src) {
    idx_t offset = 0;
    const SyntheticSource* s = src.generator(&offset);
    if (!s || s->row_bytes() > size_t(kSyntheticMaxRowBytes)) return nullptr;
    return std::unique_ptr<DeviceRowGenerator>(new DeviceRowGenerator(*s, offset));
}

DeviceRowGenerator::DeviceRowGenerator(const SyntheticSource& src, idx_t offset)
    : offset_(offset), view_(new View) {
    const SyntheticMixture& m = src.mixture();
    const int d = m.params.d, k = m.params.n_clusters;
    upload(centers_, m.centers.data(), size_t(k) * d);
    upload(stddevs_, m.stddevs.data(), size_t(k) * d);
    upload(cdf_, src.cdf().data(), src.cdf().size());
    upload(noise_, SyntheticSource::noise_levels(), size_t(1) << SyntheticSource::kNoiseBits);
    View& v = *view_;
    v.centers = centers_.data();
    v.stddevs = stddevs_.data();
    v.cdf = cdf_.data();
    v.noise = noise_.data();
    v.d = d;
    v.k = int(src.cdf().size());
    v.noise_bits = SyntheticSource::kNoiseBits;
    v.key = src.row_key();
    v.scale = src.scale();
    v.offset = src.offset();
    v.element = element_code(src.type());
}

DeviceRowGenerator::~DeviceRowGenerator() = default;

void DeviceRowGenerator::generate(idx_t i0, idx_t count, void* dev, cudaStream_t stream) const {
    FAISS_GMM_CUDA_CHECK(launch_synthetic_rows(*view_, int64_t(i0 + offset_), count, dev, stream));
}

size_t DeviceRowGenerator::device_bytes() const {
    return centers_.bytes() + stddevs_.bytes() + noise_.bytes() + cdf_.bytes();
}

}  // namespace gpu
}  // namespace faiss_gmm
