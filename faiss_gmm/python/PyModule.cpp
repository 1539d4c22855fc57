/**
 * The pybind11 module faiss_gmm._core: the mixture model, its parameters
 * and the translation of our errors. The Python layer (the .py files of faiss_gmm/)
 * gives it scikit-learn's and faiss's names; this file only marshals.
 */
#include <faiss_gmm/DataSource.h>
#include <faiss_gmm/GaussianMixture.h>
#include <faiss_gmm/VectorIO.h>
#include <faiss_gmm/utils/Interrupt.h>
#include <pybind11/stl.h>

#include "PyArrays.h"

namespace faiss_gmm {
namespace python {

namespace {

/// Ctrl-C reaches a fit between EM iterations: Python's signal handler only
/// sets a flag, which PyErr_CheckSignals reads (under the GIL).
bool python_interrupted() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();
        return true;
    }
    return false;
}

void translate_errors(std::exception_ptr p) {
    try {
        if (p) std::rethrow_exception(p);
    } catch (const Interrupted&) {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (const InvalidArgument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const Error& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
}

/// A string property of Parameters backed by one of our enums.
template <class E, E GaussianMixtureParameters::*field>
void enum_property(py::class_<GaussianMixtureParameters>& c, const char* name,
                   E (*parse)(const std::string&)) {
    c.def_property(
        name, [](const GaussianMixtureParameters& p) { return std::string(to_string(p.*field)); },
        [parse](GaussianMixtureParameters& p, const std::string& s) { p.*field = parse(s); });
}

void bind_parameters(py::module_& m) {
    py::class_<GaussianMixtureParameters> c(
        m, "Parameters", "faiss_gmm::GaussianMixtureParameters (see GaussianMixture.h)");
    c.def(py::init<>())
        .def_readwrite("niter", &GaussianMixtureParameters::niter)
        .def_readwrite("tol", &GaussianMixtureParameters::tol)
        .def_readwrite("reg_covar", &GaussianMixtureParameters::reg_covar)
        .def_readwrite("kmeans_niter", &GaussianMixtureParameters::kmeans_niter)
        .def_readwrite("seed", &GaussianMixtureParameters::seed)
        .def_readwrite("max_points_per_component",
                       &GaussianMixtureParameters::max_points_per_component)
        .def_readwrite("min_points_per_component",
                       &GaussianMixtureParameters::min_points_per_component)
        .def_readwrite("normalize_means", &GaussianMixtureParameters::normalize_means)
        .def_readwrite("gpu_device", &GaussianMixtureParameters::gpu_device)
        .def_readwrite("gpu_devices", &GaussianMixtureParameters::gpu_devices)
        .def_readwrite("gpu_cache_bytes", &GaussianMixtureParameters::gpu_cache_bytes)
        .def_readwrite("verbose", &GaussianMixtureParameters::verbose)
        .def_readwrite("checkpoint_path", &GaussianMixtureParameters::checkpoint_path)
        .def_readwrite("resume", &GaussianMixtureParameters::resume);
    enum_property<CovarianceType, &GaussianMixtureParameters::covariance_type>(
        c, "covariance_type", covariance_type_from_string);
    enum_property<InitMethod, &GaussianMixtureParameters::init>(c, "init", init_method_from_string);
    enum_property<Device, &GaussianMixtureParameters::device>(c, "device", device_from_string);
    enum_property<Precision, &GaussianMixtureParameters::precision>(c, "precision",
                                                                    precision_from_string);
}

/// fit() on rows in memory: float32 in place; uint8 through an ArraySource,
/// which converts only the rows EM reads (the sample, or blocks when streaming).
void fit_rows(GaussianMixture& g, const py::array& x, const py::object& w) {
    const Rows r = rows_of(x, "X", g.d, true);
    py::array keep;
    const float* wp = weights_of(w, r.n, &keep);
    FAISS_GMM_CHECK_ARG(!(wp && r.is_uint8), "sample_weight needs float32 rows");
    py::gil_scoped_release nogil;
    if (r.is_uint8) {
        ArraySource src(r.n, r.d, ElementType::UInt8, r.data);
        g.fit(src);
    } else {
        g.fit(r.n, r.floats(), wp);
    }
}

void fit_from_means(GaussianMixture& g, const py::array& x, const py::array& means,
                    const py::object& w) {
    const Rows r = rows_of(x, "X", g.d);
    const Rows mu = rows_of(means, "means_init", g.d);
    FAISS_GMM_CHECK_ARG(mu.n == g.k, "means_init must have n_components rows");
    py::array keep;
    const float* wp = weights_of(w, r.n, &keep);
    py::gil_scoped_release nogil;
    g.fit_from_means(r.n, r.floats(), mu.floats(), wp);
}

/// fit() on a vector file or a synthetic: spec, streamed when
/// max_points_per_component <= 0.
void fit_source(GaussianMixture& g, const std::string& spec) {
    py::gil_scoped_release nogil;
    g.fit(*open_data_source(spec));  // fit names a dimension mismatch
}

py::array_t<float> score_samples(const GaussianMixture& g, const py::array& x) {
    const Rows r = rows_of(x, "X", g.d);
    py::array_t<float> out(r.n);
    float* o = out.mutable_data();
    py::gil_scoped_release nogil;
    g.score_samples(r.n, r.floats(), o);
    return out;
}

py::array_t<int64_t> predict(const GaussianMixture& g, const py::array& x) {
    const Rows r = rows_of(x, "X", g.d);
    std::vector<idx_t> labels(r.n);
    {
        py::gil_scoped_release nogil;
        g.predict(r.n, r.floats(), labels.data());
    }
    return to_numpy(std::vector<int64_t>(labels.begin(), labels.end()), {r.n});
}

py::tuple top_components(const GaussianMixture& g, const py::array& x, int t) {
    const Rows r = rows_of(x, "X", g.d);
    std::vector<idx_t> labels(size_t(r.n) * std::max(t, 0));
    std::vector<float> resp(labels.size());
    {
        py::gil_scoped_release nogil;
        g.top_components(r.n, r.floats(), t, labels.data(), resp.data());
    }
    return py::make_tuple(to_numpy(std::vector<int64_t>(labels.begin(), labels.end()), {r.n, t}),
                          to_numpy(resp, {r.n, t}));
}

void bind_model(py::module_& m) {
    py::class_<GaussianMixture>(m, "Model", "faiss_gmm::GaussianMixture (see GaussianMixture.h)")
        .def(py::init<int, int, const GaussianMixtureParameters&>(), py::arg("d"), py::arg("k"),
             py::arg("params"))
        .def("fit", &fit_rows, py::arg("x"), py::arg("sample_weight") = py::none())
        .def("fit_from_means", &fit_from_means, py::arg("x"), py::arg("means"),
             py::arg("sample_weight") = py::none())
        .def("fit_source", &fit_source, py::arg("spec"))
        .def("score_samples", &score_samples, py::arg("x"))
        .def("predict", &predict, py::arg("x"))
        .def("top_components", &top_components, py::arg("x"), py::arg("t"))
        .def("bic",
             [](const GaussianMixture& g, const py::array& x) {
                 const Rows r = rows_of(x, "X", g.d);
                 py::gil_scoped_release nogil;
                 return g.bic(r.n, r.floats());
             })
        .def("n_parameters", &GaussianMixture::n_parameters)
        .def("check_model", &GaussianMixture::check_model)
        .def("save",
             [](const GaussianMixture& g, const std::string& path) {
                 py::gil_scoped_release nogil;
                 g.save(path);
             })
        .def_static("load",
                    [](const std::string& path) {
                        py::gil_scoped_release nogil;
                        return GaussianMixture::load(path);
                    })
        .def_readonly("d", &GaussianMixture::d)
        .def_readonly("k", &GaussianMixture::k)
        .def_readonly("params", &GaussianMixture::params)
        .def_readonly("converged", &GaussianMixture::converged)
        .def_property_readonly("covariance_type",
                               [](const GaussianMixture& g) {
                                   return std::string(to_string(g.params.covariance_type));
                               })
        .def_property_readonly("means",
                               [](const GaussianMixture& g) {
                                   return to_numpy(g.means, {g.k, g.d});
                               })
        .def_property_readonly("weights",
                               [](const GaussianMixture& g) { return to_numpy(g.weights, {g.k}); })
        .def_property_readonly("variances",
                               [](const GaussianMixture& g) {
                                   if (g.n_variances() == size_t(g.k))
                                       return to_numpy(g.variances, {g.k});
                                   if (g.params.covariance_type == CovarianceType::Full)
                                       return to_numpy(g.variances, {g.k, g.d, g.d});
                                   return to_numpy(g.variances, {g.k, g.d});
                               })
        .def_property_readonly("log_likelihoods", [](const GaussianMixture& g) {
            std::vector<double> ll;
            for (const GmmIterationStats& s : g.iteration_stats) ll.push_back(s.log_likelihood);
            return ll;
        });
}

/// A vector file (fvecs, bvecs, fbin, u8bin, npy) as n x d float32.
py::array_t<float> read_file(const std::string& path, int64_t max_rows) {
    idx_t n = 0;
    int d = 0;
    std::vector<float> x;
    {
        py::gil_scoped_release nogil;
        x = read_vectors(path, &n, &d, idx_t(max_rows));
    }
    return to_numpy(x, {n, d});
}

}  // namespace

/** Everything the module holds. */
void bind_core(py::module_& m) {
    m.doc() = "faiss-gmm's C++ core (use the faiss_gmm package, not this module)";
    py::register_exception_translator(&translate_errors);
    set_interrupt_callback(&python_interrupted);
    bind_parameters(m);
    bind_model(m);
    bind_ivf(m);
    m.def("read_vectors", &read_file, py::arg("path"), py::arg("max_rows") = 0);
    m.def(
        "source_dim", [](const std::string& spec) { return open_data_source(spec)->d(); },
        py::arg("spec"),
        "The dimension of a vector file or a synthetic: spec (the file is validated).");
}

}  // namespace python
}  // namespace faiss_gmm

PYBIND11_MODULE(_core, m) { faiss_gmm::python::bind_core(m); }
