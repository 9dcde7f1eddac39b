"""Sparse over-parameterization (SOP): per-sample label-noise variables trained beside the network.

Liu, Zhu, Qu & You 2022, "Robust Training under Label Noise by Over-parameterization", ICML,
arXiv:2202.14026 (Algorithm 1; official code github.com/shengliu66/SOP, ``model/loss.py``).
Each training sample ``i`` gets its own ``u_i in R`` and ``v_i in R^C``, initialized near zero
(``N(0, std^2)``, ``std = 1e-8`` as in the authors' code). For a batch with one-hot (possibly
noisy) labels ``y_i`` and logits ``f_i``, with ``eps = 1e-4``:

    s_u,i = clamp(u_i^2 y_i, 0, 1),      s_v,i = clamp(v_i^2 (1 - y_i), 0, 1)
    p_i   = clamp(softmax(f_i) + s_u,i - sg(s_v,i), min=eps)
    p_i   = clamp(p_i / max(||p_i||_1, eps), eps, 1)
    L     = (1/B) sum_i [ -<y_i, log p_i>  +  ||onehot(argmax sg(f_i)) + s_u,i - s_v,i - y_i||^2 ]

(``sg``: stop-gradient; the squared norm sums over classes, as ``F.mse_loss(...,
reduction="sum") / B`` in the authors' code.) So the network's parameters get the gradient of the
cross-entropy term only, ``u`` that of both terms, ``v`` that of the squared-error term only.
``s_i = s_u,i - s_v,i`` models the label noise: the over-parameterized pair ``u o u - v o v``
trained by gradient descent from a tiny initialization is implicitly l1-regularized, so ``s``
stays sparse and grows only on samples the network cannot fit, the mislabelled ones (the
paper's linear analysis: :mod:`overparam.theory.noisy_regression`).

``u`` and ``v`` are trained by their own plain SGD (no momentum, no weight decay, a constant
rate, as in the authors' code) with rates ``lr_u`` and ``lr_v``; their state lives in the
intervention, one copy per ensemble member (``[K, N, 1]`` and ``[K, N, C]``, indexed by the
batch's sample indices ``step.idx``), never among the network's stacked parameters. This is the
plain SOP of the paper (not SOP+: no consistency or class-balance terms, no augmentation).

The intervention *replaces* each member's batch loss by ``L`` (``Active.replaces_loss``) and needs
autograd. At the end it keeps, per member, the artifact ``sop`` = ``{"u", "v", "s_norm"}`` with
``s_norm_i = ||s_i||_2`` over all training samples (the score of a noisy label), and reports
``sop_fit_acc``: the training accuracy of the augmented prediction ``argmax(softmax(f_i) + s_i)``
against the (noisy) training labels -- SOP's model ``f + s`` of the labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from overparam.config import Intervention
from overparam.errors import ConfigError
from overparam.seeds import derive_seed
from overparam.train.interventions import Active

if TYPE_CHECKING:
    from overparam.train.interventions import Run, Step

EPS = 1e-4  # the authors' clamp and normalization floor


def _positive(name: str, value: Any) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise ConfigError(name, value, "a finite number > 0")


@dataclass(frozen=True)
class SparseOverparam(Intervention):
    """SOP's per-sample noise variables. Defaults: ``lr_u = lr_v = 10``, the authors' CIFAR-10
    (symmetric noise) rates as we read the paper's Table A.1 -- not checked against the PDF
    here; the released config, for CIFAR-100, has ``lr_u = 1, lr_v = 10`` -- and init std
    ``1e-8`` (the released code's)."""

    kind: ClassVar[str] = "sop"
    needs_autograd: ClassVar[bool] = True
    lr_u: float = 10.0
    lr_v: float = 10.0
    init_std: float = 1e-8

    def __post_init__(self) -> None:
        _positive("sop.lr_u", self.lr_u)
        _positive("sop.lr_v", self.lr_v)
        _positive("sop.init_std", self.init_std)

    def start(self, run: Run) -> Active:
        if run.task != "classification":
            raise ConfigError("sop", run.task, "a classification run with cross-entropy loss")
        return _SparseOverparam(self, run)


def noise_terms(u: torch.Tensor, v: torch.Tensor, onehot: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``s_u = clamp(u^2 y, 0, 1)`` and ``s_v = clamp(v^2 (1 - y), 0, 1)`` (broadcast over the
    class axis; ``u`` is ``[..., 1]``, ``v`` and ``onehot`` are ``[..., C]``)."""
    return ((u * u * onehot).clamp(0.0, 1.0), (v * v * (1.0 - onehot)).clamp(0.0, 1.0))


def sop_loss(out: torch.Tensor, y: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
             eps: float = EPS) -> torch.Tensor:
    """SOP's batch loss per member: logits ``out [K, B, C]``, labels ``y [K, B]``, the batch's
    ``u [K, B, 1]`` and ``v [K, B, C]``; returns ``[K]`` (see the module docstring)."""
    onehot = F.one_hot(y, out.shape[-1]).to(out.dtype)
    s_u, s_v = noise_terms(u, v, onehot)
    p = (torch.softmax(out, -1) + s_u - s_v.detach()).clamp(min=eps)
    p = (p / p.sum(-1, keepdim=True).clamp(min=eps)).clamp(eps, 1.0)
    ce = -(onehot * p.log()).sum(-1)
    pred = F.one_hot(out.detach().argmax(-1), out.shape[-1]).to(out.dtype)
    sq = (pred + s_u - s_v - onehot).pow(2).sum(-1)
    return (ce + sq).mean(-1)


def noise_norms(u: torch.Tensor, v: torch.Tensor, y: torch.Tensor, num_classes: int
                ) -> torch.Tensor:
    """``||s_i||_2 = ||s_u,i - s_v,i||_2`` per sample for labels ``y [..., N]``."""
    s_u, s_v = noise_terms(u, v, F.one_hot(y, num_classes).to(u.dtype))
    return (s_u - s_v).norm(dim=-1)


class _SparseOverparam(Active):
    replaces_loss = True

    def __init__(self, cfg: SparseOverparam, run: Run):
        self.cfg, self.run = cfg, run
        n, c = run.data.n_train, run.data.num_classes
        us, vs = [], []
        for s in run.seeds:
            g = torch.Generator().manual_seed(derive_seed(s, "sop"))
            us.append(torch.randn(n, 1, generator=g, dtype=torch.float64) * cfg.init_std)
            vs.append(torch.randn(n, c, generator=g, dtype=torch.float64) * cfg.init_std)
        opts = {"device": run.device, "dtype": run.dtype}
        self.u = torch.stack(us).to(**opts).requires_grad_(True)
        self.v = torch.stack(vs).to(**opts).requires_grad_(True)
        self._end: tuple[torch.Tensor, torch.Tensor] | None = None

    def loss(self, step: Step) -> torch.Tensor:
        idx = step.idx.unsqueeze(-1)
        u = self.u.gather(1, idx)
        v = self.v.gather(1, idx.expand(-1, -1, self.v.shape[-1]))
        return sop_loss(step.out, step.y, u, v)

    @torch.no_grad()
    def post_step(self, step: Step) -> None:
        for t, lr in ((self.u, self.cfg.lr_u), (self.v, self.cfg.lr_v)):
            if t.grad is not None:
                t.sub_(lr * t.grad)
                t.grad = None

    @torch.no_grad()
    def _final(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per member: ``||s_i||`` over the training set ``[K, N]`` and the augmented
        prediction's accuracy on the training labels ``[K]`` (once, after training)."""
        if self._end is not None:
            return self._end
        data, ens = self.run.data, self.run.ensemble
        y = data.y_train.expand(self.run.size, -1)
        norms = noise_norms(self.u, self.v, y, data.num_classes)
        was = ens.training
        ens.eval()
        out = torch.cat([ens(data.x_train[i:i + 2048], shared=True)
                         for i in range(0, data.n_train, 2048)], 1)
        ens.train(was)
        s_u, s_v = noise_terms(self.u, self.v, F.one_hot(y, data.num_classes).to(out.dtype))
        fit = ((torch.softmax(out, -1) + s_u - s_v).argmax(-1) == y).double().mean(1)
        self._end = (norms, fit)
        return self._end

    def results(self) -> list[dict[str, Any]]:
        norms, fit = self._final()
        return [{"sop_fit_acc": float(f), "sop_mean_s_norm": float(m)}
                for f, m in zip(fit.tolist(), norms.mean(1).tolist())]

    def artifacts(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        norms, _ = self._final()
        return {"sop": [{"u": self.u[k].detach().clone(), "v": self.v[k].detach().clone(),
                         "s_norm": norms[k].clone()} for k in range(self.run.size)]}
