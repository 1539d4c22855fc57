#include "CliData.h"

#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <cstdio>

namespace faiss_gmm {

std::vector<float> load_rows(const std::string& path, idx_t* n, int* d, idx_t max_rows) {
    std::vector<float> x;
    if (path.rfind("synthetic:", 0) == 0) {
        // Generated rows (synthetic:N[xD][,k=K]...), as train reads them.
        auto src = open_data_source(path);
        *n = max_rows > 0 ? std::min(max_rows, src->n()) : src->n();
        *d = src->d();
        x.resize(size_t(*n) * *d);
        src->read_float(0, *n, x.data());
    } else {
        x = read_vectors(path, n, d, max_rows);
    }
    check_finite_rows(*n, *d, x.data(), path.c_str());
    fprintf(stderr, "faiss-gmm: read %lld x %d from %s\n", (long long)*n, *d, path.c_str());
    return x;
}

void print_backend(const GaussianMixtureParameters& p) {
    auto b = make_estep_backend(p);
    fprintf(stderr, "faiss-gmm: E-step backend: %s\n", b->name().c_str());
}

}  // namespace faiss_gmm
