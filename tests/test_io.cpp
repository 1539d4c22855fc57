// Vector files: round trips and every kind of bad file.
#include <dirent.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>
#include <gtest/gtest.h>

#include <fstream>

#include "TestUtils.h"

using namespace faiss_gmm;
using namespace faiss_gmm::test;

namespace {

int count_files(const std::string& dir) {
    int n = 0;
    DIR* d = opendir(dir.c_str());
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/// The error message of f(), or "" when it did not throw Error.
template <class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(VectorIO, FloatRoundTrips) {
    std::mt19937_64 rng(fresh_seed());
    TempDir dir;
    const int64_t n = 37;
    const int d = 13;
    auto x = random_rows(n, d, false, rng);
    for (const char* ext : {"fvecs", "fbin", "npy"}) {
        std::string p = dir / (std::string("a.") + ext);
        write_vectors(p, n, d, x.data());
        idx_t n2;
        int d2;
        auto y = read_vectors(p, &n2, &d2);
        EXPECT_EQ(n2, n) << ext;
        EXPECT_EQ(d2, d) << ext;
        EXPECT_EQ(y, x) << ext;
        auto part = read_vectors(p, &n2, &d2, 5);
        EXPECT_EQ(n2, 5);
        EXPECT_EQ(part, std::vector<float>(x.begin(), x.begin() + 5 * d));
    }
}

TEST(VectorIO, ByteAndIntRoundTrips) {
    std::mt19937_64 rng(fresh_seed());
    TempDir dir;
    const int64_t n = 21;
    const int d = 9;
    std::vector<uint8_t> b(n * d);
    std::vector<int32_t> iv(n * d);
    for (auto& v : b) v = uint8_t(rng());
    for (auto& v : iv) v = int32_t(rng() % 100000);
    for (const char* ext : {"bvecs", "u8bin", "npy"}) {
        std::string p = dir / (std::string("b.") + ext);
        write_bvectors(p, n, d, b.data());
        idx_t n2;
        int d2;
        auto y = read_vectors(p, &n2, &d2);
        ASSERT_EQ(y.size(), b.size()) << ext;
        for (size_t i = 0; i < b.size(); i++) EXPECT_EQ(y[i], float(b[i]));
    }
    for (const char* ext : {"ivecs", "ibin", "npy"}) {
        std::string p = dir / (std::string("i.") + ext);
        write_ivectors(p, n, d, iv.data());
        idx_t n2;
        int d2;
        EXPECT_EQ(read_ivectors(p, &n2, &d2), iv) << ext;
    }
}

TEST(VectorIO, BadFilesNameTheProblem) {
    std::mt19937_64 rng(fresh_seed());
    TempDir dir;
    auto x = random_rows(10, 4, false, rng);
    write_vectors(dir / "ok.fvecs", 10, 4, x.data());
    write_vectors(dir / "ok.fbin", 10, 4, x.data());
    write_vectors(dir / "ok.npy", 10, 4, x.data());
    std::string fv = read_raw(dir / "ok.fvecs"), fb = read_raw(dir / "ok.fbin"),
                np = read_raw(dir / "ok.npy");
    idx_t n;
    int d;
    auto err = [&](const std::string& p) { return error_of([&] { read_vectors(p, &n, &d); }); };

    write_raw(dir / "empty.fvecs", "");
    EXPECT_NE(err(dir / "empty.fvecs").find("empty"), std::string::npos);
    write_raw(dir / "trunc.fvecs", fv.substr(0, fv.size() - 3));
    EXPECT_NE(err(dir / "trunc.fvecs").find("truncated"), std::string::npos);
    std::string mixed = fv;
    int32_t five = 5;
    memcpy(&mixed[3 * 20], &five, 4);  // row 3 claims d = 5
    write_raw(dir / "mixed.fvecs", mixed);
    EXPECT_NE(err(dir / "mixed.fvecs").find("row 3"), std::string::npos);
    write_raw(dir / "trunc.fbin", fb.substr(0, fb.size() - 4));
    EXPECT_NE(err(dir / "trunc.fbin").find("truncated"), std::string::npos);
    write_raw(dir / "short.fbin", "abc");
    EXPECT_NE(err(dir / "short.fbin").find("truncated"), std::string::npos);
    write_raw(dir / "trunc.npy", np.substr(0, np.size() - 1));
    EXPECT_NE(err(dir / "trunc.npy").find("truncated"), std::string::npos);
    std::string f8 = np;
    f8.replace(f8.find("<f4"), 3, "<f8");
    write_raw(dir / "f8.npy", f8);
    EXPECT_NE(err(dir / "f8.npy").find("dtype '<f8'"), std::string::npos);
    std::string fortran = np;
    fortran.replace(fortran.find("False"), 5, "True ");
    write_raw(dir / "fortran.npy", fortran);
    EXPECT_NE(err(dir / "fortran.npy").find("Fortran"), std::string::npos);
    std::string magic = np;
    magic[1] = 'X';
    write_raw(dir / "magic.npy", magic);
    EXPECT_NE(err(dir / "magic.npy").find("magic"), std::string::npos);
    EXPECT_NE(err(dir / "ok.txt").find("extension"), std::string::npos);
    EXPECT_NE(err(dir / "missing.fvecs").find("cannot open"), std::string::npos);
    idx_t ni;
    int di;
    EXPECT_NE(error_of([&] { read_ivectors(dir / "ok.fvecs", &ni, &di); }).find("int32"),
              std::string::npos);
}

TEST(VectorIO, UnwritablePathLeavesNothing) {
    TempDir dir;
    std::vector<float> x(12, 1.f);
    write_raw(dir / "plainfile", "x");
    EXPECT_NE(error_of([&] {
                  write_vectors(dir / "plainfile/x.fvecs", 3, 4, x.data());
              }).find("cannot write"),
              std::string::npos);
    EXPECT_NE(error_of([&] { write_vectors("/proc/faiss_gmm_no/x.fvecs", 3, 4, x.data()); }), "");
    // A writer that fails midway: no target, no temporary file.
    EXPECT_THROW(write_file_atomic(dir / "partial.bin",
                                   [](FILE* f) {
                                       fputs("half", f);
                                       throw std::runtime_error("disk full");
                                   }),
                 Error);
    EXPECT_EQ(count_files(dir.path), 1);  // only "plainfile"
    // An existing file is replaced only when the new one is complete.
    write_vectors(dir / "keep.fvecs", 3, 4, x.data());
    std::string before = read_raw(dir / "keep.fvecs");
    EXPECT_THROW(write_file_atomic(dir / "keep.fvecs", [](FILE*) { throw Error("boom"); }), Error);
    EXPECT_EQ(read_raw(dir / "keep.fvecs"), before);
}

TEST(VectorIO, NonFiniteRowsAreNamed) {
    std::vector<float> x(30, 0.5f);
    x[2 * 5 + 4] = INFINITY;
    EXPECT_NE(error_of([&] { check_finite_rows(6, 5, x.data(), "data"); }).find("row 2"),
              std::string::npos);
}

}  // namespace
