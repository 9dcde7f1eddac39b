"""Dynamic sparse training against independent references: hand-computed ERK densities, exact
counts, brute-force unions of the recorded masks, a plain autograd gradient with numpy selection
for RigL, the autograd path for the fused one, and the optimizer state left by every step."""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from overparam.config import (
    Intervention,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    from_dict,
    run_id,
    to_canonical_dict,
)
from overparam.errors import ConfigError
from overparam.seeds import derive_seed
from overparam.sparsity import dst
from overparam.sparsity.dst import DynamicSparse, erk_densities, layer_counts, random_mask
from overparam.train import train
from overparam.train.interventions import Active, intervention_class
from overparam.train.loop import build_members
from tests.train.test_train import tiny_data

# mlp_w16 on 6 inputs, 3 classes: member-layout weight shapes (out, in)
SHAPES = {"layers.0.weight": (16, 6), "layers.1.weight": (16, 16), "layers.2.weight": (16, 16),
          "layers.3.weight": (3, 16)}
TOTAL = 96 + 256 + 256 + 48


@dataclass(frozen=True)
class Autograd(Intervention):
    """Does nothing but switch the run to the autograd path (no fused MLP step)."""

    kind: ClassVar[str] = "test_autograd"
    needs_autograd: ClassVar[bool] = True

    def start(self, run):
        return Active()


def config(method="set", density=0.3, optim="sgd", steps=30, delta_t=3, autograd=False,
           **kw):
    iv = (DynamicSparse(density=density, method=method, delta_t=delta_t, **kw),)
    return TrainConfig(model=ModelConfig(name="mlp_w16"), steps=steps, batch_size=8,
                       optim=OptimConfig(name=optim, lr=0.05 if optim != "adam" else 0.01,
                                         weight_decay=1e-3 if optim == "sgd" else 0.0,
                                         momentum=0.9 if optim == "sgd" else 0.0,
                                         schedule="constant"),
                       interventions=iv + ((Autograd(),) if autograd else ()))


# -- settings ------------------------------------------------------------------------------------
def test_settings_are_validated_and_part_of_the_identity():
    iv = DynamicSparse(density=0.1, method="rigl", delta_t=7)
    cfg = TrainConfig(interventions=(iv,))
    assert intervention_class("dynamic_sparse") is DynamicSparse
    assert from_dict(TrainConfig, to_canonical_dict(cfg)) == cfg
    assert to_canonical_dict(iv) == {"kind": "dynamic_sparse", "density": 0.1, "method": "rigl",
                                     "delta_t": 7}
    assert run_id(cfg, 0) != run_id(TrainConfig(interventions=(
        DynamicSparse(density=0.1, method="set", delta_t=7),)), 0)
    bad = [({"density": 0.0}, "density"), ({"density": 1.0}, "density"),
           ({"method": "snip"}, "method"), ({"distribution": "er"}, "distribution"),
           ({"delta_t": 0}, "delta_t"), ({"delta_t": 2.5}, "delta_t"),
           ({"prune_fraction": 1.0}, "prune_fraction"), ({"end_fraction": 0.0}, "end_fraction"),
           ({"end_fraction": 1.5}, "end_fraction")]
    for change, name in bad:
        with pytest.raises(ConfigError, match=f"dynamic_sparse.{name}"):
            DynamicSparse(**{"density": 0.1, **change})


# -- layer densities -----------------------------------------------------------------------------
def test_erk_densities_by_hand():
    # D = 0.3: eps = 0.3 * 656 / (22 + 32 + 32 + 19), d_l = eps (n_in + n_out) / (n_in n_out)
    eps = 0.3 * 656 / 105
    want = [eps * 22 / 96, eps * 32 / 256, eps * 32 / 256, eps * 19 / 48]
    got = erk_densities(SHAPES, 0.3)
    assert list(got.values()) == pytest.approx(want, rel=1e-12)
    assert sum(got[n] * math.prod(s) for n, s in SHAPES.items()) == pytest.approx(0.3 * TOTAL)
    # D = 0.6: the last layer would get 19/48 * 0.6 * 656 / 105 = 1.48 > 1: dense, and the rest
    # share 0.6 * 656 - 48 weights: eps = (0.6 * 608 - 0.4 * 48) / (22 + 64)
    eps = (0.6 * 608 - 0.4 * 48) / 86
    got = erk_densities(SHAPES, 0.6)
    assert list(got.values()) == pytest.approx([eps * 22 / 96, eps / 8, eps / 8, 1.0], rel=1e-12)
    # a convolution counts its kernel dimensions: (8 + 3 + 3 + 3) / (8 * 3 * 3 * 3)
    conv = erk_densities({"c": (8, 3, 3, 3), "f": (10, 64)}, 0.2)
    eps = 0.2 * (216 + 640) / (17 + 74)
    assert conv == pytest.approx({"c": eps * 17 / 216, "f": eps * 74 / 640}, rel=1e-12)


@pytest.mark.parametrize("d", [0.05, 0.1, 0.3, 0.6, 0.9])
def test_layer_counts_are_exact(d):
    counts = layer_counts(SHAPES, d, "erk")
    assert sum(counts.values()) == round(d * TOTAL)  # the total is exactly D N
    for n, dens in erk_densities(SHAPES, d).items():
        assert abs(counts[n] - dens * math.prod(SHAPES[n])) < 1
        assert 0 <= counts[n] <= math.prod(SHAPES[n])
    uni = layer_counts(SHAPES, d, "uniform")  # RigL: the first layer dense, the others at D
    assert uni["layers.0.weight"] == 96
    assert [uni[n] for n in list(SHAPES)[1:]] == [round(d * 256), round(d * 256), round(d * 48)]


# -- the intervention in training ----------------------------------------------------------------
class Recorder:
    """Wraps the live intervention: the masks before and after every update, checked
    invariants after every step (masked weights and optimizer state zero, grown weights zero)."""

    def __init__(self, monkeypatch):
        self.actives, self.updates, self.checked = [], [], 0
        rec = self
        start, update, post_step = DynamicSparse.start, dst._DynamicSparse._update, \
            dst._DynamicSparse.post_step

        def start_(self, run):
            a = start(self, run)
            rec.actives.append(a)
            rec.initial = {n: m.clone() for n, m in a.masks.items()}
            return a

        def update_(self, done):
            before = {n: m.clone() for n, m in self.masks.items()}
            update(self, done)
            rec.updates.append((done, before, {n: m.clone() for n, m in self.masks.items()}))

        def post_step_(self, step):
            n_before = len(rec.updates)
            post_step(self, step)
            for n, m in self.masks.items():
                p = self.run.ensemble.params[n].detach()
                states = step.optimizer.state_of(self.run.ensemble.params[n])
                if step.optimizer.cfg.name == "adam" or step.optimizer.cfg.momentum:
                    assert states  # momentum / Adam's moments exist: the check is not empty
                assert torch.all(p[m == 0] == 0)
                assert (p[m > 0] != 0).float().mean() > 0.5
                for s in states:
                    assert torch.all(s[m == 0] == 0)
                if len(rec.updates) > n_before:  # grown on this step: zero weight and state
                    _, old, new = rec.updates[-1]
                    grown = (new[n] > 0) & (old[n] == 0)
                    assert torch.all(p[grown] == 0)
                    for s in states:
                        assert torch.all(s[grown] == 0)
            rec.checked += 1

        monkeypatch.setattr(DynamicSparse, "start", start_)
        monkeypatch.setattr(dst._DynamicSparse, "_update", update_)
        monkeypatch.setattr(dst._DynamicSparse, "post_step", post_step_)


def counts(mask):
    """Active weights per member of one stacked mask."""
    return mask.flatten(1).sum(1).long().tolist()


@pytest.mark.parametrize("method, optim", [("set", "sgd"), ("rigl", "sgd"), ("set", "adam"),
                                           ("rigl", "adam")])
def test_updates_keep_counts_and_zero_state(monkeypatch, method, optim):
    rec = Recorder(monkeypatch)
    cfg = config(method, optim=optim, prune_fraction=0.5)
    res = train(cfg, [0, 1], tiny_data(), dtype=torch.float64, keep_state=True)
    assert rec.checked == 30
    want = layer_counts(SHAPES, 0.3, "erk")
    t_end = int(0.75 * 30)
    changed = 0
    assert [u[0] for u in rec.updates] == list(range(3, t_end, 3))  # 3, 6, ..., 21
    for done, before, after in rec.updates:
        frac = 0.5 / 2 * (1 + math.cos(math.pi * done / t_end))
        for n, m in after.items():
            assert counts(m) == [want[n]] * 2  # per layer and member, exactly
            grown = ((m > 0) & (before[n] == 0)).flatten(1).sum(1).tolist()
            pruned = ((m == 0) & (before[n] > 0)).flatten(1).sum(1).tolist()
            k = min(int(frac * want[n]), m[0].numel() - want[n])
            assert grown == pruned == [k, k]  # only previously inactive positions are grown
            changed += k
    assert changed > 100  # the zero-weight checks on update steps saw grown weights
    for r in res:
        assert r.extra["density_measured"] == sum(want.values()) / TOTAL
        assert r.extra["dst_updates"] == len(rec.updates)
        for n, m in r.artifacts["mask"].items():
            assert torch.all(r.state[n][m == 0] == 0)


def test_itop_rate_is_the_union_of_the_recorded_masks(monkeypatch):
    rec = Recorder(monkeypatch)
    res = train(config("set"), [0, 1], tiny_data(), dtype=torch.float64)
    union = {n: m > 0 for n, m in rec.initial.items()}
    expected = {0: [sum(int(u[k].sum()) for u in union.values()) / TOTAL for k in range(2)]}
    for done, _, after in rec.updates:
        for n in union:
            union[n] = union[n] | (after[n] > 0)
        expected[done] = [sum(int(u[k].sum()) for u in union.values()) / TOTAL for k in range(2)]
    for k, r in enumerate(res):
        series = dict(r.series["itop_rate"])
        for done, values in expected.items():
            assert series[done] == pytest.approx(values[k], abs=1e-15)
        assert series[30] == r.extra["itop_rate"] == pytest.approx(expected[21][k], abs=1e-15)
        assert r.extra["itop_rate"] > 0.3 + 0.05  # exploration happened
        steps = sorted(series)
        assert all(series[a] <= series[b] for a, b in zip(steps, steps[1:]))


def test_static_never_changes_the_mask(monkeypatch):
    rec = Recorder(monkeypatch)
    res = train(config("static"), [0, 1], tiny_data(), dtype=torch.float64)
    assert rec.updates == []
    want = layer_counts(SHAPES, 0.3, "erk")
    for k, r in enumerate(res):
        g = torch.Generator().manual_seed(derive_seed(k, "dst_mask"))  # independent redraw
        for n in SHAPES:
            ref = random_mask(SHAPES[n], want[n], g).double()
            assert torch.equal(r.artifacts["mask"][n], ref)
        assert r.extra["itop_rate"] == r.extra["density_measured"] == round(0.3 * TOTAL) / TOTAL
        assert r.extra["dst_updates"] == 0


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_fused_and_autograd_paths_give_the_same_masks(method):
    data = tiny_data()
    fused = train(config(method), [0, 1], data, dtype=torch.float64)
    auto = train(config(method, autograd=True), [0, 1], data, dtype=torch.float64)
    alone = train(config(method), [1], data, dtype=torch.float64)  # seed 1 outside the ensemble
    for f, a in zip(fused, auto):
        assert f.series["itop_rate"] == a.series["itop_rate"]
        for n in SHAPES:
            assert torch.equal(f.artifacts["mask"][n], a.artifacts["mask"][n])
    for n in SHAPES:
        assert torch.equal(alone[0].artifacts["mask"][n], fused[1].artifacts["mask"][n])
    assert fused[0].test_acc == pytest.approx(auto[0].test_acc, abs=1e-12)


@pytest.mark.parametrize("autograd", [False, True])
def test_rigl_grows_where_the_dense_gradient_is_largest(monkeypatch, autograd):
    """Full-batch GD, one update after step 1: against a plain autograd gradient of the masked
    network and a numpy selection (argsort) of the pruned and grown positions."""
    rec = Recorder(monkeypatch)
    grads = {}
    post_backward = dst._DynamicSparse.post_backward

    def spy(self, step):  # the gradient as the loop leaves it, before the mask
        if step.t == 0:
            grads.update({n: self.run.ensemble.params[n].grad.detach().clone()
                          for n in self.names})
        post_backward(self, step)

    monkeypatch.setattr(dst._DynamicSparse, "post_backward", spy)
    data = tiny_data().to("cpu", torch.float64)
    cfg = TrainConfig(model=ModelConfig(name="mlp_w16"), steps=2,
                      optim=OptimConfig(name="gd", lr=0.1, momentum=0.0, schedule="constant"),
                      interventions=(DynamicSparse(density=0.2, method="rigl", delta_t=1,
                                                   prune_fraction=0.4, end_fraction=1.0),)
                      + ((Autograd(),) if autograd else ()))
    res = train(cfg, [3], data, dtype=torch.float64)
    assert [u[0] for u in rec.updates] == [1]
    ens = rec.actives[0].run.ensemble
    assert ens.fused is not autograd  # the fused MLP step writes the dense gradient too
    mask0 = ens.unstack(rec.initial)[0]
    model = build_members(cfg, [3], data)[0].double()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in mask0:
                p.mul_(mask0[n])
    loss = F.cross_entropy(model(data.x_train), data.y_train)
    ref = dict(zip([n for n, _ in model.named_parameters()],
                   torch.autograd.grad(loss, list(model.parameters()))))
    frac = 0.4 / 2 * (1 + math.cos(math.pi / 2))
    spied = ens.unstack(grads)[0]
    for n, m0 in mask0.items():
        # the loop's gradient is the dense one, inactive positions included
        assert torch.allclose(spied[n], ref[n], rtol=1e-10, atol=1e-12)
        w1 = (dict(model.named_parameters())[n].detach() - 0.1 * ref[n] * m0).numpy().ravel()
        m = m0.numpy().ravel()
        k = int(frac * int(m.sum()))
        # inactive positions with a nonzero gradient outnumber the grown ones: no ties decide
        assert int((ref[n][m0 == 0] != 0).sum()) > k > 0
        act, inact = np.flatnonzero(m > 0), np.flatnonzero(m == 0)
        drop = act[np.argsort(np.abs(w1[act]), kind="stable")[:k]]
        grow = inact[np.argsort(-np.abs(ref[n].numpy().ravel()[inact]), kind="stable")[:k]]
        want = m.copy()
        want[drop], want[grow] = 0, 1
        np.testing.assert_array_equal(res[0].artifacts["mask"][n].numpy().ravel(), want)


def test_random_growth_is_uniform_over_the_inactive_positions():
    """Sequential sampling without replacement: k distinct inactive positions, each inactive
    position equally likely (chi-square over 3,000 draws), reproducible from the generator."""
    from scipy.stats import chisquare

    active = torch.zeros(20, dtype=torch.bool)
    active[[1, 4, 5, 9, 13, 14, 17, 19]] = True
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(20)
    for _ in range(3000):
        got = dst.random_inactive(active, 3, g)
        assert got.numel() == 3 and got.unique().numel() == 3 and not active[got].any()
        hits[got] += 1
    assert torch.all(hits[active] == 0)
    assert chisquare(hits[~active].numpy()).pvalue > 1e-3  # expected 750 each
    again = torch.Generator().manual_seed(0)
    first = dst.random_inactive(active, 3, torch.Generator().manual_seed(0))
    assert torch.equal(dst.random_inactive(active, 3, again), first)
    assert dst.random_inactive(active, 12, g).sort().values.tolist() == [
        i for i in range(20) if not active[i]]
    with pytest.raises(ValueError):
        dst.random_inactive(active, 13, g)
