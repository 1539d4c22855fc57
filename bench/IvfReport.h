/**
 * The IVF recall benchmark's report (bench/ivf_recall.cpp): from the
 * measured curves of one data set, the mean curves and their gnuplot
 * script, the markdown section (tables at equal recall and at equal cost)
 * and its summary row; and the rebuild of a report from its CSV.
 */
#pragma once

#include <faiss_gmm/IVFEvaluation.h>

#include <string>
#include <vector>

namespace faiss_gmm {
namespace ivf_bench {

/// One curve: a method (training x assignment x probing) at one seed.
struct Curve {
    std::string method;
    int seed;
    double entries_per_vector = 1, train_s = 0;
    std::vector<RecallPoint> points;
};

/**
 * Scanned entries at which a curve reaches 10@10 recall `target`: as
 * faiss_gmm::scanned_at_recall, but a curve already above target at its
 * first point gives that point (the summaries pick a level k-means spans).
 */
double scanned_to_reach(const std::vector<RecallPoint>& pts, double target);

/** printf-style formatting of one value; "n/a" for NaN. */
std::string fmt(const char* f, double v);

/**
 * Write STEM.dat, STEM.gp, STEM.md (after `header`) and STEM.summary.md
 * from the curves (several seeds per method).
 */
void write_report(const std::string& stem, const std::string& name, const std::string& header,
                  int nlist, int nseeds, const std::vector<int>& nprobes,
                  const std::vector<Curve>& curves);

/**
 * Rebuild a data set's report from STEM.csv and its header (STEM.header.md,
 * or the part of an older STEM.md before its tables): the tables change,
 * the measurements do not. @return the process exit code
 */
int report_only(const std::string& stem, const std::string& name);

}  // namespace ivf_bench
}  // namespace faiss_gmm
