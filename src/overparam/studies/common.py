"""Shared pieces of the studies: summaries over seeds, errors, the lambda_max probe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from overparam.stats import Summary, summarize

if TYPE_CHECKING:
    from overparam.config import TrainConfig
    from overparam.studies.base import StudyContext


def summary_of(results: Sequence[dict[str, Any]], key: str) -> Summary:
    return summarize([r["result"][key] for r in results])


def pct(s: Summary) -> str:
    """``mean ± std [lo, hi]`` in percent."""
    return s.fmt(100)


def errors(results: Sequence[dict[str, Any]], key: str = "test_acc") -> list[float]:
    return [1.0 - r["result"][key] for r in results]


def lambda_max(ctx: StudyContext, cfg: TrainConfig, seed: int, data: Any, samples: int = 1000,
               tol: float = 1e-4) -> dict[str, Any]:
    """Top Hessian eigenvalue of one stored run: mean cross-entropy over the first ``samples``
    training samples, evaluation mode, Lanczos to a ``tol`` relative residual; computed once,
    then read from the store (the spec is shared by every study)."""
    import torch.nn.functional as F

    from overparam.probes.hessian import top_eigenvalues
    from overparam.seeds import derive_seed

    n = min(samples, data.n_train)
    spec = {"probe": "lambda_max", "samples": n, "tol": tol, "seed": seed}

    def compute() -> dict[str, Any]:
        model = ctx.model(cfg, seed, data)
        r = top_eigenvalues(model, F.cross_entropy, data.x_train[:n], data.y_train[:n], k=1,
                            tol=tol, max_iter=300, seed=derive_seed(seed, "probe") % 2 ** 31)
        return {"lambda_max": r.eigenvalues[0], "n_hvp": r.n_hvp, "converged": r.converged}

    return ctx.probe(cfg, seed, spec, compute)
