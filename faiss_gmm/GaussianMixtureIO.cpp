// Model and checkpoint files: GaussianMixture::save / load and the
// checkpoint written after each EM iteration (write_checkpoint,
// resume_from_checkpoint). Writes are atomic (temporary file, then rename).
#include <faiss_gmm/Communicator.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace faiss_gmm {

namespace {

constexpr char kMagic[8] = {'F', 'G', 'M', 'M', '0', '0', '0', '1'};
/// A checkpoint: the model followed by the EM state (also loads as a model).
constexpr char kCheckpointMagic[8] = {'F', 'G', 'M', 'M', 'C', 'K', 'P', '1'};

/// The model part of a model or checkpoint file (read_model reads it back).
void write_model(const GaussianMixture& m, const char* magic, FILE* f) {
    int32_t hdr[4] = {m.d, m.k, int32_t(m.params.covariance_type),
                      m.params.normalize_means ? 1 : 0};
    checked_fwrite(magic, 1, 8, f, "model header");
    checked_fwrite(hdr, sizeof(int32_t), 4, f, "model header");
    checked_fwrite(m.weights.data(), sizeof(float), m.weights.size(), f, "weights");
    checked_fwrite(m.means.data(), sizeof(float), m.means.size(), f, "means");
    checked_fwrite(m.variances.data(), sizeof(float), m.variances.size(), f, "variances");
}

}  // namespace

void GaussianMixture::write_checkpoint(double prev) const {
    write_file_atomic(params.checkpoint_path, [&](FILE* f) {
        write_model(*this, kCheckpointMagic, f);
        const int32_t state[2] = {int32_t(iteration_stats.size()), converged ? 1 : 0};
        checked_fwrite(state, sizeof(int32_t), 2, f, "EM state");
        checked_fwrite(&prev, sizeof(double), 1, f, "EM state");
        for (const auto& s : iteration_stats) {
            const double v[4] = {s.log_likelihood, s.time, s.time_estep, s.imbalance_factor};
            const int32_t r = s.n_reseeded;
            checked_fwrite(v, sizeof(double), 4, f, "iteration stats");
            checked_fwrite(&r, sizeof(int32_t), 1, f, "iteration stats");
        }
    });
}

void GaussianMixture::save(const std::string& path) const {
    check_model();
    write_file_atomic(path, [&](FILE* f) { write_model(*this, kMagic, f); });
}

namespace {

/// The model part of a model or checkpoint file of file_bytes bytes;
/// *checkpoint says which. The header's sizes are checked against the
/// file's before anything is allocated (a corrupt d or k must not ask for
/// exabytes).
GaussianMixture read_model(FILE* f, const std::string& path, bool* checkpoint,
                           uint64_t file_bytes) {
    char magic[8];
    int32_t hdr[4];
    auto need = [&](bool ok, const char* what) {
        if (!ok) throw Error("faiss-gmm: model file '" + path + "' is " + what);
    };
    need(fread(magic, 1, 8, f) == 8 &&
             (memcmp(magic, kMagic, 8) == 0 || memcmp(magic, kCheckpointMagic, 8) == 0),
         "not a faiss-gmm model (bad magic)");
    *checkpoint = memcmp(magic, kCheckpointMagic, 8) == 0;
    need(fread(hdr, sizeof(int32_t), 4, f) == 4, "truncated (header)");
    need(hdr[0] > 0 && hdr[1] > 0 && hdr[2] >= 0 && hdr[2] <= 2 && (hdr[3] == 0 || hdr[3] == 1),
         "corrupt (bad header)");
    // Floats the header promises: weights, means, variances (k, k d, and
    // k, k d or k d^2), in long double so that no product wraps.
    const long double d = hdr[0], k = hdr[1];
    const long double nvar = hdr[2] == 0 ? k : hdr[2] == 1 ? k * d : k * d * d;
    const long double payload = 4.0L * (k + k * d + nvar);
    if (24.0L + payload > (long double)file_bytes)
        throw Error("faiss-gmm: model file '" + path + "' is truncated (its header says d=" +
                    std::to_string(hdr[0]) + ", k=" + std::to_string(hdr[1]) + ": " +
                    std::to_string(uint64_t(std::min(payload, 1e19L))) +
                    " bytes of values, the file has " + std::to_string(file_bytes) + " in all)");
    GaussianMixtureParameters p;
    p.covariance_type = CovarianceType(hdr[2]);
    p.normalize_means = hdr[3] != 0;
    GaussianMixture m(hdr[0], hdr[1], p);
    m.weights.resize(m.k);
    m.means.resize(size_t(m.k) * m.d);
    m.variances.resize(m.n_variances());
    need(fread(m.weights.data(), sizeof(float), m.k, f) == size_t(m.k) &&
             fread(m.means.data(), sizeof(float), m.means.size(), f) == m.means.size() &&
             fread(m.variances.data(), sizeof(float), m.variances.size(), f) == m.variances.size(),
         "truncated");
    return m;
}

/// m.check_model(), its error naming the file the model came from.
void check_loaded(const GaussianMixture& m, const std::string& path) {
    try {
        m.check_model();
    } catch (const Error& e) {
        std::string what = e.what();
        const std::string prefix = "faiss-gmm: ";
        if (what.compare(0, prefix.size(), prefix) == 0) what = what.substr(prefix.size());
        throw Error("faiss-gmm: '" + path + "': " + what);
    }
}

/// The EM state after the model in a checkpoint.
void read_em_state(FILE* f, const std::string& path, GaussianMixture& m, double* prev,
                   uint64_t file_bytes) {
    auto need = [&](bool ok) {
        if (!ok) throw Error("faiss-gmm: checkpoint '" + path + "' is truncated (EM state)");
    };
    int32_t state[2];
    need(fread(state, sizeof(int32_t), 2, f) == 2 && state[0] >= 0 && state[1] >= 0 &&
         state[1] <= 1);
    // Each iteration's record is 4 doubles and an int32: the count must fit.
    const long at = ftell(f);
    need(at >= 0 && uint64_t(at) + 8 + 36 * uint64_t(state[0]) <= file_bytes);
    need(fread(prev, sizeof(double), 1, f) == 1);
    m.iteration_stats.resize(state[0]);
    for (auto& s : m.iteration_stats) {
        double v[4];
        int32_t r;
        need(fread(v, sizeof(double), 4, f) == 4 && fread(&r, sizeof(int32_t), 1, f) == 1);
        s.log_likelihood = v[0];
        s.time = v[1];
        s.time_estep = v[2];
        s.imbalance_factor = v[3];
        s.n_reseeded = r;
    }
    m.converged = state[1] != 0;
}

}  // namespace

GaussianMixture GaussianMixture::load(const std::string& path) {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) throw Error("faiss-gmm: cannot open model '" + path + "': " + strerror(errno));
    std::unique_ptr<FILE, int (*)(FILE*)> guard(f, fclose);
    bool checkpoint = false;
    uint64_t bytes = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        const long end = ftell(f);
        bytes = end > 0 ? uint64_t(end) : 0;
    }
    rewind(f);
    GaussianMixture m = read_model(f, path, &checkpoint, bytes);
    double prev;
    if (checkpoint) read_em_state(f, path, m, &prev, bytes);
    if (fgetc(f) != EOF)
        throw Error("faiss-gmm: model file '" + path + "' is longer than its header says");
    check_loaded(m, path);
    return m;
}

bool GaussianMixture::resume_from_checkpoint(double* prev, const Communicator& comm) {
    // Rank 0 reads the file (the others may not see it), every rank parses it.
    std::vector<char> bytes;
    int64_t size = -1;  // -1: no checkpoint yet, a fresh start
    if (comm.rank() == 0) {
        if (FILE* f = fopen(params.checkpoint_path.c_str(), "rb")) {
            std::unique_ptr<FILE, int (*)(FILE*)> guard(f, fclose);
            char buf[1 << 16];
            size_t r;
            while ((r = fread(buf, 1, sizeof(buf), f)) > 0) bytes.insert(bytes.end(), buf, buf + r);
            size = int64_t(bytes.size());
        }
    }
    comm.broadcast(&size, sizeof(size));
    if (size < 0) return false;
    bytes.resize(size_t(size));
    comm.broadcast(bytes.data(), bytes.size());
    FILE* f =
        fmemopen(bytes.empty() ? nullptr : bytes.data(), std::max<size_t>(bytes.size(), 1), "rb");
    FAISS_GMM_CHECK(f, "cannot read checkpoint '" + params.checkpoint_path + "'");
    std::unique_ptr<FILE, int (*)(FILE*)> guard(f, fclose);
    const std::string& path = params.checkpoint_path;
    bool checkpoint = false;
    GaussianMixture m = read_model(f, path, &checkpoint, bytes.size());
    FAISS_GMM_CHECK(checkpoint, "'" + path + "' is a model, not a checkpoint (nothing to resume)");
    FAISS_GMM_CHECK_ARG(m.d == d && m.k == k && m.params.covariance_type == params.covariance_type,
                        "checkpoint '" + path + "' holds d=" + std::to_string(m.d) + ", k=" +
                            std::to_string(m.k) + ", " + to_string(m.params.covariance_type) +
                            " covariance; this fit has d=" + std::to_string(d) +
                            ", k=" + std::to_string(k) + ", " + to_string(params.covariance_type));
    read_em_state(f, path, m, prev, bytes.size());
    FAISS_GMM_CHECK(fgetc(f) == EOF, "checkpoint '" + path + "' is longer than its header says");
    check_loaded(m, path);
    weights = m.weights;
    means = m.means;
    variances = m.variances;
    iteration_stats = m.iteration_stats;
    converged = m.converged;
    return true;
}

}  // namespace faiss_gmm
