"""The matmul floor of one ensemble step: only the batched GEMMs of 5 x mlp_w128 on MNIST-1D.

Forward (4 layers), weight gradients (4) and input gradients (3) of a 5-member ensemble at batch
128, hot cache, one thread: the time below which no implementation of the ensemble step can go
with this BLAS. Compare with the fused step's per-step time (benchmarks/ensemble.py / 640 steps).

    OMP_NUM_THREADS=1 python benchmarks/gemm_floor.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import torch

    torch.set_num_threads(1)
    k, b = 5, 128
    dims = [(40, 128), (128, 128), (128, 128), (128, 10)]
    w = [torch.randn(k, i, o) for i, o in dims]
    a = [torch.randn(k, b, i) for i, _ in dims]
    g = [torch.randn(k, b, o) for _, o in dims]

    def step() -> None:
        for i in range(4):
            torch.bmm(a[i], w[i])
            torch.bmm(a[i].transpose(1, 2), g[i])
        for i in range(1, 4):
            torch.bmm(g[i], w[i].transpose(1, 2))

    for _ in range(50):
        step()
    n = 500
    t = time.perf_counter()
    for _ in range(n):
        step()
    dt = (time.perf_counter() - t) / n
    flops = sum(2 * k * b * i * o for i, o in dims) * 2 + sum(2 * k * b * i * o for i, o in dims[1:])
    print(f"GEMMs of one 5-seed step: {1e3 * dt:.3f} ms, {flops / 1e6:.0f} MFLOP, "
          f"{flops / dt / 1e9:.1f} GFLOP/s; x640 steps (20 epochs) = {640 * dt:.2f} s")


if __name__ == "__main__":
    main()
