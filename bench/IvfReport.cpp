#include "IvfReport.h"

#include <faiss_gmm/utils/FileUtils.h>
#include <faiss_gmm/utils/Utils.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>

namespace faiss_gmm {
namespace ivf_bench {

namespace {

/// 10@10 recall of a curve at `scanned` entries per query (interpolated as
/// above; NaN outside the curve's range).
double recall_at_scanned(const std::vector<RecallPoint>& pts, double scanned) {
    for (size_t i = 1; i < pts.size(); i++) {
        const auto &a = pts[i - 1], &b = pts[i];
        if (scanned < a.scanned_per_query || scanned > b.scanned_per_query) continue;
        if (b.scanned_per_query == a.scanned_per_query)
            return std::max(a.recall_10_10, b.recall_10_10);
        const double t = (std::log(scanned) - std::log(a.scanned_per_query)) /
                         (std::log(b.scanned_per_query) - std::log(a.scanned_per_query));
        return a.recall_10_10 + t * (b.recall_10_10 - a.recall_10_10);
    }
    if (!pts.empty() && std::abs(scanned - pts[0].scanned_per_query) < 1e-9)
        return pts[0].recall_10_10;
    return NAN;
}

}  // namespace

double scanned_to_reach(const std::vector<RecallPoint>& pts, double target) {
    if (!pts.empty() && pts[0].recall_10_10 >= target) return pts[0].scanned_per_query;
    return scanned_at_recall(pts, target);
}

std::string fmt(const char* f, double v) {
    if (std::isnan(v)) return "n/a";
    char buf[64];
    snprintf(buf, sizeof buf, f, v);
    return buf;
}

namespace {

/// The curves of one data set, by method (in first-seen order) and seed.
struct CurveSet {
    const std::vector<Curve>& all;
    std::vector<std::string> methods;

    explicit CurveSet(const std::vector<Curve>& curves) : all(curves) {
        for (const auto& c : all)
            if (std::find(methods.begin(), methods.end(), c.method) == methods.end())
                methods.push_back(c.method);
    }
    std::vector<const Curve*> of(const std::string& m) const {
        std::vector<const Curve*> v;
        for (const auto& c : all)
            if (c.method == m) v.push_back(&c);
        return v;
    }
    const Curve* kmeans_of(int seed) const {
        for (const auto& c : all)
            if (c.method == "k-means" && c.seed == seed) return &c;
        return nullptr;
    }
};

/// A method's entries scanned to reach a recall level over k-means's, per
/// seed: mean, min and max (NaN mean when some seed's curve misses the
/// level); `first` when a curve of some seed reaches it at nprobe 1.
struct Ratios {
    double mean = NAN, lo = 0, hi = 0;
    bool first = false;
};

Ratios cost_ratios(const CurveSet& cs, const std::string& m, double lv) {
    std::vector<double> r;
    Ratios out;
    const auto curves = cs.of(m);
    for (const auto* c : curves) {
        const Curve* k = cs.kmeans_of(c->seed);
        const double a = scanned_to_reach(c->points, lv), b = scanned_to_reach(k->points, lv);
        if (!std::isnan(a) && !std::isnan(b)) r.push_back(a / b);
        out.first |= c->points[0].recall_10_10 >= lv || k->points[0].recall_10_10 >= lv;
    }
    if (r.size() < curves.size() || r.empty()) return out;
    out.lo = *std::min_element(r.begin(), r.end());
    out.hi = *std::max_element(r.begin(), r.end());
    out.mean = std::accumulate(r.begin(), r.end(), 0.0) / r.size();
    return out;
}

/// Mean curves for gnuplot (one block per method) and the script.
void write_plot(const std::string& stem, const std::string& name, int nlist, int nseeds,
                const CurveSet& cs) {
    write_file_atomic(stem + ".dat", [&](FILE* f) {
        for (const auto& m : cs.methods) {
            const auto curves = cs.of(m);
            fprintf(f, "# %s\n", m.c_str());
            for (size_t i = 0; i < curves[0]->points.size(); i++) {
                double s = 0, r = 0;
                for (const auto* c : curves)
                    s += c->points[i].scanned_per_query, r += c->points[i].recall_10_10;
                fprintf(f, "%.2f %.4f\n", s / curves.size(), r / curves.size());
            }
            fprintf(f, "\n\n");
        }
    });
    write_file_atomic(stem + ".gp", [&](FILE* f) {
        fprintf(f,
                "set terminal svg size 900,600 dynamic font 'sans,11'\n"
                "set output '%s.svg'\n"
                "set title '%s: IVF%d,Flat, 10-recall@10 vs list entries scanned per query "
                "(mean of %d seeds)' noenhanced\n"
                "set logscale x\nset xlabel 'entries scanned per query'\n"
                "set ylabel '10-recall@10' noenhanced\nset key bottom right noenhanced\nset grid\n"
                "plot ",
                name.c_str(), name.c_str(), nlist, nseeds);
        for (size_t i = 0; i < cs.methods.size(); i++)
            fprintf(f, "%s'%s.dat' index %zu with linespoints title '%s'", i ? ", \\\n  " : "",
                    name.c_str(), i, cs.methods[i].c_str());
        fprintf(f, "\n");
    });
}

/// The verdict of a method over the levels without *.
const char* verdict(const std::string& m, int known, int wins, int losses) {
    return m == "k-means"            ? "reference"
           : known == 0              ? "n/a"
           : wins == known           ? "wins"
           : losses == known         ? "loses"
           : wins > 0 && losses == 0 ? "wins at some levels, ties at others"
           : losses > 0 && wins == 0 ? "loses at some levels, ties at others"
           : wins > 0                ? "mixed"
                                     : "ties";
}

/// The table at equal recall: entries scanned relative to k-means.
void cost_table(std::ostringstream& md, const CurveSet& cs) {
    md << "Entries scanned per query to reach a 10-recall@10, relative to k-means (mean of "
          "the per-seed ratios, [min, max]; < 1 is cheaper), and storage (list entries per "
          "vector):\n\n| method | entries/vector | @0.8 | @0.9 | @0.95 | @0.99 | verdict "
          "|\n|---|---|---|---|---|---|---|\n";
    bool any_first = false;
    for (const auto& m : cs.methods) {
        md << "| " << m << " | " << fmt("%.2f", cs.of(m)[0]->entries_per_vector);
        int wins = 0, losses = 0, known = 0;
        for (double lv : {0.8, 0.9, 0.95, 0.99}) {
            const Ratios r = cost_ratios(cs, m, lv);
            if (std::isnan(r.mean)) {
                md << " | n/a";
                continue;
            }
            md << " | " << fmt("%.2f", r.mean) << " [" << fmt("%.2f", r.lo) << ", "
               << fmt("%.2f", r.hi) << "]" << (r.first && m != "k-means" ? "*" : "");
            any_first |= r.first && m != "k-means";
            if (r.first) continue;  // the cost of nprobe 1, not of the level: no verdict
            known++;
            wins += r.hi < 0.97;
            losses += r.lo > 1.03;
        }
        md << " | " << verdict(m, known, wins, losses) << " |\n";
    }
    md << "\nA method wins at a level when every seed's ratio is below 0.97, loses when "
          "every seed's is above 1.03, and ties otherwise; the verdict counts the levels "
          "without *.";
    if (any_first)
        md << " *: a curve already reaches the level at nprobe 1, so the ratio compares the "
              "entries of nprobe 1 (an upper bound on the true cost) and gives no verdict.";
    md << "\n\n";
}

/// Recall at equal cost: at k-means's entries scanned for nprobe 1, 4, 16.
void equal_cost_table(std::ostringstream& md, const CurveSet& cs, int nseeds,
                      const std::vector<int>& nprobes) {
    md << "10-recall@10 at the entries k-means scans at a given nprobe (mean over seeds, "
          "interpolated on each curve):\n\n| method";
    std::vector<size_t> at;
    for (size_t i = 0; i < nprobes.size(); i++)
        if (nprobes[i] == 1 || nprobes[i] == 4 || nprobes[i] == 16) at.push_back(i);
    for (size_t i : at) md << " | = k-means nprobe " << nprobes[i];
    md << " |\n|---";
    for (size_t i = 0; i < at.size(); i++) md << "|---";
    md << "|\n";
    for (const auto& m : cs.methods) {
        const auto curves = cs.of(m);
        md << "| " << m;
        for (size_t i : at) {
            double s = 0;
            int cnt = 0;
            for (const auto* c : curves) {
                const double r = recall_at_scanned(
                    c->points, cs.kmeans_of(c->seed)->points[i].scanned_per_query);
                if (!std::isnan(r)) s += r, cnt++;
            }
            md << " | " << (cnt == int(curves.size()) ? fmt("%.3f", s / cnt) : "n/a");
        }
        md << " |\n";
    }
    md << "\nk-means at those points: ";
    for (size_t j = 0; j < at.size(); j++) {
        double s = 0;
        for (const auto* c : cs.of("k-means")) s += c->points[at[j]].scanned_per_query;
        md << (j ? ", " : "") << "nprobe " << nprobes[at[j]] << " scans " << fmt("%.0f", s / nseeds)
           << " entries";
    }
    md << ". n/a: outside the method's measured range.\n\n";
}

/// One summary row at the first of 10@10 = 0.9, 0.95, 0.99 that no k-means
/// seed reaches at nprobe 1: k-means's cost, then the plain (single,
/// distance) spherical GMM and the cheapest GMM method.
std::string summary_row(const std::string& name, const std::string& header, int nlist, int nseeds,
                        const CurveSet& cs) {
    double slv = 0.99;
    for (double lv : {0.9, 0.95, 0.99}) {
        bool first = false;
        for (const auto* c : cs.of("k-means")) first |= c->points[0].recall_10_10 >= lv;
        if (!first) {
            slv = lv;
            break;
        }
    }
    double km_cost = 0;
    for (const auto* c : cs.of("k-means")) km_cost += scanned_to_reach(c->points, slv) / nseeds;
    std::string best;
    Ratios best_r;
    best_r.mean = INFINITY;
    for (const auto& m : cs.methods) {
        if (m == "k-means") continue;
        const Ratios r = cost_ratios(cs, m, slv);
        if (!std::isnan(r.mean) && r.mean < best_r.mean) best_r = r, best = m;
    }
    std::ostringstream sm;
    // A set measured before a fix says so in its header: flag its row too.
    const bool stale = header.find("not rerun after the fix") != std::string::npos;
    sm << "| " << name << (stale ? " (old run: see its section)" : "") << " | " << nlist << " | "
       << fmt("%.2f", slv) << " | " << fmt("%.0f", km_cost) << " | ";
    const Ratios plain = cost_ratios(cs, "GMM-sph single distance", slv);
    sm << fmt("%.2f", plain.mean) << " [" << fmt("%.2f", plain.lo) << ", " << fmt("%.2f", plain.hi)
       << "] | ";
    if (best.empty())
        sm << "n/a | n/a | n/a |\n";
    else
        sm << best << " | " << fmt("%.2f", best_r.mean) << " [" << fmt("%.2f", best_r.lo) << ", "
           << fmt("%.2f", best_r.hi) << "] | "
           << (best_r.hi < 0.97   ? "GMM wins"
               : best_r.lo > 1.03 ? "k-means wins"
                                  : "tie")
           << " |\n";
    return sm.str();
}

}  // namespace

void write_report(const std::string& stem, const std::string& name, const std::string& header,
                  int nlist, int nseeds, const std::vector<int>& nprobes,
                  const std::vector<Curve>& curves) {
    const CurveSet cs(curves);
    write_plot(stem, name, nlist, nseeds, cs);
    std::ostringstream md;
    md << header;
    cost_table(md, cs);
    equal_cost_table(md, cs, nseeds, nprobes);
    md << "![" << name << "](ivf_results/" << name << ".svg)\n\n";
    md << "Training time per fit (s, mean): ";
    for (const auto* m : {"k-means", "GMM-sph single distance", "GMM-diag single distance"}) {
        double s = 0;
        for (const auto* c : cs.of(m)) s += c->train_s;
        md << m << " " << fmt("%.1f", s / nseeds)
           << (std::string(m) == "GMM-diag single distance" ? "" : ", ");
    }
    md << ". Every point: `" << name << ".csv`.\n\n";
    write_file_atomic(stem + ".md", [&](FILE* f) { fputs(md.str().c_str(), f); });
    const std::string row = summary_row(name, header, nlist, nseeds, cs);
    write_file_atomic(stem + ".summary.md", [&](FILE* f) { fputs(row.c_str(), f); });
}

int report_only(const std::string& stem, const std::string& name) {
    FILE* f = fopen((stem + ".csv").c_str(), "r");
    FAISS_GMM_CHECK(f, "cannot open " + stem + ".csv");
    std::vector<Curve> curves;
    char line[1024];
    FAISS_GMM_CHECK(fgets(line, sizeof line, f), stem + ".csv is empty");
    while (fgets(line, sizeof line, f)) {
        std::stringstream ss(line);
        std::string method, tok;
        std::getline(ss, method, ',');
        std::vector<double> v;
        try {
            while (std::getline(ss, tok, ',')) v.push_back(std::stod(tok));
        } catch (const std::exception&) {  // e.g. another tool's CSV (columns of names)
            fclose(f);
            throw Error(stem + ".csv: not ivf_recall's CSV (a field is not a number): " + line);
        }
        FAISS_GMM_CHECK(v.size() == 10, stem + ".csv: bad row: " + line);
        const int seed = int(v[0]);
        if (curves.empty() || curves.back().method != method || curves.back().seed != seed)
            curves.push_back(Curve{method, seed, v[8], v[9], {}});
        RecallPoint p;
        p.nprobe = int(v[1]);
        p.recall_1_1 = v[2];
        p.recall_10_10 = v[3];
        p.recall_100_100 = v[4];
        p.scanned_per_query = v[5];
        p.lists_per_query = v[6];
        p.qps = v[7];
        curves.back().points.push_back(p);
    }
    fclose(f);
    FAISS_GMM_CHECK(!curves.empty(), stem + ".csv has no rows");
    auto slurp = [](const std::string& path) {
        std::string out;
        FILE* h = fopen(path.c_str(), "r");
        if (!h) return out;
        char buf[4096];
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, h)) > 0) out.append(buf, r);
        fclose(h);
        return out;
    };
    std::string header = slurp(stem + ".header.md");
    if (header.empty()) {
        header = slurp(stem + ".md");
        const size_t cut = header.find("Entries scanned per query to reach");
        FAISS_GMM_CHECK(cut != std::string::npos, "no header in " + stem + ".{header.md,md}");
        header = header.substr(0, cut);
        write_file_atomic(stem + ".header.md", [&](FILE* h) { fputs(header.c_str(), h); });
    }
    const size_t ivf = header.find(". IVF");
    FAISS_GMM_CHECK(ivf != std::string::npos, "no IVF<nlist> in the header of " + stem);
    const int nlist = std::stoi(header.substr(ivf + 5));
    int nseeds = 0;
    for (const auto& c : curves) nseeds = std::max(nseeds, c.seed);
    std::vector<int> nprobes;
    for (const auto& p : curves[0].points) nprobes.push_back(p.nprobe);
    write_report(stem, name, header, nlist, nseeds, nprobes, curves);
    fprintf(stderr, "%s: report rebuilt from %s.csv\n", name.c_str(), stem.c_str());
    return 0;
}

}  // namespace ivf_bench
}  // namespace faiss_gmm
