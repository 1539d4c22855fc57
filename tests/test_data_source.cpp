// Data sources (faiss_gmm/DataSource.h): files of every format and element
// type read back as written, shards, the synthetic generator against its
// mixture, and the sparse subsample against a dense Fisher-Yates shuffle.
#include <faiss_gmm/DataSource.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <unistd.h>

#include <new>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

/// Independent half decoding: sign * 2^(e-15) * (1 + m/1024), or subnormal.
double half_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

}  // namespace

TEST(Float16, EveryHalfDecodesAndRoundTrips) {
    for (uint32_t h = 0; h < 65536; h++) {
        const int e = (h >> 10) & 31;
        const float f = half_to_float(uint16_t(h));
        if (e == 31) {
            EXPECT_TRUE((h & 1023) ? std::isnan(f) : std::isinf(f)) << h;
            continue;
        }
        ASSERT_EQ(double(f), half_value(uint16_t(h))) << "half bits " << h;
        ASSERT_EQ(float_to_half(f), h) << "half bits " << h;
    }
}

TEST(Float16, FloatsRoundToTheNearestHalf) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> le(-26, 17);
    for (int i = 0; i < 200000; i++) {
        const float f = float((rng() & 1 ? 1 : -1) * std::exp2(le(rng)));
        const uint16_t h = float_to_half(f);
        if (std::abs(f) >= 65520.f) {
            EXPECT_TRUE(std::isinf(half_to_float(h))) << f;
            continue;
        }
        // No other finite half is nearer (ties: the even one).
        const double err = std::abs(half_value(h) - f);
        for (int delta : {-1, 1}) {
            const uint16_t o = uint16_t(h + delta);
            if (((o >> 10) & 31) == 31 || (o ^ h) & 0x8000) continue;
            const double oerr = std::abs(half_value(o) - f);
            ASSERT_TRUE(err < oerr || (err == oerr && (h & 1) == 0))
                << f << " -> " << half_value(h) << ", neighbour " << half_value(o);
        }
    }
}

TEST(DataSources, FilesOfEveryFormatReadBackAsWritten) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    TempDir dir;
    const idx_t n = 1000 + rng() % 300;
    const int d = 3 + int(rng() % 40);
    std::vector<float> xf(size_t(n) * d);
    std::vector<uint8_t> xb(xf.size());
    std::vector<uint16_t> xh(xf.size());
    std::normal_distribution<float> g(0, 50);
    for (size_t i = 0; i < xf.size(); i++) {
        xf[i] = g(rng);
        xb[i] = uint8_t(rng());
        xh[i] = float_to_half(xf[i]);
    }
    struct Case {
        std::string name;
        ElementType t;
        bool contiguous;
    };
    write_vectors(dir.path + "/a.fvecs", n, d, xf.data());
    write_vectors(dir.path + "/a.fbin", n, d, xf.data());
    write_vectors(dir.path + "/a.npy", n, d, xf.data());
    write_bvectors(dir.path + "/b.bvecs", n, d, xb.data());
    write_bvectors(dir.path + "/b.u8bin", n, d, xb.data());
    write_bvectors(dir.path + "/b.npy", n, d, xb.data());
    write_hvectors(dir.path + "/h.npy", n, d, xh.data());
    for (const Case& c : {Case{"a.fvecs", ElementType::Float32, false},
                          Case{"a.fbin", ElementType::Float32, true},
                          Case{"a.npy", ElementType::Float32, true},
                          Case{"b.bvecs", ElementType::UInt8, false},
                          Case{"b.u8bin", ElementType::UInt8, true},
                          Case{"b.npy", ElementType::UInt8, true},
                          Case{"h.npy", ElementType::Float16, true}}) {
        SCOPED_TRACE(c.name);
        auto src = open_data_source(dir.path + "/" + c.name);
        ASSERT_EQ(src->n(), n);
        ASSERT_EQ(src->d(), d);
        ASSERT_EQ(src->type(), c.t);
        EXPECT_EQ(src->contiguous_rows() != nullptr, c.contiguous);
        const void* want = c.t == ElementType::Float32 ? (const void*)xf.data()
                           : c.t == ElementType::UInt8 ? (const void*)xb.data()
                                                       : (const void*)xh.data();
        // An awkward range, raw and converted.
        const idx_t i0 = 1 + idx_t(rng() % 100), cnt = n - i0 - 7;
        std::vector<uint8_t> raw(size_t(cnt) * src->row_bytes());
        src->read_raw(i0, cnt, raw.data());
        EXPECT_EQ(0, memcmp(raw.data(), (const uint8_t*)want + size_t(i0) * src->row_bytes(),
                            raw.size()));
        std::vector<float> got(size_t(cnt) * d);
        src->read_float(i0, cnt, got.data());
        for (size_t i = 0; i < got.size(); i++) {
            const size_t at = size_t(i0) * d + i;
            const double expect = c.t == ElementType::Float32 ? xf[at]
                                  : c.t == ElementType::UInt8 ? xb[at]
                                                              : half_value(xh[at]);
            ASSERT_EQ(double(got[i]), expect) << "value " << i;
        }
        // A shard reads its parent's rows; reads past either end are refused.
        RangeSource shard(*src, i0, cnt);
        std::vector<float> sh(size_t(cnt) * d);
        shard.read_float(0, cnt, sh.data());
        EXPECT_EQ(sh, got);
        EXPECT_THROW(shard.read_float(1, cnt, sh.data()), Error);
        EXPECT_THROW(RangeSource(*src, n - 3, 4), Error);
    }
}

// Backends key what they keep per source by uid: distinct for every
// object, even one built where a freed one lived; shared by copies.
TEST(DataSources, EverySourceHasItsOwnUid) {
    std::vector<float> x(30, 1.f);
    alignas(ArraySource) unsigned char storage[sizeof(ArraySource)];
    auto* a = new (storage) ArraySource(10, 3, x.data());
    const uint64_t ua = a->uid();
    a->~ArraySource();
    auto* b = new (storage) ArraySource(10, 3, x.data());
    EXPECT_NE(b->uid(), ua);
    const ArraySource copy = *b;
    EXPECT_EQ(copy.uid(), b->uid());
    b->~ArraySource();
}

TEST(DataSources, BadFilesAndSpecsAreRefusedByName) {
    TempDir dir;
    std::vector<int32_t> gt(30, 1);
    write_ivectors(dir.path + "/gt.ivecs", 10, 3, gt.data());
    try {
        FileSource s(dir.path + "/gt.ivecs");
        FAIL() << "an int32 file was accepted as training data";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("int32"), std::string::npos) << e.what();
    }
    std::vector<float> x(40, 1.f);
    write_vectors(dir.path + "/x.fbin", 10, 4, x.data());
    ASSERT_EQ(0, truncate((dir.path + "/x.fbin").c_str(), 8 + 4 * 37));
    EXPECT_THROW(open_data_source(dir.path + "/x.fbin"), Error);
    for (const char* bad : {"synthetic:", "synthetic:10x", "synthetic:10,k=", "synthetic:0x8",
                            "synthetic:100x8,bogus"})
        EXPECT_THROW(open_data_source(bad), Error) << bad;
    auto s = open_data_source("synthetic:1000x24,k=7,seed=3,uint8");
    EXPECT_EQ(s->n(), 1000);
    EXPECT_EQ(s->d(), 24);
    EXPECT_EQ(s->type(), ElementType::UInt8);
}

TEST(SyntheticSource, RowsDependOnlyOnTheirIndex) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    SyntheticMixtureParameters p;
    p.d = 13;
    p.n_clusters = 9;
    p.seed = seed;
    SyntheticMixture mix(p);
    const idx_t n = 50021;
    SyntheticSource src(mix, n, seed + 1);
    std::vector<float> whole(size_t(n) * p.d), pieces(whole.size());
    src.read_float(0, n, whole.data());
    // Pieces of awkward sizes, last first.
    std::vector<idx_t> cuts = {0, 1, 4097, 9999, 30011, n};
    for (int c = int(cuts.size()) - 2; c >= 0; c--)
        src.read_float(cuts[c], cuts[c + 1] - cuts[c], pieces.data() + size_t(cuts[c]) * p.d);
    EXPECT_EQ(whole, pieces);
    // Another stream seed gives other rows.
    SyntheticSource other(mix, n, seed + 2);
    std::vector<float> o(size_t(10) * p.d);
    other.read_float(0, 10, o.data());
    EXPECT_NE(0, memcmp(o.data(), whole.data(), o.size() * sizeof(float)));
    // uint8 and float16 rows are the float rows scaled, rounded and clamped.
    SyntheticSource b(mix, n, seed + 1, ElementType::UInt8, 40.f, 100.f);
    SyntheticSource h(mix, n, seed + 1, ElementType::Float16, 3.f, -1.f);
    std::vector<uint8_t> rb(size_t(n) * p.d);
    std::vector<uint16_t> rh(size_t(n) * p.d);
    b.read_raw(0, n, rb.data());
    h.read_raw(0, n, rh.data());
    for (size_t i = 0; i < whole.size(); i++) {
        const float q = std::floor(40.f * whole[i] + 100.f + 0.5f);  // half up
        ASSERT_EQ(rb[i], uint8_t(std::min(255.f, std::max(0.f, q)))) << i;
        ASSERT_EQ(rh[i], float_to_half(3.f * whole[i] - 1.f)) << i;
    }
}

TEST(SyntheticSource, RowsFollowTheMixture) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    EXPECT_NEAR(SyntheticSource::noise_table_stddev(), 1.0, 1e-6);
    SyntheticMixtureParameters p;
    p.d = 7;
    p.n_clusters = 5;
    p.size_skew = 1.0;
    p.anisotropic = true;
    p.seed = seed;
    SyntheticMixture mix(p);
    const idx_t n = 300007;
    SyntheticSource src(mix, n, seed ^ 0x5eed);
    std::vector<float> x(size_t(n) * p.d);
    std::vector<int32_t> lab(n);
    src.read_float(0, n, x.data());
    src.labels(0, n, lab.data());
    std::vector<double> cnt(p.n_clusters), s1(size_t(p.n_clusters) * p.d),
        s2(size_t(p.n_clusters) * p.d);
    for (idx_t i = 0; i < n; i++) {
        const int c = lab[i];
        cnt[c]++;
        for (int j = 0; j < p.d; j++) {
            const double v = x[size_t(i) * p.d + j];
            s1[size_t(c) * p.d + j] += v;
            s2[size_t(c) * p.d + j] += v * v;
        }
    }
    for (int c = 0; c < p.n_clusters; c++) {
        const double w = mix.weights[c];
        // Counts within 5 binomial standard deviations.
        EXPECT_NEAR(cnt[c] / n, w, 5 * std::sqrt(w * (1 - w) / n)) << "component " << c;
        for (int j = 0; j < p.d; j++) {
            const double sd = mix.stddevs[size_t(c) * p.d + j];
            const double mean = s1[size_t(c) * p.d + j] / cnt[c];
            const double var = s2[size_t(c) * p.d + j] / cnt[c] - mean * mean;
            EXPECT_NEAR(mean, mix.centers[size_t(c) * p.d + j], 5 * sd / std::sqrt(cnt[c]))
                << c << "," << j;
            // The variance of a sample variance is ~2 sd^4 / n for a normal.
            EXPECT_NEAR(var, sd * sd, 5 * sd * sd * std::sqrt(2.0 / cnt[c])) << c << "," << j;
        }
    }
}

TEST(SampleRows, SparseShuffleEqualsTheDenseOne) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 pick(seed);
    for (int trial = 0; trial < 20; trial++) {
        const idx_t n = 1 + idx_t(pick() % 5000);
        const idx_t m = idx_t(pick() % (n + 1));
        const uint64_t s = pick();
        // The dense reference: FAISS's first m of a seeded Fisher-Yates.
        std::vector<idx_t> perm(n);
        std::iota(perm.begin(), perm.end(), 0);
        std::mt19937_64 rng(s);
        for (idx_t i = 0; i < m; i++) {
            std::uniform_int_distribution<idx_t> u(i, n - 1);
            std::swap(perm[i], perm[u(rng)]);
        }
        std::sort(perm.begin(), perm.begin() + m);
        perm.resize(m);
        EXPECT_EQ(sample_rows(n, m, s), perm) << "n " << n << " m " << m;
    }
    EXPECT_THROW(sample_rows(5, 6, 1), Error);
}

TEST(SampleRows, ReadRowsGathersTheRows) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    const idx_t n = 20011;
    const int d = 5;
    auto x = random_rows(n, d, true, rng);
    ArraySource src(n, d, x.data());
    for (idx_t m : {idx_t(1), idx_t(777), n - 3, n}) {
        auto rows = sample_rows(n, m, rng());
        std::vector<float> got(size_t(m) * d);
        read_rows(src, rows, got.data());
        for (idx_t i = 0; i < m; i++)
            ASSERT_EQ(0, memcmp(got.data() + size_t(i) * d, x.data() + size_t(rows[i]) * d,
                                sizeof(float) * d))
                << "m " << m << " row " << i;
    }
}
