/**
 * Shared basics: the id type, the exception type and the checking macros.
 */
#pragma once

#include <faiss/Index.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace faiss_gmm {

/// Row/id type. FAISS 1.7.3 spells it faiss::Index::idx_t, newer FAISS
/// faiss::idx_t; both are the type of Index::ntotal, so take it from there.
using idx_t = decltype(faiss::Index::ntotal);

/** The one exception type of the library: the message names the problem. */
class Error : public std::runtime_error {
   public:
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/**
 * An Error caused by the caller's arguments or data (bad sizes, NaN/Inf
 * rows, k > n, unknown option values), as opposed to a failing system
 * (files, devices, memory). The Python binding raises it as ValueError.
 */
class InvalidArgument : public Error {
   public:
    explicit InvalidArgument(const std::string& msg) : Error(msg) {}
};

}  // namespace faiss_gmm

/// Throw `type` (an Error class) with the message, prefixed, when cond does not hold.
#define FAISS_GMM_THROW_UNLESS(type, cond, msg)             \
    do {                                                    \
        if (!(cond)) {                                      \
            throw type(std::string("faiss-gmm: ") + (msg)); \
        }                                                   \
    } while (0)

/// Throw faiss_gmm::Error with a message when cond does not hold.
#define FAISS_GMM_CHECK(cond, msg) FAISS_GMM_THROW_UNLESS(::faiss_gmm::Error, cond, msg)

/// As FAISS_GMM_CHECK, throwing faiss_gmm::InvalidArgument: the caller's input is at fault.
#define FAISS_GMM_CHECK_ARG(cond, msg) \
    FAISS_GMM_THROW_UNLESS(::faiss_gmm::InvalidArgument, cond, msg)
