/**
 * Helpers the command-line tool's subcommands share: reading vectors with
 * the tool's checks and messages, and naming the E-step backend.
 */
#pragma once

#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/utils/Common.h>

#include <string>
#include <vector>

namespace faiss_gmm {

/**
 * The rows of a vector file (or `synthetic:N[xD]...` generated rows), at most
 * max_rows (0: all), as floats; throws Error naming the file on a non-finite
 * value, and logs what was read to stderr.
 */
std::vector<float> load_rows(const std::string& path, idx_t* n, int* d, idx_t max_rows = 0);

/// A command-line path and the option that named it ("--data").
struct NamedPath {
    std::string option, path;
};

/**
 * Throws InvalidArgument when an output names the same file as an input
 * or as another output (the same file by identity when it exists, else by
 * its canonical path): writing it would destroy what is being read, or
 * one result would overwrite the other. Empty paths and generated data
 * (`synthetic:`) are skipped.
 */
void refuse_clobbering(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs);

/** Log which E-step backend the parameters select (cpu, cuda ...). */
void print_backend(const GaussianMixtureParameters& p);

}  // namespace faiss_gmm
