#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/utils/SyntheticRng.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <regex>
#include <unordered_map>

namespace faiss_gmm {

uint64_t DataSource::next_uid() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
}

namespace {

using synthetic_rng::mix64;
using synthetic_rng::next64;

constexpr int kNoiseBits = SyntheticSource::kNoiseBits;
constexpr int kNoiseLevels = 1 << kNoiseBits;

/// z_j = Phi^-1((j + 0.5) / 4096), rescaled to unit variance.
struct NoiseTable {
    float z[kNoiseLevels];
    double stddev_before = 0;
    NoiseTable() {
        double var = 0;
        for (int j = 0; j < kNoiseLevels; j++) {
            const double p = (j + 0.5) / kNoiseLevels;
            double lo = -10, hi = 10;  // Phi(z) = erfc(-z / sqrt 2) / 2 by bisection
            for (int it = 0; it < 100; it++) {
                const double mid = 0.5 * (lo + hi);
                (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
            }
            z[j] = float(0.5 * (lo + hi));
            var += double(z[j]) * z[j] / kNoiseLevels;
        }
        stddev_before = std::sqrt(var);
        for (float& v : z) v = float(v / stddev_before);
    }
};

const NoiseTable& noise_table() {
    static const NoiseTable t;
    return t;
}

void check_range(const DataSource& s, idx_t i0, idx_t count) {
    FAISS_GMM_CHECK(i0 >= 0 && count >= 0 && i0 + count <= s.n(),
                    "row range [" + std::to_string(i0) + ", " + std::to_string(i0 + count) +
                        ") is outside the " + std::to_string(s.n()) + " rows of " +
                        s.description());
}

void check_train_type(ElementType t, const std::string& what) {
    FAISS_GMM_CHECK(
        t == ElementType::Float32 || t == ElementType::UInt8 || t == ElementType::Float16,
        what + " holds " + to_string(t) + " values; training reads float32, uint8 or float16");
}

}  // namespace

void DataSource::read_float(idx_t i0, idx_t count, float* out) const {
    check_range(*this, i0, count);
    const int dd = d();
    if (type() == ElementType::Float32) {
        read_raw(i0, count, out);
        return;
    }
    // Convert in bounded chunks through a per-thread buffer of raw rows.
    const idx_t chunk = std::max<idx_t>(1, (idx_t(1) << 18) / dd);
#pragma omp parallel if (count > chunk)
    {
        std::vector<uint8_t> raw(size_t(chunk) * row_bytes());
#pragma omp for schedule(static)
        for (idx_t c0 = 0; c0 < count; c0 += chunk) {
            const idx_t nb = std::min(chunk, count - c0);
            read_raw(i0 + c0, nb, raw.data());
            convert_to_float(type(), raw.data(), size_t(nb) * dd, out + size_t(c0) * dd);
        }
    }
}

// ---- ArraySource

ArraySource::ArraySource(idx_t n, int d, const float* x)
    : ArraySource(n, d, ElementType::Float32, x) {}

ArraySource::ArraySource(idx_t n, int d, ElementType t, const void* x)
    : n_(n), d_(d), type_(t), x_(x) {
    FAISS_GMM_CHECK(n >= 0 && d > 0, "ArraySource: bad shape");
    FAISS_GMM_CHECK(x || n == 0, "ArraySource: null rows");
    check_train_type(t, "ArraySource");
}

std::string ArraySource::description() const {
    return "array " + std::to_string(n_) + " x " + std::to_string(d_) + " " + to_string(type_);
}

void ArraySource::read_raw(idx_t i0, idx_t count, void* out) const {
    check_range(*this, i0, count);
    const size_t rb = row_bytes();
    memcpy(out, static_cast<const uint8_t*>(x_) + size_t(i0) * rb, size_t(count) * rb);
}

// ---- FileSource

FileSource::FileSource(const std::string& path) : file_(path) {
    check_train_type(file_.type(), "'" + path + "'");
}

std::string FileSource::description() const {
    return "'" + file_.path() + "' (" + std::to_string(file_.n()) + " x " +
           std::to_string(file_.d()) + " " + to_string(file_.type()) + ")";
}

void FileSource::read_raw(idx_t i0, idx_t count, void* out) const {
    file_.read_raw(i0, count, out);
}

// ---- RangeSource

RangeSource::RangeSource(const DataSource& parent, idx_t begin, idx_t count)
    : parent_(parent), begin_(begin), count_(count) {
    check_range(parent, begin, count);
}

std::string RangeSource::description() const {
    return "rows [" + std::to_string(begin_) + ", " + std::to_string(begin_ + count_) + ") of " +
           parent_.description();
}

void RangeSource::read_raw(idx_t i0, idx_t count, void* out) const {
    check_range(*this, i0, count);
    parent_.read_raw(begin_ + i0, count, out);
}

const void* RangeSource::contiguous_rows() const {
    const void* p = parent_.contiguous_rows();
    return p ? static_cast<const uint8_t*>(p) + size_t(begin_) * row_bytes() : nullptr;
}

const SyntheticSource* RangeSource::generator(idx_t* row_offset) const {
    idx_t off = 0;
    const SyntheticSource* g = parent_.generator(&off);
    if (g && row_offset) *row_offset = off + begin_;
    return g;
}

// ---- SyntheticSource

SyntheticSource::SyntheticSource(const SyntheticMixture& mixture, idx_t n, uint64_t seed,
                                 ElementType type, float scale, float offset)
    : mixture_(mixture), n_(n), seed_(seed), type_(type), scale_(scale), offset_(offset) {
    FAISS_GMM_CHECK(n >= 0, "SyntheticSource: negative row count");
    check_train_type(type, "SyntheticSource");
    double acc = 0;
    for (float w : mixture_.weights) cdf_.push_back(acc += w);
    for (double& c : cdf_) c /= acc;
    cdf_.back() = 1.0;
    noise_table();  // built once, before any parallel read
}

std::string SyntheticSource::description() const {
    const auto& p = mixture_.params;
    return "synthetic " + std::to_string(n_) + " x " + std::to_string(p.d) + " " +
           to_string(type_) + " from " + std::to_string(p.n_clusters) +
           " Gaussians (mixture seed " + std::to_string(p.seed) + ", stream seed " +
           std::to_string(seed_) + ")";
}

double SyntheticSource::noise_table_stddev() {
    const auto& t = noise_table();
    double var = 0;
    for (float v : t.z) var += double(v) * v / kNoiseLevels;
    return std::sqrt(var);
}

const float* SyntheticSource::noise_levels() { return noise_table().z; }

uint64_t SyntheticSource::row_key() const { return mix64(seed_ ^ mix64(mixture_.params.seed)); }

int SyntheticSource::component_of(uint64_t& state) const {
    const double u = synthetic_rng::next_unit(state);
    const int c = int(std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
    return std::min(c, int(cdf_.size()) - 1);
}

template <class T>
void SyntheticSource::generate(idx_t i0, idx_t count, T* out) const {
    const int d = mixture_.params.d;
    const float* z = noise_table().z;
    const uint64_t key = row_key();
#pragma omp parallel for schedule(static) if (count * d > (1 << 18))
    for (idx_t r = 0; r < count; r++) {
        uint64_t s = mix64(key + uint64_t(i0 + r));
        const int c = component_of(s);
        const float* mu = mixture_.centers.data() + size_t(c) * d;
        const float* sd = mixture_.stddevs.data() + size_t(c) * d;
        T* o = out + size_t(r) * d;
        uint64_t bits = 0;
        int left = 0;
        for (int j = 0; j < d; j++) {
            if (left == 0) bits = next64(s), left = 64 / kNoiseBits;
            const float v = mu[j] + sd[j] * z[bits & (kNoiseLevels - 1)];
            bits >>= kNoiseBits;
            left--;
            if constexpr (std::is_same<T, float>::value) {
                o[j] = scale_ * v + offset_;
            } else if constexpr (std::is_same<T, uint8_t>::value) {
                // Half up, clamped: truncating a value in [0, 256) is floor.
                const float q = scale_ * v + offset_ + 0.5f;
                o[j] = uint8_t(std::min(255.f, std::max(0.f, q)));
            } else {
                o[j] = float_to_half(scale_ * v + offset_);
            }
        }
    }
}

void SyntheticSource::read_raw(idx_t i0, idx_t count, void* out) const {
    check_range(*this, i0, count);
    switch (type_) {
        case ElementType::Float32:
            generate(i0, count, static_cast<float*>(out));
            break;
        case ElementType::UInt8:
            generate(i0, count, static_cast<uint8_t*>(out));
            break;
        default:
            generate(i0, count, static_cast<uint16_t*>(out));
            break;
    }
}

void SyntheticSource::labels(idx_t i0, idx_t count, int32_t* out) const {
    check_range(*this, i0, count);
    const uint64_t key = row_key();
    for (idx_t r = 0; r < count; r++) {
        uint64_t s = mix64(key + uint64_t(i0 + r));
        out[r] = component_of(s);
    }
}

// ---- sampling

std::vector<idx_t> sample_rows(idx_t n, idx_t m, uint64_t seed) {
    FAISS_GMM_CHECK(m >= 0 && m <= n, "sample_rows: need 0 <= m <= n");
    std::mt19937_64 rng(seed);
    // Fisher-Yates on a sparse permutation: positions never touched hold
    // their own index. The same draws as the dense shuffle, O(m) memory.
    std::unordered_map<idx_t, idx_t> moved;
    moved.reserve(size_t(2 * m));
    auto at = [&](idx_t i) {
        auto it = moved.find(i);
        return it == moved.end() ? i : it->second;
    };
    std::vector<idx_t> out(m);
    for (idx_t i = 0; i < m; i++) {
        std::uniform_int_distribution<idx_t> u(i, n - 1);
        const idx_t j = u(rng);
        const idx_t vi = at(i), vj = at(j);
        moved[j] = vi;
        moved[i] = vj;
        out[i] = vj;
    }
    std::sort(out.begin(), out.end());
    return out;
}

void check_finite_source_rows(const DataSource& src, idx_t i0, idx_t count, const float* x) {
    const int d = src.d();
    idx_t bad = -1;  // count - (first bad row): the max is the first
#pragma omp parallel for reduction(max : bad) if (count * d > (1 << 16))
    for (idx_t r = 0; r < count; r++)
        for (int j = 0; j < d; j++)
            if (!std::isfinite(x[size_t(r) * d + j])) bad = std::max(bad, count - r);
    FAISS_GMM_CHECK_ARG(bad < 0, "row " + std::to_string(i0 + count - bad) + " of " +
                                     src.description() + " holds a NaN or Inf");
}

void find_nonfinite_source_row(const DataSource& src, idx_t i0, idx_t count) {
    if (src.type() == ElementType::UInt8) return;  // bytes are always finite
    const idx_t bs = 65536;
    std::vector<float> buf(size_t(std::min(bs, count)) * src.d());
    for (idx_t b0 = 0; b0 < count; b0 += bs) {
        const idx_t nb = std::min(bs, count - b0);
        src.read_float(i0 + b0, nb, buf.data());
        check_finite_source_rows(src, i0 + b0, nb, buf.data());
    }
}

void read_rows(const DataSource& src, const std::vector<idx_t>& rows, float* out) {
    const int d = src.d();
    const idx_t m = idx_t(rows.size());
    // Runs of consecutive rows become one read (a whole-range sample is one).
#pragma omp parallel for schedule(dynamic, 256)
    for (idx_t i = 0; i < m; i++) {
        if (i > 0 && rows[i] == rows[i - 1] + 1 && i % 4096 != 0) continue;
        idx_t e = i + 1;
        while (e < m && rows[e] == rows[e - 1] + 1 && e % 4096 != 0) e++;
        src.read_float(rows[i], e - i, out + size_t(i) * d);
    }
}

// ---- specs

std::unique_ptr<DataSource> open_data_source(const std::string& spec) {
    const std::string prefix = "synthetic:";
    if (spec.compare(0, prefix.size(), prefix) != 0) return std::make_unique<FileSource>(spec);
    static const std::regex re(
        R"(synthetic:(\d+)(?:x(\d+))?((?:,(?:k=\d+|seed=\d+|uint8|float16))*))");
    std::smatch m;
    FAISS_GMM_CHECK_ARG(std::regex_match(spec, m, re),
                        "bad synthetic source '" + spec +
                            "': want synthetic:N[xD][,k=K][,seed=S][,uint8|,float16]");
    const idx_t n = std::stoll(m[1]);
    SyntheticMixtureParameters p;
    p.d = m[2].matched ? std::stoi(m[2]) : 128;
    p.n_clusters = 1024;
    uint64_t seed = 1;
    ElementType t = ElementType::Float32;
    std::string opts = m[3];
    std::smatch o;
    while (std::regex_search(opts, o, std::regex(R"(,(k=(\d+)|seed=(\d+)|uint8|float16))"))) {
        if (o[2].matched) p.n_clusters = std::stoi(o[2]);
        if (o[3].matched) seed = std::stoull(o[3]);
        if (o[1] == "uint8") t = ElementType::UInt8;
        if (o[1] == "float16") t = ElementType::Float16;
        opts = o.suffix();
    }
    FAISS_GMM_CHECK_ARG(n > 0 && p.d > 0 && p.n_clusters > 0,
                        "bad synthetic source '" + spec + "': N, D and K must be positive");
    p.seed = seed;
    // uint8: SIFT-like byte values (centres N(0, 1) mapped to ~128 +- 32).
    const float scale = t == ElementType::UInt8 ? 32.f : 1.f;
    const float offset = t == ElementType::UInt8 ? 128.f : 0.f;
    return std::make_unique<SyntheticSource>(SyntheticMixture(p), n, seed, t, scale, offset);
}

}  // namespace faiss_gmm
