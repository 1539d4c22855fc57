#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/gpu/GpuEStep.h>
#include <faiss_gmm/gpu/GpuSynthetic.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <kernels/ConvertKernels.cuh>
#include <kernels/EStepKernels.cuh>

namespace faiss_gmm {
namespace gpu {

MmaPlan GpuEStep::plan_for(Precision p) {
    // Chosen from GpuEStep.PlanAccuracyTable (H200, k = 4096, d = 128, normal
    // and SIFT-like data; bench/NOTES.md): the log-densities decide the
    // accuracy, so every class computes them with a split product; 3xbf16
    // matches 3xTF32 there at half the tensor-core work.
    MmaPlan plan;
    switch (p) {
        case Precision::Fp32:
            plan = {MmaPrecision::Tf32x3, MmaPrecision::Tf32x3};
            break;
        case Precision::Tf32:
            plan = {MmaPrecision::Bf16x3, MmaPrecision::Tf32};
            break;
        case Precision::Bf16:
            plan = {MmaPrecision::Bf16x3, MmaPrecision::Bf16x2};
            break;
        case Precision::Fast:
            // One bf16 product each: judged by the model EM ends with, not
            // the per-step error (issue 16, bench/NOTES.md).
            plan = {MmaPrecision::Bf16, MmaPrecision::Bf16};
            break;
    }
    return plan;
}

void GpuEStep::set_kernel_plan(bool use_mma, const MmaPlan& plan, bool use_wgmma) {
    FAISS_GMM_CHECK(!use_mma || mma_plan_supported(plan),
                    "this (logits, accumulate) tensor-core precision pair is not compiled in");
    use_mma_ = use_mma;
    use_wgmma_ = use_wgmma;
    plan_ = plan;
}

bool GpuEStep::mma_path() const { return use_mma_ && d_ <= kMmaMaxDim; }

GpuEStep::GpuEStep(int device, size_t block_bytes, Precision precision, size_t cache_bytes)
    : block_bytes_(block_bytes), plan_(plan_for(precision)), cache_limit_(cache_bytes) {
    int count = 0;
    FAISS_GMM_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0) FAISS_GMM_CUDA_CHECK(cudaGetDevice(&device));
    FAISS_GMM_CHECK(device < count, "GPU " + std::to_string(device) + " does not exist (" +
                                        std::to_string(count) + " visible)");
    device_ = device;
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    FAISS_GMM_CUDA_CHECK(
        cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, device_));
    FAISS_GMM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    FAISS_GMM_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    for (int s = 0; s < 2; s++) copied_[s].create(), done_[s].create();
    wgmma_device_ = wgmma_device(device_);
}

GpuEStep::~GpuEStep() {
    if (stream_) cudaStreamDestroy(stream_);
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
}

std::vector<double> GpuEStep::choose_centre(idx_t n, const float* x, bool x_on_device,
                                            const std::vector<double>& fallback,
                                            cudaStream_t stream) {
    // A point near the data, on a power-of-two grid at the scale of each
    // column's spread: x - centre is then exact in fp32 whenever the data are
    // on a coarser grid (integer SIFT-like data: exact even in bf16 up to
    // 256), so rounding the centred operands for the tensor cores adds no
    // bias, and no far-off shift amplifies rounding (a far shift multiplies
    // the error of sum r (x - s) into the second moment).
    const int d = d_;
    const idx_t ns = std::min<idx_t>(n, 1024);
    if (ns == 0) return fallback;
    const idx_t stride = n / ns;
    sample_.reserve(size_t(ns) * d);
    float* rows = sample_.data();
    if (x_on_device) {
        // Gathered on the device first: a strided device-to-host copy of
        // 1024 short rows goes row by row over the link.
        sample_dev_.reserve(size_t(ns) * d);
        FAISS_GMM_CUDA_CHECK(cudaMemcpy2DAsync(
            sample_dev_.data(), sizeof(float) * d, x, sizeof(float) * d * size_t(stride),
            sizeof(float) * d, size_t(ns), cudaMemcpyDeviceToDevice, stream));
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(rows, sample_dev_.data(), sizeof(float) * d * ns,
                                             cudaMemcpyDeviceToHost, stream));
        FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
    } else {
        for (idx_t i = 0; i < ns; i++)
            std::copy(x + size_t(i * stride) * d, x + size_t(i * stride + 1) * d,
                      rows + size_t(i) * d);
    }
    // Row by row (sequential, vectorised): column by column the strided
    // reads cost ~0.4 ms a call, the largest fixed cost of an E-step.
    std::vector<double> mean(d, 0.0), sq(d, 0.0), centre(d);
    for (idx_t i = 0; i < ns; i++) {
        const float* r = rows + size_t(i) * d;
        for (int j = 0; j < d; j++) mean[j] += r[j];
    }
    for (int j = 0; j < d; j++) mean[j] /= double(ns);
    for (idx_t i = 0; i < ns; i++) {
        const float* r = rows + size_t(i) * d;
        for (int j = 0; j < d; j++) {
            const double t = r[j] - mean[j];
            sq[j] += t * t;
        }
    }
    for (int j = 0; j < d; j++) {
        const double var = sq[j] / double(ns);
        if (!std::isfinite(mean[j]) || !std::isfinite(var)) return fallback;
        double c = mean[j];
        if (var > 0) {
            const double q = std::exp2(std::floor(std::log2(std::sqrt(var))));
            c = q * std::nearbyint(mean[j] / q);
        }
        centre[j] = double(float(c));  // what the kernels subtract
    }
    return centre;
}

void GpuEStep::upload_model(const GaussianMixture& model, const std::vector<double>& fallback,
                            idx_t n, const float* x, bool x_on_device, cudaStream_t stream) {
    d_ = model.d;
    k_ = model.k;
    spherical_ = model.params.covariance_type == CovarianceType::Spherical;
    full_ = full_hard_ = false;
    centre_ = choose_centre(n, x, x_on_device, fallback, stream);
    model.check_model();
    if (model.params.covariance_type == CovarianceType::Full) {
        upload_full_model(model, fallback, stream);  // GpuFull.cpp
        return;
    }
    // The raw model goes up once (page-locked staging: pageable copies cost
    // milliseconds at K = 4096) and the device computes the terms in the
    // kernels' layout (launch_model_terms): shift | weights | means | variances.
    const bool mma = mma_path();
    dp_ = mma ? (d_ + 15) / 16 * 16 : d_;
    kp_ = mma ? (k_ + kMmaCompPad - 1) / kMmaCompPad * kMmaCompPad : k_;
    const size_t ns = dp_, nw = k_, nm = size_t(k_) * d_, nv = model.n_variances();
    hmodel_.reserve(ns + nw + nm + nv);
    float* const hs = hmodel_.data();
    std::fill(hs, hs + ns, 0.f);
    for (int j = 0; j < d_; j++) hs[j] = float(centre_[j]);  // exact: choose_centre rounds to float
    std::memcpy(hs + ns, model.weights.data(), nw * sizeof(float));
    std::memcpy(hs + ns + nw, model.means.data(), nm * sizeof(float));
    std::memcpy(hs + ns + nw + nm, model.variances.data(), nv * sizeof(float));
    raw_.reserve(ns + nw + nm + nv);
    FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(raw_.data(), hs, (ns + nw + nm + nv) * sizeof(float),
                                         cudaMemcpyHostToDevice, stream));
    const size_t na = size_t(kp_) * dp_, nb = spherical_ ? size_t(kp_) : na;
    a_.reserve(na);
    b_.reserve(nb);
    c_.reserve(kp_);
    RawModelView rv;
    rv.d = d_;
    rv.k = k_;
    rv.spherical = spherical_;
    rv.centre = raw_.data();
    rv.weights = rv.centre + ns;
    rv.means = rv.weights + nw;
    rv.variances = rv.means + nm;
    TermsTarget tt;
    tt.mma = mma;
    tt.split_bf16 = mma && split_bf16();
    tt.dp = dp_;
    tt.kp = kp_;
    tt.a = a_.data();
    tt.b = b_.data();
    tt.c = c_.data();
    FAISS_GMM_CUDA_CHECK(launch_model_terms(rv, tt, stream));
    acc_.reserve(acc_len());
    FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(acc_.data(), 0, acc_len() * sizeof(double), stream));
    // The staging area is rewritten by the next call: the copies must be
    // done by then. download_stats synchronises the stream before any later
    // upload_model, so no wait is needed here.
}

MmaModelView GpuEStep::mma_view() const {
    MmaModelView mv;
    mv.d = d_;
    mv.k = k_;
    mv.dp = dp_;
    mv.kp = kp_;
    mv.spherical = spherical_;
    mv.split_bf16 = split_bf16();  // as upload_model formatted
    mv.shift = raw_.data();
    mv.a = a_.data();
    mv.b = spherical_ ? nullptr : b_.data();
    mv.bsph = spherical_ ? b_.data() : nullptr;
    mv.c = c_.data();
    return mv;
}

LogDensityView GpuEStep::simt_view() const {
    LogDensityView m;
    m.d = d_;
    m.k = k_;
    m.spherical = spherical_;
    m.shift = raw_.data();
    m.a = a_.data();
    m.b = b_.data();
    m.c = c_.data();
    return m;
}

WgmmaCoverage GpuEStep::wgmma_plan() const {
    return use_wgmma_ && wgmma_device_ ? wgmma_coverage(plan_, spherical_) : WgmmaCoverage{};
}

void GpuEStep::run_block(idx_t n, const float* x, const float* w, float* lz, cudaStream_t stream) {
    if (full_) {
        run_full_block(n, x, w, lz, stream);
        return;
    }
    StatsView s;
    s.nk = acc_.data();
    s.sum_x = s.nk + k_;
    s.sum_x2 = s.sum_x + size_t(k_) * d_;
    s.sums = s.sum_x2 + (spherical_ ? size_t(k_) : size_t(k_) * d_);
    if (mma_path()) {
        const MmaModelView mv = mma_view();
        const WgmmaCoverage wg = wgmma_plan();
        if (wg.log_norm)
            FAISS_GMM_CUDA_CHECK(launch_log_norm_wgmma(x, n, w, mv, plan_.logits, lz, s, stream));
        else
            FAISS_GMM_CUDA_CHECK(launch_log_norm_mma(x, n, w, mv, plan_.logits, lz, s, stream));
        if (wg.accumulate) {
            FAISS_GMM_CUDA_CHECK(
                launch_accumulate_wgmma(x, n, w, lz, mv, plan_, s, num_sms_, stream));
            return;
        }
        FAISS_GMM_CUDA_CHECK(launch_accumulate_mma(x, n, w, lz, mv, plan_, s, num_sms_, stream));
        return;
    }
    // Wider rows: the fp32 SIMT kernels, whatever the precision asked.
    const LogDensityView m = simt_view();
    launch_log_norm(x, n, w, m, lz, s, stream);
    FAISS_GMM_CUDA_CHECK(cudaGetLastError());
    launch_accumulate(x, n, w, lz, m, s, num_sms_, stream);
    FAISS_GMM_CUDA_CHECK(cudaGetLastError());
}

void GpuEStep::download_stats(SufficientStatistics& st, cudaStream_t stream) {
    if (full_) {
        download_full_stats(st, true, stream);
        return;
    }
    FAISS_GMM_CHECK(
        st.d == d_ && st.k == k_ && (st.covariance_type == CovarianceType::Spherical) == spherical_,
        "statistics were reset for another model shape");
    const std::array<double, 2> sums = download_sums(st, acc_.data(), spherical_, stream);
    st.sum_log_norm += sums[0];
    st.sum_weights += sums[1];
    FAISS_GMM_CHECK(std::isfinite(sums[0]),
                    "non-finite log-likelihood in the E-step (degenerate model?)");
}

std::array<double, 2> GpuEStep::download_sums(SufficientStatistics& st, const double* acc,
                                              bool spherical, cudaStream_t stream) {
    const int d = d_, k = k_;
    const size_t nx2 = st.sum_x2.size();
    const size_t len = size_t(k) + size_t(k) * d + nx2 + 2;
    hstats_.reserve(len);
    FAISS_GMM_CUDA_CHECK(
        cudaMemcpyAsync(hstats_.data(), acc, len * sizeof(double), cudaMemcpyDeviceToHost, stream));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream));
    const double* nk = hstats_.data();
    const double* s1 = nk + k;
    const double* s2 = s1 + size_t(k) * d;
    const double* sums = s2 + nx2;
    // Sums about centre_ moved to the caller's shift, in double:
    // x - s = (x - centre) + delta.
    std::vector<double> delta(d);
    for (int j = 0; j < d; j++) delta[j] = centre_[j] - st.shift[j];
#pragma omp parallel for schedule(static) if (size_t(k) * d > 65536)
    for (int c = 0; c < k; c++) {
        st.nk[c] += nk[c];
        double sph_extra = 0;
        for (int j = 0; j < d; j++) {
            const size_t i = size_t(c) * d + j;
            st.sum_x[i] += s1[i] + nk[c] * delta[j];
            const double extra = delta[j] * (2 * s1[i] + nk[c] * delta[j]);
            if (spherical)
                sph_extra += extra;
            else
                st.sum_x2[i] += s2[i] + extra;
        }
        if (spherical) st.sum_x2[c] += s2[c] + sph_extra;
    }
    return {sums[0], sums[1]};
}

void GpuEStep::accumulate_device(const GaussianMixture& model, idx_t n, const float* x_dev,
                                 const float* weights_dev, float* log_norm_dev,
                                 SufficientStatistics& st, cudaStream_t stream) {
    FAISS_GMM_CHECK(log_norm_dev || n == 0, "accumulate_device needs a log_norm buffer");
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    upload_model(model, st.shift, n, x_dev, true, stream);
    run_block(n, x_dev, weights_dev, log_norm_dev, stream);
    download_stats(st, stream);
}

void GpuEStep::accumulate(const GaussianMixture& model, idx_t n, const float* x,
                          const float* weights, float* log_norm, SufficientStatistics& st) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    if (resident(n, x, weights)) {
        // Pinned rows: already on the device, nothing crosses PCIe but the model.
        upload_model(model, st.shift, n, rx_.data(), true, stream_);
        run_block(n, rx_.data(), weights ? rw_.data() : nullptr, rlz_.data(), stream_);
        if (log_norm) {
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(log_norm, rlz_.data(), sizeof(float) * n,
                                                 cudaMemcpyDeviceToHost, stream_));
        }
        download_stats(st, stream_);
        return;
    }
    upload_model(model, st.shift, n, x, false, stream_);
    const int d = model.d;
    const size_t row_bytes = sizeof(float) * (size_t(d) + 2);
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, idx_t(block_bytes_ / row_bytes)));
    for (int s = 0; s < 2 && s < (n + bs - 1) / bs; s++) {
        x_[s].reserve(size_t(bs) * d);
        hx_[s].reserve(size_t(bs) * d);
        lz_[s].reserve(size_t(bs));
        if (log_norm) hlz_[s].reserve(size_t(bs));
        if (weights) {
            w_[s].reserve(size_t(bs));
            hw_[s].reserve(size_t(bs));
        }
    }
    // Slot s holds block `first[s]` (rows) until its `done_` event fires.
    idx_t first[2] = {-1, -1}, count[2] = {0, 0};
    auto retire = [&](int s) {
        if (first[s] < 0) return;
        FAISS_GMM_CUDA_CHECK(cudaEventSynchronize(done_[s].get()));
        if (log_norm) std::copy(hlz_[s].data(), hlz_[s].data() + count[s], log_norm + first[s]);
        first[s] = -1;
    };
    idx_t block = 0;
    for (idx_t i0 = 0; i0 < n; i0 += bs, block++) {
        const int s = int(block & 1);
        const idx_t nb = std::min(bs, n - i0);
        retire(s);  // the slot's previous block is computed and read back
        // Packing into page-locked memory overlaps the other slot's kernels;
        // one thread copies ~5 GB/s, less than the link's ~55.
        const float* src = x + size_t(i0) * d;
        float* dst = hx_[s].data();
        const int64_t total = int64_t(nb) * d, chunk = int64_t(1) << 16;
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < (total + chunk - 1) / chunk; c++)
            std::copy(src + c * chunk, src + std::min(total, (c + 1) * chunk), dst + c * chunk);
        if (weights) std::copy(weights + i0, weights + i0 + nb, hw_[s].data());
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(x_[s].data(), hx_[s].data(),
                                             sizeof(float) * size_t(nb) * d, cudaMemcpyHostToDevice,
                                             copy_stream_));
        if (weights)
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(w_[s].data(), hw_[s].data(), sizeof(float) * nb,
                                                 cudaMemcpyHostToDevice, copy_stream_));
        FAISS_GMM_CUDA_CHECK(cudaEventRecord(copied_[s].get(), copy_stream_));
        FAISS_GMM_CUDA_CHECK(cudaStreamWaitEvent(stream_, copied_[s].get(), 0));
        run_block(nb, x_[s].data(), weights ? w_[s].data() : nullptr, lz_[s].data(), stream_);
        if (log_norm)
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hlz_[s].data(), lz_[s].data(), sizeof(float) * nb,
                                                 cudaMemcpyDeviceToHost, stream_));
        FAISS_GMM_CUDA_CHECK(cudaEventRecord(done_[s].get(), stream_));
        first[s] = i0;
        count[s] = nb;
    }
    retire(int(block & 1));
    retire(int((block + 1) & 1));
    download_stats(st, stream_);
}

size_t GpuEStep::device_bytes() const {
    size_t b = raw_.bytes() + sample_dev_.bytes() + a_.bytes() + b_.bytes() + c_.bytes() +
               acc_.bytes() + converted_.bytes() + cache_.bytes() + rx_.bytes() + rw_.bytes() +
               rlz_.bytes() + labels_.bytes() + resp_.bytes() + hacc_.bytes() + fraw_.bytes() +
               fw_.bytes() + fmo_.bytes() + facc_.bytes() +
               (gen_ ? gen_->device_bytes() : 0);
    for (int s = 0; s < 2; s++)
        b += x_[s].bytes() + w_[s].bytes() + lz_[s].bytes() + raw_dev_[s].bytes();
    return b;
}

namespace {

/// Whether p lies in page-locked host memory the copy engine reads directly.
bool page_locked(const void* p) {
    if (!p) return false;
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();  // older drivers: an error for pageable memory
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}

}  // namespace

const DeviceRowGenerator* GpuEStep::device_generator(const DataSource& src) {
    if (!device_generation_) return nullptr;
    if (gen_uid_ != src.uid()) {
        gen_ = DeviceRowGenerator::for_source(src);
        gen_uid_ = src.uid();
    }
    return gen_.get();
}

void GpuEStep::accumulate_source(const GaussianMixture& model, const DataSource& src, idx_t i0,
                                 idx_t n, SufficientStatistics& st) {
    FAISS_GMM_CHECK(src.d() == model.d, "data has dimension " + std::to_string(src.d()) +
                                            " but the model " + std::to_string(model.d));
    FAISS_GMM_CHECK(i0 >= 0 && n >= 0 && i0 + n <= src.n(), "row range outside the data");
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    const int d = model.d;
    const ElementType type = src.type();
    const size_t rb = src.row_bytes();
    // The kernels' centre from up to 1024 rows spread over the range.
    const idx_t ns = std::min<idx_t>(n, 1024);
    std::vector<float> sample(size_t(ns) * d);
    for (idx_t i = 0; i < ns; i++)
        src.read_float(i0 + i * (n / std::max<idx_t>(ns, 1)), 1, sample.data() + size_t(i) * d);
    check_finite_rows(ns, d, sample.data(), "training data (sampled rows)");
    upload_model(model, st.shift, ns, sample.data(), false, stream_);
    if (n == 0) {
        download_stats(st, stream_);
        return;
    }
    // A slot holds a block raw on both sides; the converted rows and the
    // per-row log Z are one buffer each (the kernels run in order on stream_).
    const size_t per_row = 2 * rb + (type == ElementType::Float32 ? 0 : 4 * size_t(d)) + 4;
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, idx_t(2 * block_bytes_ / per_row)));
    // The per-block buffers first: a cache takes what memory is left.
    if (type != ElementType::Float32) converted_.reserve(size_t(bs) * d);
    lz_[0].reserve(size_t(bs));
    // The device cache: hit (rows already on the device), fill (this pass
    // uploads into it), or neither (stream through the slots).
    const bool hit = cache_uid_ == src.uid() && cache_i0_ == i0 && cache_n_ == n;
    bool fill = false;
    if (!hit && cache_limit_ > 0 && size_t(n) * rb <= cache_limit_) {
        cache_uid_ = 0;
        try {
            cache_.reserve(size_t(n) * rb);
            fill = true;
        } catch (const Error&) {
            // Not enough free device memory: stream instead, as without a cache.
        }
    }
    const uint8_t* direct = static_cast<const uint8_t*>(src.contiguous_rows());
    if (!page_locked(direct)) direct = nullptr;
    const DeviceRowGenerator* gen = hit ? nullptr : device_generator(src);
    for (int s = 0; s < 2 && s < (n + bs - 1) / bs; s++) {
        if (!hit && !fill) raw_dev_[s].reserve(size_t(bs) * rb);
        if (!direct && !hit && !gen) raw_host_[s].reserve(size_t(bs) * rb);
    }
    idx_t block = 0;
    for (idx_t b0 = 0; b0 < n; b0 += bs, block++) {
        const int s = int(block & 1);
        const idx_t nb = std::min(bs, n - b0);
        // Where the block's stored rows sit on the device.
        uint8_t* dev = hit || fill ? cache_.data() + size_t(b0) * rb : raw_dev_[s].data();
        const uint8_t* from = direct ? direct + size_t(i0 + b0) * rb : raw_host_[s].data();
        if (hit || gen) {
            // Nothing to read on the host.
        } else if (!direct) {
            // The slot's previous upload must be done before it is refilled;
            // host threads read (or generate) the rows meanwhile the other
            // slot's copy and kernels run.
            FAISS_GMM_CUDA_CHECK(cudaEventSynchronize(copied_[s].get()));
            uint8_t* dst = raw_host_[s].data();
            const idx_t chunk = std::max<idx_t>(1, (idx_t(1) << 20) / idx_t(rb));
#pragma omp parallel for schedule(dynamic)
            for (idx_t c0 = 0; c0 < nb; c0 += chunk)
                src.read_raw(i0 + b0 + c0, std::min(chunk, nb - c0), dst + size_t(c0) * rb);
        }
        if (!hit) {
            // The device slot is free once the kernels (or the conversion)
            // of its previous block have read it.
            FAISS_GMM_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, done_[s].get(), 0));
            if (gen)
                gen->generate(i0 + b0, nb, dev, copy_stream_);
            else
                FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(dev, from, size_t(nb) * rb,
                                                     cudaMemcpyHostToDevice, copy_stream_));
            FAISS_GMM_CUDA_CHECK(cudaEventRecord(copied_[s].get(), copy_stream_));
            FAISS_GMM_CUDA_CHECK(cudaStreamWaitEvent(stream_, copied_[s].get(), 0));
        }
        const float* x = reinterpret_cast<const float*>(dev);
        if (type != ElementType::Float32) {
            const int64_t count = int64_t(nb) * d;
            if (type == ElementType::UInt8)
                FAISS_GMM_CUDA_CHECK(launch_u8_to_float(dev, count, converted_.data(), stream_));
            else
                FAISS_GMM_CUDA_CHECK(launch_f16_to_float(reinterpret_cast<const uint16_t*>(dev),
                                                         count, converted_.data(), stream_));
            FAISS_GMM_CUDA_CHECK(cudaEventRecord(done_[s].get(), stream_));
            x = converted_.data();
        }
        run_block(nb, x, nullptr, lz_[0].data(), stream_);
        if (type == ElementType::Float32)
            FAISS_GMM_CUDA_CHECK(cudaEventRecord(done_[s].get(), stream_));
    }
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
    try {
        download_stats(st, stream_);
    } catch (const Error&) {
        // A non-finite log-likelihood: name the row when the data holds one.
        find_nonfinite_source_row(src, i0, n);
        throw;
    }
    if (fill) {
        cache_uid_ = src.uid();
        cache_i0_ = i0;
        cache_n_ = n;
    }
}

}  // namespace gpu
}  // namespace faiss_gmm
