"""Empirical NTK of a width-512 MLP on 64 inputs: overparam vs neural-tangents, and analytic kernels.

Setting: ``mlp_w512`` (4 Dense layers, ReLU, 40 MNIST-1D inputs, 10 outputs, PyTorch's default
initialization), 64 MNIST-1D inputs, kernel traced over the logits (neural-tangents'
``trace_axes=(-1,)``), one CPU thread on both sides, float32 for timing, float64 for agreement.
neural-tangents 0.6.5 runs in its own environment (it needs jax 0.4.23 and TensorFlow); point
``--nt-python`` at that interpreter (default ``.venv-nt/bin/python``; create it with
``make bench-env``). Without it, only our side runs.

    OMP_NUM_THREADS=1 python benchmarks/ntk.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nt-python", default=str(ROOT / ".venv-nt" / "bin" / "python"))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--n", type=int, default=64)
    a = p.parse_args()

    import numpy as np
    import torch

    from overparam.data import load
    from overparam.models import build
    from overparam.probes.ntk import analytic_kernels, empirical_ntk
    from overparam.runtime import configure_process

    configure_process(threads=1)
    ds = load("mnist1d")
    x32 = ds.x_train[:a.n].contiguous()
    model32 = build("mlp_w512", (40,), 10, seed=0)
    results = {}
    for impl in ("structured", "jacobian", "ntvp"):
        reps = a.repeats if impl != "ntvp" else max(1, a.repeats // 5)
        k, times = timed(lambda impl=impl: empirical_ntk(model32, x32, implementation=impl), reps)
        results[impl] = (k, times)
    model64 = build("mlp_w512", (40,), 10, seed=0).double()
    x64 = x32.double()
    k64 = empirical_ntk(model64, x64, implementation="structured")
    k64_jac = empirical_ntk(model64, x64, implementation="jacobian")

    print(f"== empirical NTK, mlp_w512 (depth 4, {sum(p.numel() for p in model32.parameters()):,} "
          f"parameters), {a.n} MNIST-1D inputs, trace over 10 logits, 1 thread ==")
    for impl, (_, times) in results.items():
        print(f"overparam {impl:<32s} min {1e3 * min(times):8.2f} ms  "
              f"median {1e3 * statistics.median(times):8.2f} ms")
    rel = float((k64 - k64_jac).abs().max() / k64_jac.abs().max())
    print(f"overparam structured vs jacobian (float64): max rel diff {rel:.1e}")

    nt_python = Path(a.nt_python)
    if not nt_python.exists():
        print(f"neural-tangents environment not found at {nt_python}: run `make bench-env`")
        return
    widths = [layer.out_features for layer in model32.layers]
    a_w_std, a_b_std = math.sqrt(2.0), 0.1
    with tempfile.TemporaryDirectory() as tmp:
        for dtype, model, x in (("float32", model32, x32), ("float64", model64, x64)):
            src, dst = Path(tmp) / f"in_{dtype}.npz", Path(tmp) / f"out_{dtype}.npz"
            arrays = {"x": x.numpy(), "config": json.dumps(
                {"depth": 4, "widths": widths, "repeats": a.repeats, "a_w_std": a_w_std,
                 "a_b_std": a_b_std})}
            for i, layer in enumerate(model.layers):
                arrays[f"w{i}"] = layer.weight.detach().numpy()
                arrays[f"b{i}"] = layer.bias.detach().numpy()
            np.savez(src, **arrays)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu",
                   "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
            subprocess.run([str(nt_python), str(ROOT / "benchmarks" / "_nt_side.py"), str(src),
                            str(dst), dtype], check=True, env=env, capture_output=True)
            with np.load(dst) as f:
                out = {k: f[k] for k in f.files}
            if dtype == "float32":
                best_nt = min(float(out[f"t_{n}"].min()) for n in
                              ("jacobian_contraction", "ntk_vector_products",
                               "structured_derivatives"))
                for name in ("jacobian_contraction", "ntk_vector_products",
                             "structured_derivatives"):
                    t = out[f"t_{name}"]
                    print(f"neural-tangents {name:<26s} min {1e3 * t.min():8.2f} ms  "
                          f"median {1e3 * np.median(t):8.2f} ms")
                ours = min(results["structured"][1])
                print(f"ratio neural-tangents fastest / overparam structured: {best_nt / ours:.2f}x")
            else:
                for name in ("jacobian_contraction", "ntk_vector_products",
                             "structured_derivatives"):
                    k_nt = torch.as_tensor(out[f"k_{name}"])
                    diff = float((k64 - k_nt).abs().max() / k_nt.abs().max())
                    print(f"agreement (float64) overparam structured vs nt {name}: "
                          f"max rel diff {diff:.1e}")
                nngp, ntk = analytic_kernels(x64, depth=4, w_std=a_w_std, b_std=a_b_std)
                for label, ours_k, theirs in (("nngp", nngp, out["analytic_nngp"]),
                                              ("ntk", ntk, out["analytic_ntk"])):
                    diff = float((ours_k - torch.as_tensor(theirs)).abs().max()
                                 / abs(theirs).max())
                    print(f"analytic {label} (depth 4, W_std=sqrt(2), b_std=0.1) vs "
                          f"neural-tangents: max rel diff {diff:.1e}")


if __name__ == "__main__":
    main()
