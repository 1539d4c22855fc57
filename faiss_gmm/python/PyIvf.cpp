/**
 * The IVF half of faiss_gmm._core. The module links its own copy of FAISS
 * and python3-faiss carries another, so no C++ index crosses between them:
 * trained indexes leave as write_index bytes (faiss.deserialize_index reads
 * them), and work on a Python faiss index takes its arrays (centroids,
 * vectors) and returns arrays (lists to add to, lists to probe) that the
 * Python layer feeds to that index's own add_core / search_preassigned.
 */
#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/IVFMixture.h>
#include <faiss_gmm/IndexIVFTraining.h>
#include <faiss_gmm/KMeans.h>
#include <pybind11/stl.h>

#include <memory>

#include "PyArrays.h"

namespace faiss_gmm {
namespace python {

namespace {

faiss::MetricType metric_of(const std::string& metric) {
    if (metric == "l2") return faiss::METRIC_L2;
    if (metric == "ip") return faiss::METRIC_INNER_PRODUCT;
    throw InvalidArgument("faiss-gmm: unknown metric '" + metric + "' (l2 or ip)");
}

/// faiss::index_factory, then the GMM (or k-means) trainer; the trained,
/// empty index as write_index bytes and the fitted mixture (k-means: none).
py::tuple train_index(int d, const std::string& description, const std::string& metric,
                      const py::array& x, const GaussianMixtureParameters& p,
                      const std::string& trainer) {
    const Rows r = rows_of(x, "x", d);
    FAISS_GMM_CHECK_ARG(trainer == "gmm" || trainer == "kmeans",
                        "unknown trainer '" + trainer + "' (gmm or kmeans)");
    const faiss::MetricType mt = metric_of(metric);
    faiss::VectorIOWriter bytes;
    GaussianMixture model;
    {
        py::gil_scoped_release nogil;
        std::unique_ptr<faiss::Index> index;
        try {
            index.reset(faiss::index_factory(d, description.c_str(), mt));
        } catch (const std::exception& e) {
            throw InvalidArgument("faiss-gmm: bad factory string '" + description +
                                  "': " + e.what());
        }
        faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
        FAISS_GMM_CHECK_ARG(ivf, "'" + description + "' holds no IVF: nothing to train");
        // The IVF trains its quantizer by its own cp (FAISS's: 10
        // iterations, 256 rows per list): niter and the sample are ours.
        ivf->cp.niter = p.niter;
        ivf->cp.max_points_per_centroid =
            p.max_points_per_component > 0 ? p.max_points_per_component : 1 << 30;
        index->verbose = p.verbose;
        if (trainer == "gmm")
            train_index_gmm(index.get(), r.n, r.floats(), p, &model);
        else
            train_index_kmeans(index.get(), r.n, r.floats(), p);
        faiss::write_index(index.get(), &bytes);
    }
    py::object m = trainer == "gmm" ? py::cast(std::move(model)) : py::none();
    return py::make_tuple(
        py::bytes(reinterpret_cast<const char*>(bytes.data.data()), bytes.data.size()), m);
}

/// FAISS's k-means (on the GPU when p.device allows one): centroids and
/// the objective of each iteration of the best run.
py::tuple kmeans(const py::array& x, int k, const faiss::ClusteringParameters& cp,
                 const GaussianMixtureParameters& p, const py::object& init) {
    const Rows r = rows_of(x, "x");
    KMeansClustering km(r.d, k, cp);
    km.backend = p;
    if (!init.is_none()) {
        const Rows c = rows_of(py::cast<py::array>(init), "init_centroids", r.d);
        FAISS_GMM_CHECK_ARG(c.n == k, "init_centroids must have k rows");
        km.centroids.assign(c.floats(), c.floats() + size_t(k) * r.d);
    }
    {
        py::gil_scoped_release nogil;
        faiss::IndexFlatL2 scratch(r.d);
        km.train(r.n, r.floats(), scratch);
    }
    std::vector<double> obj;
    for (const faiss::ClusteringIterationStats& s : km.iteration_stats) obj.push_back(s.obj);
    return py::make_tuple(to_numpy(km.centroids, {k, r.d}), obj);
}

/// An empty, trained IndexIVFFlat over the given centroids: the stand-in for
/// a Python index's IVF when assigning (its quantizer: exact L2 or IP).
struct IvfStandIn {
    std::unique_ptr<faiss::IndexFlat> quantizer;
    std::unique_ptr<faiss::IndexIVFFlat> ivf;
    IvfStandIn(const Rows& c, bool ip) {
        const faiss::MetricType mt = ip ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        quantizer = std::make_unique<faiss::IndexFlat>(c.d, mt);
        quantizer->add(c.n, c.floats());
        ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), c.d, size_t(c.n), mt);
        ivf->is_trained = true;
    }
};

SpillRule spill_rule_of(const std::string& rule) {
    if (rule == "responsibility") return SpillRule::Responsibility;
    if (rule == "tempered") return SpillRule::Tempered;
    if (rule == "soar") return SpillRule::Soar;
    throw InvalidArgument("faiss-gmm: unknown spill rule '" + rule +
                          "' (responsibility, tempered or soar)");
}

/// assign_multi on vectors already in the IVF's space.
py::array_t<int64_t> assign_lists(const py::array& centroids, bool ip, const py::object& model,
                                  const py::array& x, const MultiAssignParameters& p) {
    const Rows c = rows_of(centroids, "centroids");
    const Rows r = rows_of(x, "x", c.d);
    GaussianMixture none;
    const GaussianMixture& g = model.is_none() ? none : model.cast<const GaussianMixture&>();
    FAISS_GMM_CHECK_ARG(p.max_lists >= 1, "max_lists must be >= 1");
    std::vector<idx_t> lists(size_t(r.n) * p.max_lists);
    {
        py::gil_scoped_release nogil;
        IvfStandIn s(c, ip);
        assign_multi(s.ivf.get(), g, r.n, r.floats(), p, lists.data());
    }
    return to_numpy(std::vector<int64_t>(lists.begin(), lists.end()), {r.n, p.max_lists});
}

py::tuple probe(const GaussianMixture& g, const py::array& centroids, bool ip, const py::array& xq,
                int nprobe, double mass) {
    const Rows c = rows_of(centroids, "centroids", g.d);
    const Rows q = rows_of(xq, "queries", g.d);
    FAISS_GMM_CHECK_ARG(c.n == g.k, "the index's nlist differs from the model's k");
    FAISS_GMM_CHECK_ARG(nprobe >= 1, "nprobe must be >= 1");
    nprobe = std::min(nprobe, g.k);
    std::vector<idx_t> assign(size_t(q.n) * nprobe);
    std::vector<float> cdis(assign.size());
    {
        py::gil_scoped_release nogil;
        probe_by_posterior(g, c.floats(), ip, q.n, q.floats(), nprobe, mass, assign.data(),
                           cdis.data());
    }
    return py::make_tuple(
        to_numpy(std::vector<int64_t>(assign.begin(), assign.end()), {q.n, nprobe}),
        to_numpy(cdis, {q.n, nprobe}));
}

py::tuple distinct(const py::array_t<float, py::array::c_style>& d,
                   const py::array_t<int64_t, py::array::c_style>& i, int64_t k, bool ip) {
    FAISS_GMM_CHECK_ARG(
        d.ndim() == 2 && i.ndim() == 2 && d.shape(0) == i.shape(0) && d.shape(1) == i.shape(1),
        "keep_distinct: distances and labels must be n x kk alike");
    FAISS_GMM_CHECK_ARG(k >= 1, "k must be >= 1");
    const idx_t nq = d.shape(0), kk = d.shape(1);
    py::array_t<float> dout({nq, idx_t(k)});
    py::array_t<int64_t> iout({nq, idx_t(k)});
    static_assert(sizeof(idx_t) == sizeof(int64_t), "ids are 64-bit");
    const float* dp = d.data();
    const idx_t* ip_ = reinterpret_cast<const idx_t*>(i.data());
    float* dq = dout.mutable_data();
    idx_t* iq = reinterpret_cast<idx_t*>(iout.mutable_data());
    {
        py::gil_scoped_release nogil;
        keep_distinct(nq, kk, dp, ip_, k, ip, dq, iq);
    }
    return py::make_tuple(dout, iout);
}

void bind_multi_assign_parameters(py::module_& m) {
    py::class_<MultiAssignParameters>(m, "MultiAssignParameters")
        .def(py::init<>())
        .def_readwrite("tau", &MultiAssignParameters::tau)
        .def_readwrite("max_lists", &MultiAssignParameters::max_lists)
        .def_readwrite("temperature", &MultiAssignParameters::temperature)
        .def_readwrite("lambda_", &MultiAssignParameters::lambda)
        .def_property(
            "rule", [](const MultiAssignParameters&) { return py::none(); },
            [](MultiAssignParameters& p, const std::string& s) { p.rule = spill_rule_of(s); })
        .def_property(
            "primary",
            [](const MultiAssignParameters& p) {
                return std::string(p.primary == PrimaryList::Nearest ? "nearest" : "most_probable");
            },
            [](MultiAssignParameters& p, const std::string& s) {
                FAISS_GMM_CHECK_ARG(s == "nearest" || s == "most_probable",
                                    "unknown primary '" + s + "' (nearest or most_probable)");
                p.primary = s == "nearest" ? PrimaryList::Nearest : PrimaryList::MostProbable;
            });
}

void bind_clustering_parameters(py::module_& m) {
    py::class_<faiss::ClusteringParameters>(m, "ClusteringParameters")
        .def(py::init<>())
        .def_readwrite("niter", &faiss::ClusteringParameters::niter)
        .def_readwrite("nredo", &faiss::ClusteringParameters::nredo)
        .def_readwrite("seed", &faiss::ClusteringParameters::seed)
        .def_readwrite("spherical", &faiss::ClusteringParameters::spherical)
        .def_readwrite("verbose", &faiss::ClusteringParameters::verbose)
        .def_readwrite("max_points_per_centroid",
                       &faiss::ClusteringParameters::max_points_per_centroid)
        .def_readwrite("min_points_per_centroid",
                       &faiss::ClusteringParameters::min_points_per_centroid);
}

}  // namespace

void bind_ivf(py::module_& m) {
    bind_multi_assign_parameters(m);
    bind_clustering_parameters(m);
    m.def("train_index", &train_index, py::arg("d"), py::arg("description"), py::arg("metric"),
          py::arg("x"), py::arg("params"), py::arg("trainer"));
    m.def("kmeans", &kmeans, py::arg("x"), py::arg("k"), py::arg("cp"), py::arg("params"),
          py::arg("init") = py::none());
    m.def("assign_lists", &assign_lists, py::arg("centroids"), py::arg("ip"), py::arg("model"),
          py::arg("x"), py::arg("params"));
    m.def("probe_by_posterior", &probe, py::arg("model"), py::arg("centroids"), py::arg("ip"),
          py::arg("xq"), py::arg("nprobe"), py::arg("mass"));
    m.def("keep_distinct", &distinct, py::arg("distances"), py::arg("labels"), py::arg("k"),
          py::arg("ip"));
}

}  // namespace python
}  // namespace faiss_gmm
