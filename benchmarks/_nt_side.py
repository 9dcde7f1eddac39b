"""neural-tangents' side of benchmarks/ntk.py, run in its own environment (jax 0.4.23, nt 0.6.5).

Reads inputs and MLP weights from an .npz file, writes kernels and timings to another .npz file.
Not part of the project's dependencies: run by benchmarks/ntk.py as a subprocess.
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    src, dst, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    data = np.load(src)
    cfg = json.loads(str(data["config"]))
    x = jnp.asarray(data["x"], dtype=dtype)
    layers = []
    for i in range(cfg["depth"]):
        layers.append(stax.Dense(cfg["widths"][i], W_std=1.0, b_std=0.0,
                                 parameterization="standard"))
        if i < cfg["depth"] - 1:
            layers.append(stax.Relu())
    _, apply_fn, _ = stax.serial(*layers)
    params = []
    for i in range(cfg["depth"]):
        params.append((jnp.asarray(data[f"w{i}"], dtype=dtype).T,
                       jnp.asarray(data[f"b{i}"], dtype=dtype)))
        if i < cfg["depth"] - 1:
            params.append(())
    out = {}
    impls = {"jacobian_contraction": nt.NtkImplementation.JACOBIAN_CONTRACTION,
             "ntk_vector_products": nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
             "structured_derivatives": nt.NtkImplementation.STRUCTURED_DERIVATIVES}
    for name, impl in impls.items():
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                         implementation=impl))
        k = fn(x, None, params).block_until_ready()  # compile
        times = []
        for _ in range(cfg["repeats"]):
            t = time.perf_counter()
            k = fn(x, None, params).block_until_ready()
            times.append(time.perf_counter() - t)
        out[f"k_{name}"] = np.asarray(k)
        out[f"t_{name}"] = np.array(times)
    # analytic kernels of the same architecture in NTK parameterization
    a_layers = []
    for i in range(cfg["depth"]):
        a_layers.append(stax.Dense(cfg["widths"][i], W_std=cfg["a_w_std"], b_std=cfg["a_b_std"]))
        if i < cfg["depth"] - 1:
            a_layers.append(stax.Relu())
    _, _, kernel_fn = stax.serial(*a_layers)
    kern = kernel_fn(x, None, ("nngp", "ntk"))
    out["analytic_nngp"] = np.asarray(kern.nngp)
    out["analytic_ntk"] = np.asarray(kern.ntk)
    np.savez(dst, **out)


if __name__ == "__main__":
    main()
