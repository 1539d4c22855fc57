// GpuEStep's hard assignment and pinned rows: k-means' assignment and
// update, the GMM's initial statistics and predict, all on the device.
#include <faiss_gmm/gpu/GpuEStep.h>

#include <algorithm>
#include <cstring>
#include <kernels/EStepFullKernels.cuh>
#include <kernels/EStepKernels.cuh>
#include <kernels/HardAssignKernels.cuh>

namespace faiss_gmm {
namespace gpu {

void GpuEStep::pin_rows(idx_t n, int d, const float* x, const float* w) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    unpin_rows();
    if (n <= 0) return;
    rx_.reserve(size_t(n) * d);
    rlz_.reserve(size_t(n));
    if (w) rw_.reserve(size_t(n));
    // Through the two page-locked slots: threads pack chunk c + 1 while the
    // copy engine uploads chunk c (pageable copies run at a fraction of the link).
    const size_t total = size_t(n) * d;
    const size_t chunk = std::max<size_t>(1, block_bytes_ / sizeof(float));
    for (int s = 0; s < 2; s++) hx_[s].reserve(std::min(chunk, total));
    int slot = 0;
    for (size_t off = 0; off < total; off += chunk, slot ^= 1) {
        const size_t cnt = std::min(chunk, total - off);
        FAISS_GMM_CUDA_CHECK(cudaEventSynchronize(copied_[slot].get()));
        float* dst = hx_[slot].data();
        const int64_t sub = int64_t(1) << 16;
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < int64_t((cnt + sub - 1) / sub); c++)
            std::memcpy(dst + c * sub, x + off + c * sub,
                        sizeof(float) * std::min<size_t>(sub, cnt - c * sub));
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(rx_.data() + off, dst, sizeof(float) * cnt,
                                             cudaMemcpyHostToDevice, copy_stream_));
        FAISS_GMM_CUDA_CHECK(cudaEventRecord(copied_[slot].get(), copy_stream_));
    }
    if (w)
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(rw_.data(), w, sizeof(float) * n,
                                             cudaMemcpyHostToDevice, copy_stream_));
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
    pinned_x_ = x;
    pinned_w_ = w;
    pinned_n_ = n;
}

void GpuEStep::unpin_rows() {
    pinned_x_ = pinned_w_ = nullptr;
    pinned_n_ = 0;
}

void GpuEStep::assign_kernels(idx_t n, const float* x, const Pass1Out& po) {
    if (full_) {
        FAISS_GMM_CUDA_CHECK(launch_full_log_norm(x, n, nullptr, full_view(), po, stream_));
        return;
    }
    if (mma_path()) {
        const MmaModelView mv = mma_view();
        if (wgmma_plan().log_norm)
            FAISS_GMM_CUDA_CHECK(launch_assign_wgmma(x, n, mv, plan_.logits, po, stream_));
        else
            FAISS_GMM_CUDA_CHECK(launch_assign_mma(x, n, mv, plan_.logits, po, stream_));
    } else {
        FAISS_GMM_CUDA_CHECK(launch_assign(x, n, simt_view(), po, stream_));
    }
}

void GpuEStep::assign_block(idx_t n, const float* x, const float* w, idx_t at, bool with_resp,
                            bool stats_spherical, bool want_stats, bool want_obj) {
    Pass1Out po;
    po.labels = labels_.data() + at;
    po.top_resp = with_resp ? resp_.data() + at : nullptr;
    assign_kernels(n, x, po);
    if (full_hard_)  // one-hot full second moments (prepare_full_hard)
        FAISS_GMM_CUDA_CHECK(launch_full_accumulate(x, n, w, nullptr, po.labels, full_view(),
                                                    full_stats(), num_sms_, stream_));
    if (!want_stats && !want_obj) return;
    double* nk = hacc_.data();
    StatsView sv;
    sv.nk = nk;
    sv.sum_x = nk + k_;
    sv.sum_x2 = sv.sum_x + size_t(k_) * d_;
    sv.sums = sv.sum_x2 + (stats_spherical ? size_t(k_) : size_t(k_) * d_);
    HardRowsView rows;
    rows.x = x;
    rows.n = n;
    rows.d = d_;
    rows.w = w;
    rows.labels = po.labels;
    rows.shift = raw_.data();                     // the kernels' centre
    const float* means = raw_.data() + dp_ + k_;  // raw_: centre | weights | means | variances
    FAISS_GMM_CUDA_CHECK(launch_hard_stats(rows, k_, stats_spherical, sv,
                                           want_obj ? means : nullptr, want_obj ? sv.sums : nullptr,
                                           num_sms_, stream_));
}

void GpuEStep::assign(const GaussianMixture& model, HardAssign how, idx_t n, const float* x,
                      const float* w, const AssignOutputs& out) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    if (n <= 0) return;
    model.check_model();
    const bool res = resident(n, x, w);
    const bool nearest = how == HardAssign::NearestMean;
    const GaussianMixture km =
        nearest ? nearest_mean_model(model.d, model.k, model.means.data()) : GaussianMixture();
    const GaussianMixture& terms = nearest ? km : model;
    upload_model(terms, out.stats ? out.stats->shift : mixture_center(model), n,
                 res ? rx_.data() : x, res, stream_);
    const bool with_resp = !nearest && out.resp;
    const bool any_stats = out.stats != nullptr, want_obj = nearest && out.objective;
    // Full second moments come from the full kernels' one-hot pass; the
    // hard-statistics kernel then adds only the objective.
    const bool full_stats = any_stats && out.stats->covariance_type == CovarianceType::Full;
    const bool want_stats = any_stats && !full_stats;
    const bool sph = !want_stats || out.stats->covariance_type == CovarianceType::Spherical;
    if (any_stats)
        FAISS_GMM_CHECK(out.stats->d == d_ && out.stats->k == k_,
                        "statistics were reset for another model shape");
    if (full_stats) prepare_full_hard(terms.means.data(), out.stats->shift, stream_);
    labels_.reserve(size_t(n));
    if (with_resp) resp_.reserve(size_t(n));
    const size_t acc = size_t(k_) + size_t(k_) * d_ + (sph ? size_t(k_) : size_t(k_) * d_) + 2;
    if (want_stats || want_obj) {
        hacc_.reserve(acc);
        FAISS_GMM_CUDA_CHECK(cudaMemsetAsync(hacc_.data(), 0, acc * sizeof(double), stream_));
    }
    if (res) {
        assign_block(n, rx_.data(), w ? rw_.data() : nullptr, 0, with_resp, sph, want_stats,
                     want_obj);
    } else {
        // Rows from the host in blocks through slot 0 (the kernels of one
        // block finish before the next upload: assign() is not the hot path).
        const idx_t bs = std::max<idx_t>(
            1, std::min<idx_t>(n, idx_t(block_bytes_ / (sizeof(float) * (size_t(d_) + 1)))));
        x_[0].reserve(size_t(bs) * d_);
        if (w) w_[0].reserve(size_t(bs));
        for (idx_t i0 = 0; i0 < n; i0 += bs) {
            const idx_t nb = std::min(bs, n - i0);
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(x_[0].data(), x + size_t(i0) * d_,
                                                 sizeof(float) * size_t(nb) * d_,
                                                 cudaMemcpyHostToDevice, stream_));
            if (w)
                FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(w_[0].data(), w + i0, sizeof(float) * nb,
                                                     cudaMemcpyHostToDevice, stream_));
            assign_block(nb, x_[0].data(), w ? w_[0].data() : nullptr, i0, with_resp, sph,
                         want_stats, want_obj);
            FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream_));
        }
    }
    if (out.labels) {
        hlabels_.reserve(size_t(n));
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hlabels_.data(), labels_.data(), sizeof(int32_t) * n,
                                             cudaMemcpyDeviceToHost, stream_));
    }
    if (with_resp)
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(out.resp, resp_.data(), sizeof(float) * n,
                                             cudaMemcpyDeviceToHost, stream_));
    if (want_stats || want_obj) {
        SufficientStatistics tmp;
        SufficientStatistics* st = want_stats ? out.stats : nullptr;
        if (!st) {
            // The objective alone: sums about the kernels' centre, discarded.
            tmp.reset(d_, k_, CovarianceType::Spherical, centre_);
            st = &tmp;
        }
        const std::array<double, 2> sums = download_sums(*st, hacc_.data(), sph, stream_);
        if (want_obj) *out.objective += sums[0];
    }
    if (full_stats) download_full_stats(*out.stats, false, stream_);
    if (any_stats) {
        double sw = double(n);
        if (w) {
            sw = 0;
            for (idx_t i = 0; i < n; i++) sw += w[i];
        }
        out.stats->sum_weights += sw;
    }
    FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (out.labels)
        for (idx_t i = 0; i < n; i++) out.labels[i] = idx_t(hlabels_.data()[i]);
}

void GpuEStep::top_components(const GaussianMixture& model, idx_t n, const float* x, int t,
                              idx_t* labels, float* resp) {
    FAISS_GMM_CUDA_CHECK(cudaSetDevice(device_));
    if (n <= 0) return;
    model.check_model();
    FAISS_GMM_CHECK(t >= 1 && t <= model.k, "top_components: t must be in [1, k]");
    const bool res = resident(n, x, nullptr);
    upload_model(model, mixture_center(model), n, res ? rx_.data() : x, res, stream_);
    // Per block: the rows (unless pinned), t labels and responsibilities,
    // two alternating values and log Z per row.
    const size_t row_bytes = sizeof(float) * (size_t(res ? 0 : d_) + 2 * size_t(t) + 3);
    const idx_t bs = std::max<idx_t>(1, std::min<idx_t>(n, idx_t(block_bytes_ / row_bytes)));
    labels_.reserve(size_t(bs) * t);
    resp_.reserve(size_t(bs) * t);
    rlz_.reserve(size_t(bs) * 3);  // log Z | value of pass j | of pass j - 1
    hlabels_.reserve(size_t(bs) * t);
    hresp_.reserve(size_t(bs) * t);
    if (!res) x_[0].reserve(size_t(bs) * d_);
    float* const lz = rlz_.data();
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        const float* xb = res ? rx_.data() + size_t(i0) * d_ : x_[0].data();
        if (!res)
            FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(x_[0].data(), x + size_t(i0) * d_,
                                                 sizeof(float) * size_t(nb) * d_,
                                                 cudaMemcpyHostToDevice, stream_));
        // Pass j: the argmax over the components after pass j - 1's pick.
        for (int j = 0; j < t; j++) {
            Pass1Out po;
            po.labels = labels_.data() + size_t(j) * nb;
            po.top_resp = resp_.data() + size_t(j) * nb;
            po.top_val = lz + size_t(1 + (j & 1)) * nb;
            if (j == 0) {
                po.log_norm = lz;
            } else {
                po.bound_val = lz + size_t(1 + ((j - 1) & 1)) * nb;
                po.bound_arg = labels_.data() + size_t(j - 1) * nb;
                po.log_norm_in = lz;
            }
            assign_kernels(nb, xb, po);
        }
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hlabels_.data(), labels_.data(),
                                             sizeof(int32_t) * size_t(nb) * t,
                                             cudaMemcpyDeviceToHost, stream_));
        FAISS_GMM_CUDA_CHECK(cudaMemcpyAsync(hresp_.data(), resp_.data(),
                                             sizeof(float) * size_t(nb) * t, cudaMemcpyDeviceToHost,
                                             stream_));
        FAISS_GMM_CUDA_CHECK(cudaStreamSynchronize(stream_));
        // Pass-major on the device, row-major for the caller: O(n t).
        for (idx_t i = 0; i < nb; i++)
            for (int j = 0; j < t; j++) {
                labels[size_t(i0 + i) * t + j] = idx_t(hlabels_.data()[size_t(j) * nb + i]);
                resp[size_t(i0 + i) * t + j] = hresp_.data()[size_t(j) * nb + i];
            }
    }
}

}  // namespace gpu
}  // namespace faiss_gmm
