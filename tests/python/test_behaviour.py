"""What a Python user expects: errors named and typed, the GIL free, Ctrl-C, the CLI's model."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import faiss_gmm
from conftest import make_mixture


def _x(rng, n=600, d=5):
    return make_mixture(rng, n, d, 3)[0]


@pytest.mark.parametrize("make, match", [
    (lambda x: faiss_gmm.GaussianMixture(0).fit(x), "n_components"),
    (lambda x: faiss_gmm.GaussianMixture(601).fit(x), "k=601"),
    (lambda x: faiss_gmm.GaussianMixture(3, covariance_type="tied").fit(x), "covariance_type"),
    (lambda x: faiss_gmm.GaussianMixture(3, init_params="random").fit(x), "init_params"),
    (lambda x: faiss_gmm.GaussianMixture(3, device="tpu").fit(x), "unknown device 'tpu'"),
    (lambda x: faiss_gmm.GaussianMixture(3, precision="fp8").fit(x), "unknown precision"),
    (lambda x: faiss_gmm.GaussianMixture(3, max_iter=0).fit(x), "max_iter"),
    (lambda x: faiss_gmm.GaussianMixture(3, tol=np.nan).fit(x), "tol"),
    (lambda x: faiss_gmm.GaussianMixture(3, reg_covar=-1).fit(x), "reg_covar"),
    (lambda x: faiss_gmm.GaussianMixture(3).fit(x[0]), "2-D"),
    (lambda x: faiss_gmm.GaussianMixture(3).fit(x.astype(complex)), "real numbers"),
    (lambda x: faiss_gmm.GaussianMixture(3).fit([["a", "b"]]), "real numbers"),
    (lambda x: faiss_gmm.GaussianMixture(3, means_init=x[:2]).fit(x), "means_init"),
    (lambda x: faiss_gmm.GaussianMixture(3).fit(x, sample_weight=np.ones(5)), "sample_weight"),
])
def test_bad_arguments_raise_value_error_naming_them(rng, make, match):
    with pytest.raises(ValueError, match=match):
        make(_x(rng))


def test_full_covariance_on_the_gpu_names_what_it_lacks(rng):
    # d = 130: wider than the GPU's full-covariance kernels; without a GPU
    # the error names the missing GPU instead.
    x = np.hstack([_x(rng)] * 26)
    with pytest.raises((ValueError, RuntimeError), match="d <= 128|GPU"):
        faiss_gmm.GaussianMixture(3, covariance_type="full", device="gpu").fit(x)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_named(rng, value):
    x = _x(rng)
    x[417, 2] = value
    with pytest.raises(ValueError, match="row 417 .*dimension 2"):
        faiss_gmm.GaussianMixture(3).fit(x)
    g = faiss_gmm.GaussianMixture(3, max_iter=3).fit(_x(rng))
    with pytest.raises(ValueError, match="expects 5"):
        g.predict(np.zeros((2, 4), np.float32))


def test_use_before_fit_is_not_fitted_error():
    with pytest.raises(faiss_gmm.NotFittedError):
        faiss_gmm.GaussianMixture(3).predict(np.zeros((2, 4), np.float32))
    with pytest.raises(AttributeError):  # hasattr(model, "means_") is False, as in sklearn
        faiss_gmm.GaussianMixture(3).means_


def test_system_failures_raise_runtime_error_and_leave_nothing(rng, tmp_path):
    g = faiss_gmm.GaussianMixture(3, max_iter=3).fit(_x(rng))
    with pytest.raises(RuntimeError, match="cannot write"):
        g.save(tmp_path / "no" / "such" / "dir" / "m.gmm")
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(RuntimeError, match="cannot write"):
            g.save(tmp_path / "m.gmm")
    finally:
        os.chmod(tmp_path, 0o700)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="cannot open"):
        faiss_gmm.GaussianMixture.load(tmp_path / "missing.gmm")
    g.save(tmp_path / "m.gmm")
    data = (tmp_path / "m.gmm").read_bytes()
    (tmp_path / "cut.gmm").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="truncated"):
        faiss_gmm.GaussianMixture.load(tmp_path / "cut.gmm")
    x = _x(rng)
    rows = np.hstack([np.full((len(x), 1), 5, np.int32).view(np.float32), x])
    (tmp_path / "cut.fvecs").write_bytes(rows.tobytes()[:-7])
    with pytest.raises(RuntimeError, match="cut.fvecs"):
        faiss_gmm.GaussianMixture(3).fit(tmp_path / "cut.fvecs")


def test_the_gil_is_released_during_fit(rng):
    x = make_mixture(rng, 60000, 32, 64)[0]
    g = faiss_gmm.GaussianMixture(128, max_iter=8, tol=0, init_params="random_from_data")
    t = threading.Thread(target=g.fit, args=(x,))
    ticks = 0
    t.start()
    while t.is_alive():  # runs only if the fit let go of the GIL
        ticks += 1
        time.sleep(0.0005)
    assert g.n_iter_ == 8
    assert ticks > 50, ticks


_INTERRUPTED_FIT = textwrap.dedent("""
    import sys, faiss_gmm
    g = faiss_gmm.GaussianMixture(256, max_iter=100000, tol=0, checkpoint=sys.argv[1],
                                  init_params="random_from_data")
    try:
        g.fit("synthetic:100000x32,k=64")
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(3)
""")


def test_ctrl_c_stops_a_fit_between_iterations(tmp_path):
    ck = tmp_path / "fit.ckpt"
    p = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_FIT, str(ck)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert ck.exists(), p.communicate()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, (out, err)
    assert "KeyboardInterrupt" in out
    # Only the whole, loadable checkpoint: no temporary file left behind.
    assert [f.name for f in tmp_path.iterdir()] == ["fit.ckpt"]
    assert faiss_gmm.GaussianMixture.load(ck).n_components == 256


@pytest.mark.skipif(not os.environ.get("FAISS_GMM_CLI"), reason="FAISS_GMM_CLI not set")
def test_same_model_as_the_cli(rng, tmp_path):
    x = make_mixture(rng, 2711, 9, 6)[0]
    rows = np.hstack([np.full((len(x), 1), 9, np.int32).view(np.float32), x])
    rows.tofile(tmp_path / "x.fvecs")
    subprocess.run([os.environ["FAISS_GMM_CLI"], "train", "--data", str(tmp_path / "x.fvecs"),
                    "-k", "6", "--model-out", str(tmp_path / "cli.gmm"), "--niter", "12",
                    "--seed", "7", "--max-points-per-component", "300", "--tol", "1e-4",
                    "--reg-covar", "1e-3", "--device", "cpu", "--quiet"], check=True)
    cli = faiss_gmm.GaussianMixture.load(tmp_path / "cli.gmm")
    ours = faiss_gmm.GaussianMixture(6, max_iter=12, random_state=7, tol=1e-4, reg_covar=1e-3,
                                     max_points_per_component=300, device="cpu").fit(x)
    np.testing.assert_allclose(ours.means_, cli.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.weights_, cli.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_, cli.covariances_, rtol=1e-5)
    assert cli.n_features_in_ == 9 and ours.n_iter_ >= 1
