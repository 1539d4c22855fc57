/**
 * A walk over a FAISS index file's layout before FAISS reads it.
 *
 * FAISS 1.7.3's reader allocates every vector at the length the file states
 * (up to 2^40 elements) before reading it, sizes all inverted lists before
 * reading any, and derives PQ tables from header fields it never checks:
 * one corrupt field is a multi-gigabyte allocation or an out-of-bounds read.
 * This walk reads the headers of the formats faiss-gmm builds, checks each
 * stated size against the bytes left in the file and against the fields it
 * must agree with, and skips over the data. FAISS then reads a file whose
 * sizes are known to be sound.
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace faiss_gmm {
namespace impl {

/** What the walk covered. */
struct IndexFileCheck {
    bool complete = false;  ///< every structure was known and checked, to the file's end
    std::string unchecked;  ///< otherwise: the first structure it does not know (fourcc)
};

/**
 * Walk the index file f (at its start; `size` bytes; `path` for messages).
 * Throws Error naming path and the field at fault when a known structure is
 * inconsistent: a size beyond the file's end, a field that disagrees with
 * another (dimension, list count, code size), a bool or enum out of range,
 * bytes after the index's end. Stops at the first structure whose layout it
 * does not know (FAISS alone reads that) and says so in the result. Known:
 * IndexFlat (IxF2, IxFI), IndexIVFFlat (IwFl), IndexIVFPQ (IwPQ),
 * IndexIVFScalarQuantizer (IwSQ, IwSq), IndexPreTransform (IxPT) with
 * linear transforms (LTra, rrot, PCA: Pcam, PcAm, PCAm), array inverted
 * lists (ilar). Leaves f's position anywhere.
 */
IndexFileCheck check_index_file(FILE* f, int64_t size, const std::string& path);

}  // namespace impl
}  // namespace faiss_gmm
