// A mutation fuzz of the vector-file readers (issue 18, item 3): valid
// small files of every format, truncated, flipped, extended and with their
// header fields set to 0, negative and huge values, from fixed seeds. Every
// case must end in a clean faiss_gmm::Error naming the file, or in a
// success that an independent decoder written here agrees with: the shape
// and every value. (Run under `make sanitize` too: no crash, no hang, no
// sanitizer report.)
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/VectorIO.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

struct Kind {
    const char* name;  // test label
    const char* ext;
    ElementType type;
};

/// A valid file of the kind: n x d random values through the library's writer.
std::string valid_file(const Kind& k, const std::string& path, int64_t n, int d,
                       std::mt19937_64& rng) {
    std::uniform_int_distribution<int> b(0, 255);
    std::normal_distribution<float> g(0.f, 3.f);
    const size_t nv = size_t(n) * d;
    // n x d values drawn by `draw`, written by the kind's writer.
    auto make = [&](auto zero, auto&& draw, auto&& write) {
        std::vector<decltype(zero)> x(nv);
        for (auto& v : x) v = draw();
        write(path, n, d, x.data());
    };
    switch (k.type) {
        case ElementType::Float32:
            make(
                0.f, [&] { return g(rng); }, write_vectors);
            break;
        case ElementType::UInt8:
            make(
                uint8_t(0), [&] { return uint8_t(b(rng)); }, write_bvectors);
            break;
        case ElementType::Int32:
            make(
                int32_t(0), [&] { return int32_t(b(rng) * 1000 - 7); }, write_ivectors);
            break;
        case ElementType::Float16:
            make(
                uint16_t(0), [&] { return float_to_half(g(rng)); }, write_hvectors);
            break;
    }
    return read_raw(path);
}

/// What an independent decoder makes of the bytes: ok with the shape and
/// the values as float (int32 as float too), or not ok.
struct Decoded {
    bool ok = false;
    int64_t n = 0;
    int d = 0;
    std::vector<double> values;
};

double value_at(ElementType t, const std::string& s, size_t at) {
    switch (t) {
        case ElementType::Float32: {
            float v;
            std::memcpy(&v, s.data() + at, 4);
            return v;
        }
        case ElementType::UInt8:
            return double(uint8_t(s[at]));
        case ElementType::Int32: {
            int32_t v;
            std::memcpy(&v, s.data() + at, 4);
            return v;
        }
        case ElementType::Float16: {
            uint16_t h;
            std::memcpy(&h, s.data() + at, 2);
            return half_to_float(h);
        }
    }
    return 0;
}

uint32_t u32_at(const std::string& s, size_t at) {
    uint32_t v;
    std::memcpy(&v, s.data() + at, 4);
    return v;
}

Decoded decode(const Kind& k, const std::string& s) {
    Decoded r;
    const size_t e = element_size(k.type);
    const std::string ext = k.ext;
    if (ext == "fvecs" || ext == "bvecs" || ext == "ivecs") {
        if (s.size() < 4) return r;
        const int32_t d = int32_t(u32_at(s, 0));
        if (d <= 0) return r;
        const size_t row = 4 + size_t(d) * e;
        if (s.size() % row != 0) return r;
        r.n = int64_t(s.size() / row);
        r.d = d;
        for (int64_t i = 0; i < r.n; i++) {
            if (int32_t(u32_at(s, size_t(i) * row)) != d) return r;
            for (int j = 0; j < d; j++)
                r.values.push_back(value_at(k.type, s, size_t(i) * row + 4 + j * e));
        }
        r.ok = true;
        return r;
    }
    if (ext == "fbin" || ext == "u8bin" || ext == "ibin") {
        if (s.size() < 8) return r;
        const uint64_t n = u32_at(s, 0), d = u32_at(s, 4);
        if (d == 0 || d > uint64_t(INT32_MAX) || 8 + n * d * e != s.size()) return r;
        r.n = int64_t(n);
        r.d = int(d);
        for (size_t i = 0; i < n * d; i++) r.values.push_back(value_at(k.type, s, 8 + i * e));
        r.ok = true;
        return r;
    }
    // npy, versions 1 to 3: a dict with the dtype, C order and a 2-D shape.
    if (s.size() < 10 || s.compare(0, 6, "\x93NUMPY") != 0) return r;
    const int major = uint8_t(s[6]);
    size_t hl = 0, off = 0;
    if (major == 1) {
        hl = uint8_t(s[8]) | (size_t(uint8_t(s[9])) << 8);
        off = 10;
    } else if (major == 2 || major == 3) {
        if (s.size() < 12) return r;
        hl = u32_at(s, 8);
        off = 12;
    } else {
        return r;
    }
    if (off + hl > s.size()) return r;
    const std::string h = s.substr(off, hl);
    const char* descr = k.type == ElementType::Float32 ? "'<f4'"
                        : k.type == ElementType::UInt8 ? "'|u1'"
                        : k.type == ElementType::Int32 ? "'<i4'"
                                                       : "'<f2'";
    // Keys found wherever they sit (separators are not checked, as the
    // library's parser does not check them); the shape's numbers must be
    // plain digits, and the data must follow the header exactly.
    const size_t at_descr = h.find("'descr': ");
    if (at_descr == std::string::npos || h.compare(at_descr + 9, 5, descr) != 0) return r;
    if (h.find("'fortran_order': False") == std::string::npos) return r;
    size_t p = h.find("'shape': (");
    if (p == std::string::npos) return r;
    p += 10;
    auto number = [&](uint64_t& v) {
        if (p >= h.size() || !isdigit(uint8_t(h[p]))) return false;
        v = 0;
        while (p < h.size() && isdigit(uint8_t(h[p]))) {
            v = v * 10 + uint64_t(h[p++] - '0');
            if (v > (uint64_t(1) << 40)) return false;
        }
        return true;
    };
    uint64_t n = 0, d = 0;
    if (!number(n) || p >= h.size() || h[p] != ',') return r;
    p++;
    while (p < h.size() && h[p] == ' ') p++;
    if (!number(d) || p >= h.size() || h[p] != ')') return r;
    if (d == 0 || d > uint64_t(INT32_MAX) || off + hl + n * d * e != s.size()) return r;
    r.n = int64_t(n);
    r.d = int(d);
    for (size_t i = 0; i < n * d; i++) r.values.push_back(value_at(k.type, s, off + hl + i * e));
    r.ok = true;
    return r;
}

/// One mutation of a valid file's bytes.
std::string mutate(const std::string& good, const Kind& k, std::mt19937_64& rng, int c) {
    std::string s = good;
    auto pick = [&](size_t lo, size_t hi) {
        return hi <= lo ? lo : std::uniform_int_distribution<size_t>(lo, hi - 1)(rng);
    };
    const std::string ext = k.ext;
    const bool bin = ext == "fbin" || ext == "u8bin" || ext == "ibin";
    const bool vecs = ext.size() == 5 && ext.substr(1) == "vecs";
    const uint32_t fields[] = {0u, 0xffffffffu, 0x80000000u, 0x7fffffffu, 1u, 3u, uint32_t(rng())};
    switch (c % 6) {
        case 0:  // truncate
            s.resize(pick(0, s.size()));
            break;
        case 1:  // flip 1-4 bytes anywhere
            for (int f = 0, nf = int(pick(1, 5)); f < nf && !s.empty(); f++)
                s[pick(0, s.size())] ^= char(1 << pick(0, 8));
            break;
        case 2:  // extend
            for (size_t e = 0, ne = pick(1, 100); e < ne; e++) s.push_back(char(rng()));
            break;
        case 3: {  // a header field: 0, negative, huge, random
            const uint32_t v = fields[pick(0, 7)];
            if (vecs) {
                const size_t e = element_size(k.type), d = u32_at(good, 0);
                const size_t rows = good.size() / (4 + d * e);
                std::memcpy(&s[pick(0, rows) * (4 + d * e)], &v, 4);
            } else if (bin) {
                std::memcpy(&s[pick(0, 2) * 4], &v, 4);
            } else {  // npy: the header length
                const uint16_t hl = uint16_t(v);
                std::memcpy(&s[8], &hl, 2);
            }
            break;
        }
        case 4: {  // flip bytes in the first 80 (the headers' region)
            for (int f = 0, nf = int(pick(1, 4)); f < nf; f++)
                s[pick(0, std::min<size_t>(80, s.size()))] = char(rng());
            break;
        }
        default: {  // a shape digit of npy (or a row header elsewhere) replaced
            if (!bin && !vecs) {
                const size_t at = s.find("'shape': (");
                if (at != std::string::npos)
                    s[at + 10 + pick(0, 6)] = char("0123456789-(),x "[pick(0, 16)]);
            } else {
                s.resize(s.size() - std::min<size_t>(s.size(), pick(1, 9)));
            }
        }
    }
    return s;
}

class ReaderFuzz : public testing::TestWithParam<Kind> {};

TEST_P(ReaderFuzz, EveryMutationIsACleanErrorOrACorrectRead) {
    const Kind k = GetParam();
    // Fixed seeds: the same cases every run, several hundred per format.
    std::mt19937_64 rng(0x5eed0000u + uint64_t(k.type) * 131 +
                        std::hash<std::string>()(k.ext) % 977);
    TempDir dir;
    int errors = 0, successes = 0;
    for (int c = 0; c < 300; c++) {
        const int64_t n = 1 + int64_t(rng() % 9);
        const int d = 1 + int(rng() % 7);
        const std::string good = valid_file(k, dir / (std::string("good.") + k.ext), n, d, rng);
        const std::string bad = mutate(good, k, rng, c);
        const std::string path = dir / ("case" + std::to_string(c) + "." + k.ext);
        write_raw(path, bad);
        const Decoded ref = decode(k, bad);
        try {
            VectorFile f(path);
            std::vector<double> got;
            if (k.type == ElementType::Int32) {
                std::vector<int32_t> v(size_t(f.n()) * f.d());
                f.read_int(0, f.n(), v.data());
                got.assign(v.begin(), v.end());
            } else {
                std::vector<float> v(size_t(f.n()) * f.d());
                f.read_float(0, f.n(), v.data());
                got.assign(v.begin(), v.end());
            }
            successes++;
            ASSERT_TRUE(ref.ok) << "case " << c << ": read " << f.n() << " x " << f.d()
                                << " from bytes the reference decoder refuses; header "
                                << testing::PrintToString(
                                       bad.substr(0, std::min<size_t>(bad.size(), 128)));
            ASSERT_EQ(f.n(), ref.n) << "case " << c;
            ASSERT_EQ(f.d(), ref.d) << "case " << c;
            ASSERT_EQ(got.size(), ref.values.size()) << "case " << c;
            for (size_t i = 0; i < got.size(); i++)
                if (!(got[i] == ref.values[i] || (std::isnan(got[i]) && std::isnan(ref.values[i]))))
                    FAIL() << "case " << c << ": value " << i << " " << got[i] << " vs "
                           << ref.values[i];
        } catch (const Error& e) {
            errors++;
            EXPECT_NE(std::string(e.what()).find("case" + std::to_string(c) + "."),
                      std::string::npos)
                << "case " << c << ": the error does not name the file: " << e.what();
            // A decodable file refused is allowed only where the library is
            // stricter than the decoder (e.g. a zero-row file): say which.
            if (ref.ok && ref.n > 0)
                ADD_FAILURE() << "case " << c << ": refused a valid " << ref.n << " x " << ref.d
                              << " file: " << e.what();
        }
    }
    std::printf("[ fuzz ] %s: 300 cases, %d clean errors, %d correct reads\n", k.name, errors,
                successes);
    EXPECT_GT(errors, 0);
    EXPECT_GT(successes, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, ReaderFuzz,
    testing::Values(
        Kind{"fvecs", "fvecs", ElementType::Float32}, Kind{"bvecs", "bvecs", ElementType::UInt8},
        Kind{"ivecs", "ivecs", ElementType::Int32}, Kind{"fbin", "fbin", ElementType::Float32},
        Kind{"u8bin", "u8bin", ElementType::UInt8}, Kind{"ibin", "ibin", ElementType::Int32},
        Kind{"npy_f4", "npy", ElementType::Float32}, Kind{"npy_u1", "npy", ElementType::UInt8},
        Kind{"npy_f2", "npy", ElementType::Float16}, Kind{"npy_i4", "npy", ElementType::Int32}),
    [](const testing::TestParamInfo<Kind>& i) { return std::string(i.param.name); });

}  // namespace

namespace {

/// The model and checkpoint readers under the same mutations. A success
/// must be a model that passes check_model and saves back to the same
/// model bytes (the file's model part: magic aside, everything up to the
/// EM state of a checkpoint).
class ModelFuzz : public testing::TestWithParam<CovarianceType> {};

TEST_P(ModelFuzz, EveryMutationIsACleanErrorOrAFaithfulLoad) {
    const CovarianceType cov = GetParam();
    std::mt19937_64 rng(0x600d0000u + uint64_t(cov));
    TempDir dir;
    int errors = 0, successes = 0;
    for (int c = 0; c < 300; c++) {
        const int d = 1 + int(rng() % 5), k = 1 + int(rng() % 4);
        const int64_t n = 40 + int64_t(rng() % 40);
        auto x = random_rows(n, d, false, rng);
        GaussianMixtureParameters p;
        p.covariance_type = cov;
        p.niter = 2;
        p.device = Device::Cpu;
        // Half the cases start from a checkpoint (a model with EM state).
        const bool ckpt = c % 2 == 1;
        if (ckpt) p.checkpoint_path = dir / "good.ckpt";
        GaussianMixture m(d, k, p);
        m.fit(n, x.data());
        const std::string good_path = dir / "good.gmm";
        m.save(good_path);
        const std::string good = read_raw(ckpt ? p.checkpoint_path : good_path);
        std::string bad = good;
        auto pick = [&](size_t lo, size_t hi) {
            return hi <= lo ? lo : std::uniform_int_distribution<size_t>(lo, hi - 1)(rng);
        };
        const int32_t fields[] = {0, -1, INT32_MIN, INT32_MAX, 1 << 20, 3, int32_t(rng())};
        switch (c / 2 % 5) {
            case 0:
                bad.resize(pick(0, bad.size()));
                break;
            case 1:
                for (int f = 0, nf = int(pick(1, 5)); f < nf; f++)
                    bad[pick(0, bad.size())] ^= char(1 << pick(0, 8));
                break;
            case 2:
                for (size_t e = 0, ne = pick(1, 60); e < ne; e++) bad.push_back(char(rng()));
                break;
            case 3: {  // d, k, covariance type, normalize; or a checkpoint's iteration count
                const int32_t v = fields[pick(0, 7)];
                const size_t hdr_end = 24;
                const size_t at = ckpt && pick(0, 2)
                                      ? good.size() - 36 * size_t(m.iteration_stats.size()) - 16
                                      : 8 + 4 * pick(0, 4);
                (void)hdr_end;
                std::memcpy(&bad[at], &v, 4);
                break;
            }
            default:
                bad[pick(0, std::min<size_t>(24, bad.size()))] = char(rng());
        }
        const std::string path = dir / ("case" + std::to_string(c) + (ckpt ? ".ckpt" : ".gmm"));
        write_raw(path, bad);
        try {
            const GaussianMixture got = GaussianMixture::load(path);
            successes++;
            got.check_model();
            const std::string again_path = dir / "again.gmm";
            got.save(again_path);
            const std::string again = read_raw(again_path);
            ASSERT_GE(bad.size(), again.size()) << "case " << c;
            EXPECT_EQ(again.substr(8), bad.substr(8, again.size() - 8))
                << "case " << c << ": the loaded model is not the file's";
        } catch (const Error& e) {
            errors++;
            EXPECT_NE(std::string(e.what()).find("case" + std::to_string(c) + "."),
                      std::string::npos)
                << "case " << c << ": the error does not name the file: " << e.what();
        }
        // The resume path reads the same bytes with the EM state.
        if (ckpt) {
            GaussianMixtureParameters q = p;
            q.checkpoint_path = path;
            q.resume = true;
            GaussianMixture r(d, k, q);
            try {
                r.fit(n, x.data());
                successes++;
            } catch (const Error& e) {
                errors++;
                EXPECT_NE(std::string(e.what()).find("case" + std::to_string(c) + "."),
                          std::string::npos)
                    << "case " << c << " (resume): the error does not name the file: " << e.what();
            }
        }
    }
    // No temporary file of an atomic write is left behind by the resumed fits.
    const std::string left =
        run_command("ls -a '" + dir.path + "' | grep -c '\\.tmp\\.' || true").out;
    EXPECT_EQ(left.substr(0, 1), "0") << "temporary files left: " << left;
    std::printf(
        "[ fuzz ] model %s: 300 files (150 checkpoints, also resumed), %d clean errors, %d "
        "successes\n",
        to_string(cov), errors, successes);
    EXPECT_GT(errors, 0);
    EXPECT_GT(successes, 0);
}

INSTANTIATE_TEST_SUITE_P(Covariances, ModelFuzz,
                         testing::Values(CovarianceType::Spherical, CovarianceType::Diagonal,
                                         CovarianceType::Full),
                         [](const testing::TestParamInfo<CovarianceType>& i) {
                             return std::string(to_string(i.param));
                         });

}  // namespace

namespace {

// A full disk (a 64 KB tmpfs; skipped where it cannot be mounted, e.g. not
// root): every writer reports the path and leaves neither the file nor its
// temporary behind (issue 18, item 4).
TEST(FullDisk, WritersNameThePathAndLeaveNothing) {
    TempDir dir;
    const std::string mnt = dir / "small";
    if (run_command("mkdir -p '" + mnt + "' && mount -t tmpfs -o size=64k tmpfs '" + mnt + "'")
            .code != 0)
        GTEST_SKIP() << "cannot mount a tmpfs here (not root, or not permitted)";
    struct Unmount {
        std::string m;
        ~Unmount() { run_command("umount '" + m + "'"); }
    } unmount{mnt};
    std::mt19937_64 rng(fresh_seed());
    auto x = random_rows(4000, 16, false, rng);  // 256 KB: more than the disk holds
    auto expect_clean = [&](const char* what, const std::string& path, auto&& write) {
        try {
            write();
            ADD_FAILURE() << what << ": no error writing " << path;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos)
                << what << ": " << e.what();
        }
        EXPECT_FALSE(file_exists(path)) << what;
        const std::string left = run_command("ls -A '" + mnt + "'").out;
        EXPECT_EQ(left, "") << what << ": left behind: " << left;
    };
    for (const char* ext : {"fvecs", "fbin", "npy"}) {
        const std::string p = mnt + "/x." + ext;
        expect_clean(ext, p, [&] { write_vectors(p, 4000, 16, x.data()); });
    }
    GaussianMixtureParameters gp;
    gp.covariance_type = CovarianceType::Full;
    GaussianMixture m(16, 80, gp);  // 80 x 16 x 16 covariances: 82 KB
    m.weights.assign(80, 1.f / 80);
    m.means.assign(80 * 16, 0.f);
    m.variances.assign(m.n_variances(), 0.f);
    for (int c = 0; c < 80; c++)
        for (int j = 0; j < 16; j++) m.variances[(size_t(c) * 16 + j) * 16 + j] = 1.f;
    const std::string mp = mnt + "/m.gmm";
    expect_clean("model", mp, [&] { m.save(mp); });
}

}  // namespace
