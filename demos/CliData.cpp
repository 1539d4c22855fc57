#include "CliData.h"

#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/EStep.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/FileUtils.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

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

namespace {

bool same_file(const std::string& a, const std::string& b) {
    namespace fs = std::filesystem;
    std::error_code e1, e2;
    if (fs::exists(a, e1) && fs::exists(b, e2)) {
        std::error_code e;
        const bool eq = fs::equivalent(a, b, e);
        if (!e) return eq;
    }
    std::error_code c1, c2;
    const fs::path ca = fs::weakly_canonical(a, c1), cb = fs::weakly_canonical(b, c2);
    return !c1 && !c2 ? ca == cb : a == b;
}

bool is_file_path(const std::string& p) { return !p.empty() && p.rfind("synthetic:", 0) != 0; }

}  // namespace

void refuse_clobbering(const std::vector<NamedPath>& inputs,
                       const std::vector<NamedPath>& outputs) {
    for (size_t o = 0; o < outputs.size(); o++) {
        if (!is_file_path(outputs[o].path)) continue;
        for (const NamedPath& in : inputs)
            FAISS_GMM_CHECK_ARG(!is_file_path(in.path) || !same_file(in.path, outputs[o].path),
                                outputs[o].option + " '" + outputs[o].path +
                                    "' is the same file as " + in.option +
                                    ": refusing to overwrite an input");
        for (size_t p = 0; p < o; p++)
            FAISS_GMM_CHECK_ARG(
                !is_file_path(outputs[p].path) || !same_file(outputs[p].path, outputs[o].path),
                outputs[o].option + " and " + outputs[p].option + " name the same file '" +
                    outputs[o].path + "'");
    }
}

void print_backend(const GaussianMixtureParameters& p) {
    auto b = make_estep_backend(p);
    fprintf(stderr, "faiss-gmm: E-step backend: %s\n", b->name().c_str());
}

}  // namespace faiss_gmm
