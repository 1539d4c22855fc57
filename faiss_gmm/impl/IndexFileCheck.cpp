#include <faiss/Index.h>
#include <faiss/MetricType.h>
#include <faiss/impl/ScalarQuantizer.h>
#include <faiss/impl/io.h>
#include <faiss_gmm/impl/IndexFileCheck.h>
#include <faiss_gmm/utils/Common.h>

#include <vector>

namespace faiss_gmm {
namespace impl {

namespace {

/// Thrown inside the walk at a structure whose layout it does not know.
struct UnknownStructure {
    std::string fourcc;
};

/// The structures FAISS 1.7.3's read_index reads (impl/index_read.cpp): a
/// type outside these is corruption, refused before FAISS throws from inside
/// a half-built index (its reader then leaks what it built). Newer FAISS
/// reads more, so there every unknown type is left to FAISS.
bool faiss_reads(const std::string& cc) {
#if FAISS_VERSION_MAJOR == 1 && FAISS_VERSION_MINOR == 7
    static const char* const known[] = {
        "IHN2", "IHNf", "IHNp", "IHNs", "ILfs", "INNf", "INSf", "INSp", "INSs", "IPLf", "IPRf",
        "IPfs", "IRMf", "IRMh", "IRfs", "IVLf", "IVRf", "ImRQ", "Imiq", "IvFL", "IvFl", "IvPQ",
        "IvQR", "IvSQ", "IwFd", "IwFl", "IwLS", "IwPL", "IwPQ", "IwPR", "IwPf", "IwQR", "IwRQ",
        "IwSQ", "IwSh", "IwSq", "Ix2L", "IxF2", "IxFI", "IxFl", "IxHE", "IxHe", "IxLS", "IxLa",
        "IxM2", "IxMp", "IxPL", "IxPQ", "IxPR", "IxPT", "IxPo", "IxPq", "IxRF", "IxRQ", "IxRq",
        "IxSQ", "LTra", "NPLf", "NPRf", "PCAm", "PcAm", "Pcam", "RmDT", "VCnt", "VNrm", "Viqm",
        "Viqt", "rrot", "ilar", "ilbl", "ilod"};
    for (const char* k : known)
        if (cc == k) return true;
    return false;
#else
    (void)cc;
    return true;
#endif
}

using faiss::fourcc;

/// The fields FAISS's index header holds (read_index_header).
struct Header {
    int d = 0;
    int64_t ntotal = 0;
    bool trained = false;
    int metric = 1;
};

/// Reads the file in FAISS's layout, every size checked against what is left.
class Walker {
   public:
    Walker(FILE* f, int64_t size, const std::string& path) : f_(f), size_(size), path_(path) {}

    /// One index, at the current position; its header.
    Header index() {
        const uint32_t h = get<uint32_t>("index type");
        if (h == fourcc("IxF2") || h == fourcc("IxFI")) return flat(h == fourcc("IxFI"));
        if (h == fourcc("IwFl") || h == fourcc("IwPQ") || h == fourcc("IwSQ") ||
            h == fourcc("IwSq"))
            return ivf(h);
        if (h == fourcc("IxPT")) return pre_transform();
        unknown(h, "index type");
    }

    /// Bytes after the index are corruption (FAISS's writer leaves none).
    void expect_end() {
        check(pos_ == size_, std::to_string(size_ - pos_) + " bytes after the index's end");
    }

   private:
    /// A structure the walk does not know: corruption unless FAISS reads it.
    [[noreturn]] void unknown(uint32_t h, const char* what) const {
        const std::string cc = faiss::fourcc_inv_printable(h);
        check(faiss_reads(cc), std::string(what) + " '" + cc + "' is not one FAISS reads");
        throw UnknownStructure{cc};
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw Error("FAISS index '" + path_ + "' is corrupt: " + what + " (at byte " +
                    std::to_string(pos_) + ")");
    }
    void check(bool ok, const std::string& what) const {
        if (!ok) fail(what);
    }
    int64_t left() const { return size_ - pos_; }

    template <class T>
    T get(const char* what) {
        T v{};
        check(left() >= int64_t(sizeof(T)) && fread(&v, sizeof(T), 1, f_) == 1,
              std::string("truncated in its ") + what);
        pos_ += sizeof(T);
        return v;
    }
    bool get_bool(const char* what) {
        const uint8_t b = get<uint8_t>(what);
        check(b <= 1, std::string(what) + " is " + std::to_string(b) + ", not a bool");
        return b == 1;
    }
    void skip(int64_t bytes) {
        check(fseeko(f_, bytes, SEEK_CUR) == 0, "cannot seek");
        pos_ += bytes;
    }
    /// A vector's stated length, checked to fit in what is left; its data skipped.
    uint64_t skip_vector(size_t elem, const char* what) {
        const uint64_t n = vector_length(elem, what);
        skip(int64_t(n * elem));
        return n;
    }
    uint64_t vector_length(size_t elem, const char* what) {
        const uint64_t n = get<uint64_t>(what);
        check(n <= uint64_t(left()) / elem, std::string(what) + " states " + std::to_string(n) +
                                                " elements, more than the file holds");
        return n;
    }
    std::vector<uint64_t> read_sizes(const char* what) {
        std::vector<uint64_t> v(vector_length(8, what));
        check(v.empty() || fread(v.data(), 8, v.size(), f_) == v.size(),
              std::string("truncated in its ") + what);
        pos_ += int64_t(v.size()) * 8;
        return v;
    }

    Header header();
    Header flat(bool inner_product);
    Header ivf(uint32_t h);
    Header pre_transform();
    void ivf_lists_header(const Header& hd, uint64_t* nlist);
    void direct_map(const Header& hd);
    void inverted_lists(uint64_t nlist, uint64_t code_size, int64_t ntotal);
    uint64_t product_quantizer(int d);
    uint64_t scalar_quantizer(const Header& hd);
    void transform(int* d_in, int* d_out);

    FILE* f_;
    int64_t size_;
    int64_t pos_ = 0;
    const std::string& path_;
};

Header Walker::header() {
    Header hd;
    hd.d = get<int32_t>("dimension");
    check(hd.d >= 1 && hd.d <= (1 << 24), "dimension " + std::to_string(hd.d) + " is out of range");
    hd.ntotal = get<int64_t>("vector count");
    check(hd.ntotal >= 0, "vector count " + std::to_string(hd.ntotal) + " is negative");
    // FAISS writes 2^20 twice here, as a format marker it ignores on reading.
    for (int i = 0; i < 2; i++)
        check(get<int64_t>("header marker") == (int64_t(1) << 20),
              "the header marker is not FAISS's 2^20");
    hd.trained = get_bool("is_trained flag");
    const int32_t metric = get<int32_t>("metric type");
    const bool known = (metric >= 0 && metric <= 4) || (metric >= 20 && metric <= 22);
    check(known, "metric type " + std::to_string(metric) + " is not one FAISS defines");
    if (metric > 1) get<float>("metric argument");
    hd.metric = metric;
    return hd;
}

Header Walker::flat(bool inner_product) {
    const Header hd = header();
    // The type names the metric (FAISS writes IxFI for inner product, IxF2 for L2).
    const int metric = inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    check(hd.metric == metric, "a flat index of type " +
                                   std::string(inner_product ? "IxFI" : "IxF2") +
                                   " with metric type " + std::to_string(hd.metric));
    // READXBVECTOR's length counts floats (4 bytes each): ntotal * d of them.
    const uint64_t n = skip_vector(sizeof(float), "vectors");
    check(n == uint64_t(hd.ntotal) * uint64_t(hd.d),
          "a flat index of " + std::to_string(hd.ntotal) + " vectors of dimension " +
              std::to_string(hd.d) + " holds " + std::to_string(n) + " floats");
    return hd;
}

void Walker::direct_map(const Header& hd) {
    const uint8_t type = get<uint8_t>("direct map type");
    check(type <= 2, "direct map type " + std::to_string(type) + " is not one FAISS defines");
    const uint64_t n = skip_vector(8, "direct map");
    check(n == 0 || (type == 1 && n == uint64_t(hd.ntotal)),
          "a direct map of " + std::to_string(n) + " entries for " + std::to_string(hd.ntotal) +
              " vectors");
    if (type == 2) skip_vector(16, "direct map hash table");
}

/// read_ivf_header: the index header, nlist, nprobe, the quantizer, the direct map.
void Walker::ivf_lists_header(const Header& hd, uint64_t* nlist) {
    *nlist = get<uint64_t>("list count");
    check(*nlist >= 1 && *nlist <= uint64_t(left()),
          "list count " + std::to_string(*nlist) + " is out of range");
    get<uint64_t>("nprobe");
    const Header q = index();
    check(q.d == hd.d, "the quantizer has dimension " + std::to_string(q.d) +
                           " but the index has " + std::to_string(hd.d));
    check(uint64_t(q.ntotal) == *nlist, "the quantizer holds " + std::to_string(q.ntotal) +
                                            " centroids for " + std::to_string(*nlist) + " lists");
    direct_map(hd);
}

Header Walker::ivf(uint32_t h) {
    const Header hd = header();
    uint64_t nlist;
    ivf_lists_header(hd, &nlist);
    uint64_t code_size = uint64_t(hd.d) * sizeof(float);
    if (h == fourcc("IwPQ")) {
        get_bool("by_residual flag");
        code_size = get<uint64_t>("code size");
        const uint64_t pq_code = product_quantizer(hd.d);
        check(code_size == pq_code, "code size " + std::to_string(code_size) +
                                        " but the product quantizer's is " +
                                        std::to_string(pq_code));
    } else if (h != fourcc("IwFl")) {
        const uint64_t sq_code = scalar_quantizer(hd);
        code_size = get<uint64_t>("code size");
        check(code_size == sq_code, "code size " + std::to_string(code_size) +
                                        " but the scalar quantizer's is " +
                                        std::to_string(sq_code));
        if (h == fourcc("IwSq")) get_bool("by_residual flag");
    }
    inverted_lists(nlist, code_size, hd.ntotal);
    return hd;
}

uint64_t Walker::product_quantizer(int d) {
    const uint64_t pd = get<uint64_t>("product quantizer's dimension");
    check(pd == uint64_t(d), "the product quantizer has dimension " + std::to_string(pd) +
                                 " but the index has " + std::to_string(d));
    const uint64_t m = get<uint64_t>("product quantizer's M");
    check(m >= 1 && m <= pd && pd % m == 0, "product quantizer M = " + std::to_string(m) +
                                                " does not divide d = " + std::to_string(pd));
    const uint64_t nbits = get<uint64_t>("product quantizer's nbits");
    check(nbits >= 1 && nbits <= 16,
          "product quantizer nbits = " + std::to_string(nbits) + " (1 to 16)");
    const uint64_t n = skip_vector(sizeof(float), "product quantizer's centroids");
    check(n == pd << nbits,
          "the product quantizer holds " + std::to_string(n) +
              " centroid floats, not d * 2^nbits = " + std::to_string(pd << nbits));
    return (m * nbits + 7) / 8;
}

uint64_t Walker::scalar_quantizer(const Header& hd) {
    using SQ = faiss::ScalarQuantizer;
    const int32_t qtype = get<int32_t>("scalar quantizer type");
    check(qtype >= 0 && qtype <= int(SQ::QT_6bit),
          "scalar quantizer type " + std::to_string(qtype) + " is not one FAISS defines");
    const int32_t rangestat = get<int32_t>("scalar quantizer range statistic");
    check(rangestat >= 0 && rangestat <= int(SQ::RS_optim), "scalar quantizer range statistic " +
                                                                std::to_string(rangestat) +
                                                                " is not one FAISS defines");
    get<float>("scalar quantizer range argument");
    const uint64_t sd = get<uint64_t>("scalar quantizer's dimension");
    check(sd == uint64_t(hd.d), "the scalar quantizer has dimension " + std::to_string(sd) +
                                    " but the index has " + std::to_string(hd.d));
    const SQ expect(hd.d, SQ::QuantizerType(qtype));
    const uint64_t code_size = get<uint64_t>("scalar quantizer's code size");
    check(code_size == expect.code_size, "the scalar quantizer's code size is " +
                                             std::to_string(code_size) + ", not " +
                                             std::to_string(expect.code_size));
    // What train() leaves: a (min, range) pair per dimension, one pair, or nothing.
    const auto q = SQ::QuantizerType(qtype);
    const uint64_t trained = q == SQ::QT_8bit || q == SQ::QT_4bit || q == SQ::QT_6bit ? 2 * sd
                             : q == SQ::QT_8bit_uniform || q == SQ::QT_4bit_uniform   ? 2
                                                                                      : 0;
    const uint64_t n = skip_vector(sizeof(float), "scalar quantizer's ranges");
    check(n == trained || (n == 0 && !hd.trained), "the scalar quantizer holds " +
                                                       std::to_string(n) + " range floats, not " +
                                                       std::to_string(trained));
    return code_size;
}

void Walker::inverted_lists(uint64_t nlist, uint64_t code_size, int64_t ntotal) {
    const uint32_t h = get<uint32_t>("inverted lists type");
    check(h != fourcc("il00"), "the index was written without its inverted lists");
    if (h != fourcc("ilar")) unknown(h, "inverted lists type");
    check(get<uint64_t>("inverted lists' count") == nlist,
          "the inverted lists' count differs from the index's");
    check(get<uint64_t>("inverted lists' code size") == code_size,
          "the inverted lists' code size differs from the index's");
    std::vector<uint64_t> sizes(nlist, 0);
    const uint32_t type = get<uint32_t>("list sizes type");
    if (type == fourcc("full")) {
        sizes = read_sizes("list sizes");
        check(sizes.size() == nlist, "list sizes for " + std::to_string(sizes.size()) +
                                         " lists, not " + std::to_string(nlist));
    } else if (type == fourcc("sprs")) {
        const std::vector<uint64_t> pairs = read_sizes("sparse list sizes");
        check(pairs.size() % 2 == 0, "sparse list sizes of odd length");
        for (size_t j = 0; j < pairs.size(); j += 2) {
            check(pairs[j] < nlist, "sparse list sizes name list " + std::to_string(pairs[j]));
            sizes[pairs[j]] = pairs[j + 1];
        }
    } else {
        fail("list sizes type '" + faiss::fourcc_inv_printable(type) +
             "' is not one FAISS defines");
    }
    // Each entry: code_size bytes and an 8-byte id, all within what is left.
    const uint64_t entry = code_size + 8, room = uint64_t(left()) / entry;
    uint64_t total = 0;
    for (uint64_t n : sizes) {
        check(n <= room - total, "the inverted lists state more entries than the file holds");
        total += n;
    }
    check(total == uint64_t(ntotal), "the inverted lists hold " + std::to_string(total) +
                                         " entries for " + std::to_string(ntotal) + " vectors");
    skip(int64_t(total * entry));
}

void Walker::transform(int* d_in, int* d_out) {
    const uint32_t h = get<uint32_t>("transform type");
    const bool pca = h == fourcc("Pcam") || h == fourcc("PcAm") || h == fourcc("PCAm");
    if (!pca && h != fourcc("LTra") && h != fourcc("rrot")) unknown(h, "transform type");
    if (pca) {
        get<float>("PCA eigen_power");
        if (h == fourcc("Pcam")) get<float>("PCA epsilon");
        get_bool("PCA random_rotation flag");
        if (h != fourcc("PCAm")) get<int32_t>("PCA balanced_bins");
        skip_vector(sizeof(float), "PCA mean");
        skip_vector(sizeof(float), "PCA eigenvalues");
        skip_vector(sizeof(float), "PCA matrix");
    }
    const bool bias = get_bool("have_bias flag");
    const uint64_t a = skip_vector(sizeof(float), "transform matrix");
    const uint64_t b = skip_vector(sizeof(float), "transform bias");
    *d_in = get<int32_t>("transform's input dimension");
    *d_out = get<int32_t>("transform's output dimension");
    const bool trained = get_bool("transform's is_trained flag");
    check(*d_in >= 1 && *d_in <= (1 << 24) && *d_out >= 1 && *d_out <= (1 << 24),
          "transform dimensions " + std::to_string(*d_in) + " -> " + std::to_string(*d_out));
    check(!trained || a == uint64_t(*d_in) * uint64_t(*d_out),
          "a " + std::to_string(*d_in) + " -> " + std::to_string(*d_out) +
              " transform holds a matrix of " + std::to_string(a) + " floats");
    check(!trained || !bias || b == uint64_t(*d_out), "the transform's bias has " +
                                                          std::to_string(b) + " floats for " +
                                                          std::to_string(*d_out) + " outputs");
}

Header Walker::pre_transform() {
    const Header hd = header();
    const int32_t nt = get<int32_t>("transform count");
    check(nt >= 0 && nt <= 64, "transform count " + std::to_string(nt) + " is out of range");
    int d = hd.d;
    for (int i = 0; i < nt; i++) {
        int d_in, d_out;
        transform(&d_in, &d_out);
        check(d_in == d, "transform " + std::to_string(i) + " takes dimension " +
                             std::to_string(d_in) + " but is given " + std::to_string(d));
        d = d_out;
    }
    const Header sub = index();
    check(sub.d == d, "the transforms give dimension " + std::to_string(d) +
                          " but the index under them takes " + std::to_string(sub.d));
    return hd;
}

}  // namespace

IndexFileCheck check_index_file(FILE* f, int64_t size, const std::string& path) {
    Walker w(f, size, path);
    IndexFileCheck out;
    try {
        w.index();
        w.expect_end();
        out.complete = true;
    } catch (const UnknownStructure& u) {
        out.unchecked = u.fourcc;
    }
    return out;
}

}  // namespace impl
}  // namespace faiss_gmm
