/**
 * What the binding's functions share: numpy row arrays checked without a
 * copy, and results handed back as new numpy arrays.
 */
#pragma once

#include <faiss_gmm/utils/Common.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace faiss_gmm {
namespace python {

namespace py = pybind11;

/** A 2-D C-contiguous float32 or uint8 array seen in place (never copied). */
struct Rows {
    py::array array;             ///< keeps the buffer alive while the GIL is released
    idx_t n = 0;                 ///< rows
    int d = 0;                   ///< columns
    bool is_uint8 = false;       ///< uint8 rows, else float32
    const void* data = nullptr;  ///< the first element
    const float* floats() const { return static_cast<const float*>(data); }
};

/**
 * Check that a is n x d (d == want_d when want_d > 0), C-contiguous and
 * float32 (or uint8 when allow_uint8); throws InvalidArgument naming `what`.
 * The Python layer converts everything else before calling.
 */
inline Rows rows_of(const py::array& a, const char* what, int want_d = 0,
                    bool allow_uint8 = false) {
    Rows r;
    r.array = a;
    const std::string w(what);
    FAISS_GMM_CHECK_ARG(a.ndim() == 2, w + " must be a 2-D array (n x d), got " +
                                           std::to_string(a.ndim()) + " dimensions");
    const bool f32 = py::isinstance<py::array_t<float>>(a);
    r.is_uint8 = py::isinstance<py::array_t<uint8_t>>(a);
    FAISS_GMM_CHECK_ARG(f32 || (allow_uint8 && r.is_uint8),
                        w + (allow_uint8 ? " must be float32 or uint8" : " must be float32"));
    FAISS_GMM_CHECK_ARG(a.flags() & py::array::c_style, w + " must be C-contiguous");
    r.n = idx_t(a.shape(0));
    r.d = int(a.shape(1));
    FAISS_GMM_CHECK_ARG(want_d <= 0 || r.d == want_d, w + " has dimension " + std::to_string(r.d) +
                                                          ", expected " + std::to_string(want_d));
    r.data = a.data();
    return r;
}

/** A 1-D float32 array of exactly n values (sample weights), C-contiguous. */
inline const float* weights_of(const py::object& w, idx_t n, py::array* keep) {
    if (w.is_none()) return nullptr;
    py::array a = py::cast<py::array>(w);
    FAISS_GMM_CHECK_ARG(a.ndim() == 1 && idx_t(a.shape(0)) == n,
                        "sample_weight must hold one value per row (" + std::to_string(n) + ")");
    FAISS_GMM_CHECK_ARG(py::isinstance<py::array_t<float>>(a) && (a.flags() & py::array::c_style),
                        "sample_weight must be C-contiguous float32");
    *keep = a;
    return static_cast<const float*>(a.data());
}

/** A new numpy array of the given shape holding v's values. */
template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
    py::array_t<T> a(shape);
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

/** Register the IVF half of the module (PyIvf.cpp). */
void bind_ivf(py::module_& m);

}  // namespace python
}  // namespace faiss_gmm
