/**
 * Reading FAISS index files that may be truncated or corrupt.
 *
 * faiss::read_index trusts the sizes a file states: a corrupt header becomes
 * a huge allocation, an out-of-bounds read, or an index whose search reads
 * past its arrays. read_index_checked first walks the file's layout
 * (impl/IndexFileCheck.h), then lets FAISS read it, then checks what it read
 * holds finite numbers, so that `eval` answers a bad file with an error that
 * names it.
 */
#pragma once

#include <faiss/Index.h>
#include <faiss_gmm/utils/Common.h>

#include <memory>
#include <string>

namespace faiss_gmm {

/**
 * faiss::read_index(path), with the file checked first.
 *
 * Throws Error naming path when the file cannot be opened, is truncated or
 * corrupt (the field at fault and its byte offset), has bytes after the
 * index's end, or holds NaN/Inf in its centroids, transforms, quantizer
 * tables or stored vectors. Indexes whose layout the check does not know
 * (HNSW quantizers, on-disk lists, ...) are read by FAISS unchecked past
 * that point, FAISS's own errors then carrying the path too.
 */
std::unique_ptr<faiss::Index> read_index_checked(const std::string& path);

/**
 * Throw Error naming `what` when index (IVF, flat, pre-transform; others
 * pass) holds a non-finite value in its coarse centroids, transform
 * matrices, PQ or SQ tables or flat-coded vectors, or when its parts
 * disagree (quantizer size and list count, dimensions along a chain).
 */
void check_index(const faiss::Index* index, const std::string& what);

}  // namespace faiss_gmm
