"""Dynamic sparse training (SET, RigL) and the in-time over-parameterization rate.

A network trains at a fixed number of active weights while its connectivity changes: every
``delta_t`` steps, in every prunable layer (:func:`overparam.sparsity.masks.prunable`: weights
of two or more dimensions per member; biases and normalization stay dense) and for every member
of the ensemble separately, the ``k = floor(p_t * n_l)`` active weights of smallest magnitude are
pruned and ``k`` inactive positions are grown, so each layer's active count ``n_l`` -- and so
the total density -- stays exactly what it was at initialization.

* SET (Mocanu et al. 2018, "Scalable training of artificial neural networks with adaptive sparse
  connectivity inspired by network science", arXiv:1707.04780) and SET-ITOP (Liu, Yin, Mocanu &
  Pechenizkiy 2021, "Do we actually need dense over-parameterization? In-time
  over-parameterization in sparse training", arXiv:2102.02887) grow at random: a uniformly random
  subset of the layer's inactive positions, per member, from the seeded stream
  ``derive_seed(seed, "dst_grow")``.
* RigL (Evci, Gale, Menick, Castro & Elsen 2020, "Rigging the lottery: making all tickets
  winners", arXiv:1911.11134) grows the inactive positions of largest ``|dL/dw|``, the gradient of
  the *dense* weight tensor at the update step (read from ``.grad`` after the backward pass,
  before the mask zeroes it; the fused MLP step writes the dense ``a^T g`` too).
* ``static``: the random initial mask is kept for the whole run (the sparse baseline).

Grown positions are chosen among the positions inactive *before* the update, so a weight pruned
at an update is never its own replacement and every update changes exactly ``k`` connections per
layer (in RigL's code a dropped-and-regrown connection is simply left unchanged). Newly grown
weights start at zero and their optimizer state (momentum, Adam's moments) is zero; pruned weights
and their optimizer state are set to zero, and between updates the mask is enforced by parameter
as in :mod:`overparam.sparsity.lottery` (gradients masked after backward, weights and optimizer
state after every step).

Schedule (RigL): updates after steps ``t = delta_t, 2 delta_t, ...`` while ``t < T_end =
floor(end_fraction * T)`` (``T``: the run's steps; RigL's ``end_fraction`` is 0.75); the pruned
fraction decays by a cosine, ``p_t = p_0 / 2 * (1 + cos(pi t / T_end))`` (``p_0``: SET's zeta =
0.3, RigL's alpha = 0.3; ITOP's code defaults to 0.5). Selection runs on each member's tensors
in the member module's own layout (``torch.topk``, deterministic for equal inputs), so the fused
and autograd paths agree; exact ties (zero gradients of dead units) go by ``torch.topk``'s order.

Layer densities, for a target total density ``D`` over ``N = sum_l N_l`` prunable weights:

* ``erk`` (Erdős–Rényi-Kernel, Evci et al. 2020, Sec. 3: Mocanu et al.'s Erdős–Rényi with the
  kernel dimensions): ``d_l = eps * sum(shape_l) / prod(shape_l)``, i.e.
  ``(n_in + n_out) / (n_in n_out)`` for a linear layer and
  ``(n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w)`` for a convolution, with ``eps`` such
  that ``sum_l d_l N_l = D N``; a layer whose ``d_l`` would exceed 1 is set dense and ``eps`` is
  solved again over the rest (RigL's code, repeated until valid). Active
  counts are ``d_l N_l`` rounded by largest remainder, so the total is exactly ``round(D N)``.
* ``uniform`` (RigL's convention, their Sec. 3): every layer at density ``D`` except the first,
  which is kept dense ("sparsifying this layer has a disproportional effect on the performance
  and almost no effect on the total size"); the total density is then above ``D`` (reported as
  measured). A network with a single prunable tensor keeps it at ``D``.

The initial mask is drawn per member from ``derive_seed(seed, "dst_mask")``: exactly the layer's
count of positions, uniformly at random. Liu et al.'s in-time over-parameterization rate is
``R_s = |union over t of active positions| / N`` (every position that was ever active, the initial
mask included), logged per member as the series ``itop_rate`` at step 0, after each update and
at the last step, with ``density`` (measured) and ``grown_overlap`` (the fraction of the grown
positions that had been active before at some time: re-visits that add nothing to ``R_s``).
Results per member: final ``itop_rate``, ``density_measured``, ``dst_updates``; the final mask is
the artifact ``mask`` (member layout, as the lottery's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from overparam.config import Intervention
from overparam.errors import ConfigError
from overparam.seeds import derive_seed
from overparam.sparsity.masks import Masks, density, prunable
from overparam.train.interventions import Active, Run, Step

DISTRIBUTIONS = ("erk", "uniform")
METHODS = ("static", "set", "rigl")


def _fraction(name: str, value: Any, closed_high: bool = False) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and 0.0 < value and (value <= 1.0 if closed_high
                                                        else value < 1.0))
    if not ok:
        raise ConfigError(name, value, f"a fraction in (0, 1{']' if closed_high else ')'}")


@dataclass(frozen=True)
class DynamicSparse(Intervention):
    """Train at ``density`` with a mask that changes every ``delta_t`` steps (module docstring)."""

    kind: ClassVar[str] = "dynamic_sparse"
    density: float
    method: str = "set"
    distribution: str = "erk"
    delta_t: int = 100
    prune_fraction: float = 0.3
    end_fraction: float = 0.75

    def __post_init__(self) -> None:
        _fraction("dynamic_sparse.density", self.density)
        if self.method not in METHODS:
            raise ConfigError("dynamic_sparse.method", self.method, " or ".join(METHODS))
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError("dynamic_sparse.distribution", self.distribution,
                              " or ".join(DISTRIBUTIONS))
        if not (isinstance(self.delta_t, int) and not isinstance(self.delta_t, bool)
                and self.delta_t >= 1):
            raise ConfigError("dynamic_sparse.delta_t", self.delta_t, "an integer >= 1 (steps)")
        _fraction("dynamic_sparse.prune_fraction", self.prune_fraction)
        _fraction("dynamic_sparse.end_fraction", self.end_fraction, closed_high=True)

    def start(self, run: Run) -> Active:
        return _DynamicSparse(self, run)


# -- layer densities -----------------------------------------------------------------------------
def erk_densities(shapes: dict[str, tuple[int, ...]], target: float) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities per layer (RigL's loop: densities above 1 set dense)."""
    dense: set[str] = set()
    while True:
        rhs, divisor, raw = 0.0, 0.0, {}
        for n, shape in shapes.items():
            size = math.prod(shape)
            if n in dense:
                rhs -= (1.0 - target) * size
            else:
                rhs += target * size
                raw[n] = sum(shape) / size
                divisor += raw[n] * size
        if not raw or rhs <= 0:
            raise ConfigError("dynamic_sparse.density", target,
                              "a density reachable with sparse layers under ERK")
        eps = rhs / divisor
        top = max(raw.values())
        if eps * top <= 1.0:
            return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
        dense |= {n for n, r in raw.items() if r == top}


def layer_densities(shapes: dict[str, tuple[int, ...]], target: float, distribution: str
                    ) -> dict[str, float]:
    """Planned density of each prunable layer (``shapes`` in the member's layout, in order)."""
    if distribution == "erk":
        return erk_densities(shapes, target)
    if distribution == "uniform":
        first = next(iter(shapes)) if len(shapes) > 1 else None
        return {n: 1.0 if n == first else target for n in shapes}
    raise ConfigError("dynamic_sparse.distribution", distribution, " or ".join(DISTRIBUTIONS))


def layer_counts(shapes: dict[str, tuple[int, ...]], target: float, distribution: str
                 ) -> dict[str, int]:
    """Active weights per layer: under ERK ``d_l N_l`` rounded by largest remainder, so that the
    total is exactly ``round(D N)``; under ``uniform`` ``round(D N_l)`` per sparse layer."""
    dens = layer_densities(shapes, target, distribution)
    if distribution == "uniform":
        return {n: round(dens[n] * math.prod(s)) for n, s in shapes.items()}
    exact = {n: dens[n] * math.prod(s) for n, s in shapes.items()}
    counts = {n: min(math.floor(v + 1e-9), math.prod(shapes[n])) for n, v in exact.items()}
    total = round(sum(exact.values()))
    rest = sorted(shapes, key=lambda n: (-(exact[n] - counts[n]), list(shapes).index(n)))
    for n in rest[:max(0, total - sum(counts.values()))]:
        counts[n] += 1
    return counts


def random_mask(shape: tuple[int, ...], count: int, generator: torch.Generator) -> torch.Tensor:
    """A 0/1 float mask of ``shape`` with exactly ``count`` ones at uniformly random positions."""
    size = math.prod(shape)
    flat = torch.zeros(size)
    flat[torch.randperm(size, generator=generator)[:count]] = 1.0
    return flat.view(shape)


def cosine_fraction(p0: float, t: int, t_end: int) -> float:
    """``p_t = p0 / 2 * (1 + cos(pi t / T_end))``."""
    return 0.5 * p0 * (1.0 + math.cos(math.pi * t / t_end))


def random_inactive(active: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct positions drawn uniformly without replacement among the ``False`` entries
    of the flat boolean ``active``: uniform draws over all positions, rejecting active ones and
    repeats, kept in the order drawn (sequential sampling without replacement; cost ~ k, not the
    layer's size, at low density)."""
    n = active.numel()
    free = n - int(active.sum())
    if not 0 <= k <= free:
        raise ValueError(f"cannot grow {k} of {free} inactive positions")
    picked = torch.empty(0, dtype=torch.long)
    while picked.numel() < k:
        draws = torch.randint(n, (max(16, 2 * (k - picked.numel()) * n // max(free, 1)),),
                              generator=generator)
        cat = torch.cat([picked, draws[~active.cpu()[draws]]])
        uniq, inverse = torch.unique(cat, return_inverse=True)
        first = torch.full((uniq.numel(),), cat.numel(), dtype=torch.long).scatter_reduce_(
            0, inverse, torch.arange(cat.numel()), "amin")
        picked = cat[first.sort().values]
    return picked[:k].to(active.device)


# -- the live side -------------------------------------------------------------------------------
class _DynamicSparse(Active):
    """The masks live twice: ``active`` (bool, member layout flattened ``[K, N_l]``: where
    selection happens) and ``masks`` (0/1 in the ensemble's storage layout: what is applied)."""

    def __init__(self, cfg: DynamicSparse, run: Run):
        self.cfg, self.run = cfg, run
        ens = run.ensemble
        self.names = prunable(ens.params)
        if not self.names:
            raise ConfigError("dynamic_sparse", cfg.kind, "a model with weight matrices to mask")
        self.shapes = {n: tuple(self._member(n, ens.params[n]).shape[1:]) for n in self.names}
        self.counts = layer_counts(self.shapes, cfg.density, cfg.distribution)
        self.total = sum(math.prod(s) for s in self.shapes.values())
        gens = [torch.Generator().manual_seed(derive_seed(s, "dst_mask")) for s in run.seeds]
        self.active = {n: torch.stack([random_mask(self.shapes[n], self.counts[n], g).flatten()
                                       for g in gens]).to(ens.params[n].device) > 0
                       for n in self.names}
        self.masks: Masks = {n: self._stored(n, a, ens.params[n]) for n, a in self.active.items()}
        self.ever = {n: a.clone() for n, a in self.active.items()}
        self.grow_gens = [torch.Generator().manual_seed(derive_seed(s, "dst_grow"))
                          for s in run.seeds]
        self.t_end = int(cfg.end_fraction * run.total_steps)
        self.updates = 0
        self.grads: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for n, m in self.masks.items():
                ens.params[n].mul_(m)
        self._log(0)

    # layout: selection happens in the member module's own layout, flattened per member
    def _member(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return self.run.ensemble.to_member_layout(name, t)

    def _flat(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return self._member(name, t).reshape(t.shape[0], -1)

    def _stored(self, name: str, active: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Flat member-layout ``[K, N]`` booleans as a 0/1 mask in the storage layout."""
        shaped = active.reshape(active.shape[0], *self.shapes[name])
        return self._member(name, shaped).contiguous().to(like)

    def is_update(self, done: int) -> bool:
        """Whether the connectivity changes after ``done`` steps."""
        return (self.cfg.method != "static" and done % self.cfg.delta_t == 0
                and done < self.t_end)

    def post_backward(self, step: Step) -> None:
        with torch.no_grad():
            if self.cfg.method == "rigl" and self.is_update(step.t + 1):
                # the dense gradient, before the mask zeroes the inactive positions
                self.grads = {n: self._flat(n, self.run.ensemble.params[n].grad.detach()).abs()
                              for n in self.names}
            for n, m in self.masks.items():
                g = self.run.ensemble.params[n].grad
                if g is not None:
                    g.mul_(m)

    def post_step(self, step: Step) -> None:
        self._enforce(step)
        done = step.t + 1
        if self.is_update(done):
            self._update(done)
            self._enforce(step)
            self._log(done)
        elif done == self.run.total_steps:
            self._log(done)

    @torch.no_grad()
    def _enforce(self, step: Step) -> None:
        for n, m in self.masks.items():
            p = self.run.ensemble.params[n]
            p.mul_(m)
            for state in step.optimizer.state_of(p):
                state.mul_(m)

    @torch.no_grad()
    def _update(self, done: int) -> None:
        """Prune ``floor(p_t n_l)`` smallest-magnitude active weights per layer and member,
        grow as many positions inactive before the update (random or largest dense gradient)."""
        frac = cosine_fraction(self.cfg.prune_fraction, done, self.t_end)
        ens = self.run.ensemble
        size = self.run.size
        grown = torch.zeros(size, dtype=torch.float64)
        revisits = torch.zeros(size, dtype=torch.float64)
        for n in self.names:
            active = self.active[n]
            n_active, n_all = self.counts[n], active.shape[1]
            k = min(int(frac * n_active), n_all - n_active)
            if k <= 0:
                continue
            # every member has n_active active positions: [K, n_active] and [K, n_all - n_active]
            on = active.nonzero()[:, 1].view(size, n_active)
            w = self._flat(n, ens.params[n].detach()).gather(1, on).abs()
            drop = on.gather(1, torch.topk(w, k, dim=1, largest=False).indices)
            if self.cfg.method == "rigl":
                off = (~active).nonzero()[:, 1].view(size, n_all - n_active)
                g = self.grads[n].gather(1, off)
                grow = off.gather(1, torch.topk(g, k, dim=1).indices)
            else:
                grow = torch.stack([random_inactive(active[j], k, gen)
                                    for j, gen in enumerate(self.grow_gens)])
            revisits += self.ever[n].gather(1, grow).sum(1).double().cpu()
            grown += k
            new = active.clone()
            new.scatter_(1, drop, False)
            new.scatter_(1, grow, True)
            self.active[n] = new
            self.ever[n] |= new
            self.masks[n] = self._stored(n, new, self.masks[n])
        self.grads = {}
        self.updates += 1
        self.run.log("grown_overlap", (revisits / grown.clamp(min=1)).tolist(), done)

    def itop_rates(self) -> list[float]:
        """``R_s`` per member: positions ever active over all prunable positions."""
        ever = sum(e.sum(1).double() for e in self.ever.values())
        return (ever / self.total).tolist()

    def densities(self) -> list[float]:
        """Measured density per member (the masks actually applied)."""
        return density(self.masks)

    def _log(self, step: int) -> None:
        self.run.log("itop_rate", self.itop_rates(), step)
        self.run.log("density", self.densities(), step)

    def results(self) -> list[dict[str, Any]]:
        return [{"itop_rate": r, "density_measured": d, "dst_updates": self.updates}
                for r, d in zip(self.itop_rates(), self.densities())]

    def artifacts(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        return {"mask": self.run.ensemble.unstack(self.masks)}
