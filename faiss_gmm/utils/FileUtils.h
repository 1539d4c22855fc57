/** Small file helpers: atomic writes and data validation. */
#pragma once

#include <faiss_gmm/utils/Common.h>

#include <cstdio>
#include <functional>
#include <string>

namespace faiss_gmm {

/**
 * Write a file atomically: `write` fills a temporary file in the same folder,
 * which is renamed over `path` only when everything succeeded. On any error
 * the temporary file is removed and Error names the path: nothing partial is
 * left behind.
 */
void write_file_atomic(const std::string& path, const std::function<void(FILE*)>& write);

/**
 * Throw Error naming path when a file cannot be created next to it (its
 * folder is missing or read-only): checked before long work, not after.
 * Leaves nothing behind.
 */
void check_writable(const std::string& path);

/** fwrite that throws Error naming `what` on a short write. */
void checked_fwrite(const void* p, size_t size, size_t count, FILE* f, const char* what);

/**
 * Whether every one of the count values of x is finite: a parallel,
 * branch-free scan (training samples are 10^8+ values), for the checks
 * that then look for the first bad row only when one exists.
 */
bool all_finite(int64_t count, const float* x);

/**
 * Throw Error naming the first row of x (n x d) that holds a NaN or Inf,
 * e.g. "training data: row 17 has a non-finite value (nan) at dimension 3".
 */
void check_finite_rows(idx_t n, int d, const float* x, const char* what);

}  // namespace faiss_gmm
