/**
 * Small helpers the library, the command line and the benchmarks share (as
 * faiss/utils/utils.h does for FAISS).
 */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace faiss_gmm {

/** Scale each of the n rows of x (n x d) to unit L2 norm; zero rows stay zero. */
inline void l2_normalize_rows(int d, idx_t n, float* x) {
    for (idx_t i = 0; i < n; i++) {
        float* r = x + size_t(i) * d;
        double s = 0;
        for (int j = 0; j < d; j++) s += double(r[j]) * r[j];
        if (s > 0)
            for (int j = 0; j < d; j++) r[j] = float(r[j] / std::sqrt(s));
    }
}

/** Seconds on a monotonic clock (differences only). */
inline double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/** "1,4,16" -> {1, 4, 16}; throws Error naming a bad item or an empty list. */
inline std::vector<int> parse_int_list(const std::string& s) {
    std::vector<int> v;
    std::stringstream ss(s);
    std::string tok;
    while (std::getline(ss, tok, ',')) {
        if (tok.empty()) continue;
        try {
            v.push_back(std::stoi(tok));
        } catch (...) {
            throw Error("faiss-gmm: bad integer '" + tok + "' in list '" + s + "'");
        }
    }
    FAISS_GMM_CHECK(!v.empty(), "empty list '" + s + "'");
    return v;
}

}  // namespace faiss_gmm
