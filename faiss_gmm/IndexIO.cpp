#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss_gmm/IndexIO.h>
#include <faiss_gmm/impl/IndexFileCheck.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace faiss_gmm {

namespace {

void check_finite(const float* x, size_t n, const std::string& what, const std::string& part) {
    FAISS_GMM_CHECK(all_finite(int64_t(n), x),
                    what + ": a non-finite value (NaN or Inf) in " + part);
}

void check_finite(const std::vector<float>& v, const std::string& what, const char* part) {
    check_finite(v.data(), v.size(), what, std::string("its ") + part);
}

void check_ivf(const faiss::IndexIVF* ivf, const std::string& what) {
    FAISS_GMM_CHECK(ivf->quantizer && ivf->quantizer->d == ivf->d &&
                        size_t(ivf->quantizer->ntotal) == ivf->nlist,
                    what + ": its quantizer does not match its " + std::to_string(ivf->nlist) +
                        " lists of dimension " + std::to_string(ivf->d));
    FAISS_GMM_CHECK(ivf->invlists && ivf->invlists->nlist == ivf->nlist,
                    what + ": it has no inverted lists matching its list count");
    check_index(ivf->quantizer, what);
    if (auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf))
        check_finite(pq->pq.centroids, what, "product quantizer centroids");
    if (auto* sq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(ivf))
        check_finite(sq->sq.trained, what, "scalar quantizer ranges");
    // One pass over the lists: FAISS answers -1 for "no result", so a stored
    // negative id is corruption; IVF-Flat codes are the vectors themselves.
    const auto* lists = ivf->invlists;
    const bool flat_codes = dynamic_cast<const faiss::IndexIVFFlat*>(ivf) != nullptr;
    for (size_t l = 0; l < lists->nlist; l++) {
        const size_t n = lists->list_size(l);
        faiss::InvertedLists::ScopedIds ids(lists, l);
        FAISS_GMM_CHECK(std::all_of(ids.get(), ids.get() + n, [](idx_t i) { return i >= 0; }),
                        what + ": list " + std::to_string(l) + " holds a negative id");
        if (!flat_codes) continue;
        faiss::InvertedLists::ScopedCodes codes(lists, l);
        check_finite(reinterpret_cast<const float*>(codes.get()),
                     n * lists->code_size / sizeof(float), what, "list " + std::to_string(l));
    }
}

}  // namespace

void check_index(const faiss::Index* index, const std::string& what) {
    if (auto* flat = dynamic_cast<const faiss::IndexFlatCodes*>(index)) {
        FAISS_GMM_CHECK(flat->codes.size() == size_t(flat->ntotal) * flat->code_size,
                        what + ": a flat index's codes do not match its vector count");
        if (dynamic_cast<const faiss::IndexFlat*>(index))
            check_finite(reinterpret_cast<const float*>(flat->codes.data()),
                         flat->codes.size() / sizeof(float), what, "its vectors");
    } else if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
        check_ivf(ivf, what);
    } else if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        int d = pt->d;
        for (const faiss::VectorTransform* vt : pt->chain) {
            FAISS_GMM_CHECK(vt->d_in == d, what + ": its transforms' dimensions do not chain");
            d = vt->d_out;
            if (auto* lt = dynamic_cast<const faiss::LinearTransform*>(vt)) {
                check_finite(lt->A, what, "transform matrix");
                check_finite(lt->b, what, "transform bias");
            }
        }
        FAISS_GMM_CHECK(pt->index && pt->index->d == d,
                        what + ": the index under its transforms has the wrong dimension");
        check_index(pt->index, what);
    }
}

std::unique_ptr<faiss::Index> read_index_checked(const std::string& path) {
    const std::string what = "FAISS index '" + path + "'";
    std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "rb"), fclose);
    FAISS_GMM_CHECK(f, "cannot open " + what + ": " + strerror(errno));
    FAISS_GMM_CHECK(fseeko(f.get(), 0, SEEK_END) == 0, "cannot seek in " + what);
    const int64_t size = ftello(f.get());
    FAISS_GMM_CHECK(size >= 0 && fseeko(f.get(), 0, SEEK_SET) == 0, "cannot seek in " + what);
    const impl::IndexFileCheck walk = impl::check_index_file(f.get(), size, path);
    if (!walk.complete)
        fprintf(stderr,
                "faiss-gmm: %s: the layout of '%s' is not one faiss-gmm checks; FAISS reads it "
                "unchecked\n",
                path.c_str(), walk.unchecked.c_str());
    FAISS_GMM_CHECK(fseeko(f.get(), 0, SEEK_SET) == 0, "cannot seek in " + what);
    std::unique_ptr<faiss::Index> index;
    try {
        faiss::FileIOReader reader(f.get());
        reader.name = path;
        index.reset(faiss::read_index(&reader));
    } catch (const faiss::FaissException& e) {
        throw Error("cannot read " + what + ": " + e.what());
    } catch (const std::bad_alloc&) {
        throw Error("cannot read " + what + ": out of memory (the file holds " +
                    std::to_string(size) + " bytes)");
    }
    check_index(index.get(), what);
    return index;
}

}  // namespace faiss_gmm
