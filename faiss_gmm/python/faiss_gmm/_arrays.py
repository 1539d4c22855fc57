"""Input conversion shared by the package: what the C++ core accepts in place."""

import os

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """A model method was called before fit() (scikit-learn's convention)."""


def as_rows(X, name="X", allow_uint8=False, d=None):
    """X as a 2-D C-contiguous array the core reads without a copy.

    float32 (and uint8 where allow_uint8) C-contiguous arrays pass through
    unchanged; any other real numeric array (float64, int, strided views,
    lists) is converted to float32, a copy. Complex, object, string and
    boolean data, arrays that are not 2-D, and a dimension other than d are
    refused with ValueError.
    """
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous:
        if X.dtype == np.float32 or (allow_uint8 and X.dtype == np.uint8):
            return _check_dim(X, name, d)
    a = np.asarray(X)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_samples, n_features), got shape {a.shape}; "
            "reshape a single sample with X.reshape(1, -1)")
    return _check_dim(np.ascontiguousarray(a, dtype=np.float32), name, d)


def _check_dim(a, name, d):
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} has {a.shape[1]} features, the model expects {d}")
    return a


def is_path(X):
    """Whether X names a vector file (or a synthetic: source) to stream from."""
    return isinstance(X, (str, os.PathLike))
