// A mutation fuzz of FAISS index files as `eval` reads them
// (read_index_checked; issue 18, item 3): small valid indexes of every
// kind faiss-gmm builds, truncated, flipped, extended and with header
// fields set to 0, negative and huge values, from fixed seeds. Every case
// must end in a clean faiss_gmm::Error naming the file, or in an index
// that FAISS writes back to exactly the bytes read and that searches
// without fault (under `make sanitize`: no out-of-bounds access).
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss_gmm/IndexIO.h>
#include <faiss_gmm/VectorIO.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

struct IndexKind {
    const char* name;     // test label
    const char* factory;  // faiss::index_factory string
    faiss::MetricType metric;
};

void PrintTo(const IndexKind& k, std::ostream* os) { *os << k.factory; }

constexpr int kD = 16;

/// The index's bytes as faiss::write_index makes them.
std::string serialize(const faiss::Index* index) {
    faiss::VectorIOWriter w;
    faiss::write_index(index, &w);
    return std::string(w.data.begin(), w.data.end());
}

std::string valid_index(const IndexKind& k, std::mt19937_64& rng) {
    const int64_t n = 700;
    auto x = random_rows(n, kD, false, rng);
    std::unique_ptr<faiss::Index> index(faiss::index_factory(kD, k.factory, k.metric));
    index->train(n, x.data());
    index->add(n - 123, x.data());  // some lists short, one maybe empty
    return serialize(index.get());
}

/// Where the structures' headers start: after each fourcc the file holds.
std::vector<size_t> header_offsets(const std::string& s) {
    std::vector<size_t> at;
    for (const char* cc : {"IxF2", "IxFI", "IwFl", "IwPQ", "IwSq", "IxPT", "ilar", "full", "sprs",
                           "LTra", "Pcam", "rrot"})
        for (size_t p = s.find(cc); p != std::string::npos; p = s.find(cc, p + 1))
            at.push_back(p + 4);
    return at;
}

std::string mutate(const std::string& good, std::mt19937_64& rng, int c) {
    std::string s = good;
    auto pick = [&](size_t lo, size_t hi) {
        return hi <= lo ? lo : std::uniform_int_distribution<size_t>(lo, hi - 1)(rng);
    };
    const uint64_t values[] = {0,          ~uint64_t(0),          uint64_t(1) << 40,
                               1ull << 62, uint64_t(INT32_MAX),   1,
                               3,          uint64_t(int64_t(-7)), rng()};
    switch (c % 5) {
        case 0:  // truncate
            s.resize(pick(0, s.size()));
            break;
        case 1:  // flip 1-4 bits anywhere
            for (int f = 0, nf = int(pick(1, 5)); f < nf; f++)
                s[pick(0, s.size())] ^= char(1 << pick(0, 8));
            break;
        case 2:  // extend
            for (size_t e = 0, ne = pick(1, 100); e < ne; e++) s.push_back(char(rng()));
            break;
        case 3: {  // a header field (4 or 8 bytes) set to 0, negative, huge, small
            const auto at = header_offsets(good);
            const size_t p = at[pick(0, at.size())] + 4 * pick(0, 10);
            const uint64_t v = values[pick(0, 9)];
            const size_t w = pick(0, 2) ? 8 : 4;
            if (p + w <= s.size()) std::memcpy(&s[p], &v, w);
            break;
        }
        default:  // bytes of the first 96 (the outer headers) replaced
            for (int f = 0, nf = int(pick(1, 4)); f < nf; f++) s[pick(0, 96)] = char(rng());
    }
    return s;
}

class IndexFuzz : public testing::TestWithParam<IndexKind> {};

TEST_P(IndexFuzz, EveryMutationIsACleanErrorOrAFaithfulRead) {
    const IndexKind k = GetParam();
    std::mt19937_64 rng(0x1de70000u + std::hash<std::string>()(k.factory) % 9973);
    TempDir dir;
    const std::string good = valid_index(k, rng);
    auto xq = random_rows(7, kD, false, rng);
    int errors = 0, successes = 0, by_faiss = 0;
    for (int c = 0; c < 300; c++) {
        const std::string bad = mutate(good, rng, c);
        const std::string path = dir / ("case" + std::to_string(c) + ".index");
        write_raw(path, bad);
        std::unique_ptr<faiss::Index> index;
        try {
            index = read_index_checked(path);
        } catch (const Error& e) {
            errors++;
            by_faiss += std::string(e.what()).find("cannot read") != std::string::npos;
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos)
                << "case " << c << ": the error does not name the file: " << e.what();
            continue;
        }
        successes++;
        // What was read is what the file says: FAISS writes the same bytes.
        const std::string back = serialize(index.get());
        size_t at = 0;
        while (at < back.size() && at < bad.size() && back[at] == bad[at]) at++;
        ASSERT_TRUE(back == bad) << "case " << c << ": read an index that writes back "
                                 << back.size() << " bytes for the file's " << bad.size()
                                 << ", the first differing at " << at << ": "
                                 << testing::PrintToString(bad.substr(at > 8 ? at - 8 : 0, 16))
                                 << " vs "
                                 << testing::PrintToString(back.substr(at > 8 ? at - 8 : 0, 16));
        faiss::IndexIVF* ivf = faiss::ivflib::extract_index_ivf(index.get());
        ivf->nprobe = ivf->nlist;
        std::vector<float> dis(7 * 10);
        std::vector<faiss::Index::idx_t> ids(7 * 10);
        index->search(7, xq.data(), 10, dis.data(), ids.data());
        // Stored ids are the file's to choose; negative ones are refused.
        for (auto id : ids) ASSERT_GE(id, -1) << "case " << c;
    }
    std::printf(
        "[ fuzz ] %s: 300 cases, %d clean errors (%d of them FAISS's own), %d faithful "
        "reads\n",
        k.name, errors, by_faiss, successes);
    EXPECT_GT(errors, 0);
    EXPECT_GT(successes, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, IndexFuzz,
    testing::Values(IndexKind{"ivf_flat", "IVF13,Flat", faiss::METRIC_L2},
                    IndexKind{"ivf_flat_ip", "IVF7,Flat", faiss::METRIC_INNER_PRODUCT},
                    IndexKind{"ivf_pq", "IVF9,PQ4x4", faiss::METRIC_L2},
                    IndexKind{"ivf_sq8", "IVF11,SQ8", faiss::METRIC_L2},
                    IndexKind{"ivf_sq4", "IVF5,SQ4", faiss::METRIC_L2},
                    IndexKind{"ivf_sqfp16", "IVF5,SQfp16", faiss::METRIC_L2},
                    IndexKind{"opq_ivf_pq", "OPQ4,IVF5,PQ4x4", faiss::METRIC_L2},
                    IndexKind{"pca_ivf_flat", "PCA8,IVF6,Flat", faiss::METRIC_L2}),
    [](const testing::TestParamInfo<IndexKind>& i) { return std::string(i.param.name); });

/// eval, given a truncated index, names the file and prints no table.
TEST(IndexFiles, TruncatedIndexIsRefusedByEvalNamingIt) {
    std::mt19937_64 rng(77);
    TempDir dir;
    const std::string good = valid_index({"", "IVF13,Flat", faiss::METRIC_L2}, rng);
    write_raw(dir / "cut.index", good.substr(0, good.size() / 2));
    const auto q = random_rows(5, kD, false, rng);
    write_vectors(dir / "q.fvecs", 5, kD, q.data());
    const std::string out = dir / "out.txt";
    const int rc = std::system((std::string(FAISS_GMM_CLI) + " eval --index " + dir / "cut.index" +
                                " --queries " + dir / "q.fvecs" + " --base " + dir / "q.fvecs" +
                                " > " + out + " 2>&1")
                                   .c_str());
    const std::string log = read_raw(out);
    EXPECT_NE(rc, 0);
    EXPECT_NE(log.find("cut.index"), std::string::npos) << log;
    EXPECT_NE(log.find("corrupt"), std::string::npos) << log;
    EXPECT_EQ(log.find("R10@10"), std::string::npos) << log;
}

}  // namespace
