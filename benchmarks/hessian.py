"""Top Hessian eigenvalue of a trained mlp_w128 on 1,000 MNIST-1D samples: overparam vs PyHessian.

The model: ``mlp_w128`` trained 20 epochs on MNIST-1D (the blueprint's defaults, seed 0). The loss:
mean cross-entropy over the first 1,000 training samples, evaluation mode, float32, one thread.
Both sides at PyHessian's default tolerance 1e-3 (its power iteration stops when the eigenvalue
changes by less than 1e-3 relative; our Lanczos when the Ritz residual is below 1e-3 relative),
5 repeats with different random starts, interleaved. The reference: our Lanczos in float64 to a
1e-10 residual. PyHessian (``pip install pyhessian``, the ``bench`` extra) runs on a deep copy
because it changes the model's mode and ``.grad``.

    OMP_NUM_THREADS=1 python benchmarks/hessian.py
"""

from __future__ import annotations

import copy
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import torch
    import torch.nn.functional as F

    from overparam.config import TrainConfig
    from overparam.data import load_config
    from overparam.probes.hessian import top_eigenvalues
    from overparam.runtime import configure_process
    from overparam.train import train

    configure_process(threads=1)
    cfg = TrainConfig()
    data = load_config(cfg.data)
    trained = train(cfg, [0], data=data, keep_state=True)[0]
    from overparam.train.loop import build_members

    model = build_members(cfg, [0], data)[0]
    model.load_state_dict(trained.state)
    model.eval()
    x, y = data.x_train[:1000], data.y_train[:1000]

    ref = top_eigenvalues(copy.deepcopy(model).double(), F.cross_entropy, x.double(), y, k=1,
                          tol=1e-10, max_iter=300)
    lam = ref.eigenvalues[0]
    print(f"== top Hessian eigenvalue, mlp_w128 trained 20 epochs (test acc {trained.test_acc:.3f}),"
          f" 1,000 MNIST-1D samples ==")
    print(f"reference (float64 Lanczos, residual 1e-10): {lam:.8f} in {ref.n_hvp} HVPs")

    try:
        import sys

        from pyhessian import hessian as pyh

        pyh_module = sys.modules["pyhessian.hessian"]
    except ImportError:
        pyh = None
        print("PyHessian not installed (pip install pyhessian): only our side runs")

    def run_pyhessian(rep, tol, max_iter):
        counter = {"n": 0}
        original = pyh_module.hessian_vector_product

        def counting(*args):
            counter["n"] += 1
            return original(*args)

        pyh_module.hessian_vector_product = counting
        try:
            torch.manual_seed(rep)
            victim = copy.deepcopy(model)
            t = time.perf_counter()
            h = pyh(victim, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
            top, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
            elapsed = time.perf_counter() - t
        finally:
            pyh_module.hessian_vector_product = original
        return elapsed, abs(top[0] - lam) / lam, counter["n"]

    ours_t, ours_err, ours_hvp, pyh_t, pyh_err, pyh_hvp = [], [], [], [], [], []
    tight_t, tight_err, tight_hvp = [], [], []
    for rep in range(5):
        t = time.perf_counter()
        res = top_eigenvalues(model, F.cross_entropy, x, y, k=1, tol=1e-3, seed=rep)
        ours_t.append(time.perf_counter() - t)
        ours_err.append(abs(res.eigenvalues[0] - lam) / lam)
        ours_hvp.append(res.n_hvp)
        if pyh is None:
            continue
        for tol, max_iter, (ts, es, hs) in ((1e-3, 100, (pyh_t, pyh_err, pyh_hvp)),
                                            (1e-6, 1000, (tight_t, tight_err, tight_hvp))):
            elapsed, err, n = run_pyhessian(rep, tol, max_iter)
            ts.append(elapsed)
            es.append(err)
            hs.append(n)

    def line(name, ts, errs, hvps):
        print(f"{name:<28s} time min {1e3 * min(ts):7.1f} ms median {1e3 * statistics.median(ts):7.1f}"
              f" ms | HVPs {min(hvps)}-{max(hvps)} | rel error max {max(errs):.1e} "
              f"median {statistics.median(errs):.1e}")

    line("overparam Lanczos tol 1e-3", ours_t, ours_err, ours_hvp)
    if pyh_t:
        line("PyHessian power tol 1e-3", pyh_t, pyh_err, pyh_hvp)
        line("PyHessian power tol 1e-6", tight_t, tight_err, tight_hvp)
        print(f"speed-up at equal tolerance 1e-3 (median time): "
              f"{statistics.median(pyh_t) / statistics.median(ours_t):.2f}x; accuracy: ours max "
              f"{max(ours_err):.1e} vs PyHessian max {max(pyh_err):.1e}")
        print(f"speed-up against PyHessian tightened to tol 1e-6 (median time): "
              f"{statistics.median(tight_t) / statistics.median(ours_t):.2f}x")


if __name__ == "__main__":
    main()
