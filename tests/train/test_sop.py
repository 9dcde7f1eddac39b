"""SOP against an independent per-sample reference (float64), the loop's replaces-loss hook, and
the loop without SOP unchanged (metrics pinned from the loop before the hook existed)."""

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from overparam.config import (
    Intervention,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    canonical_json,
    from_dict,
    to_canonical_dict,
)
from overparam.data.dataset import Dataset
from overparam.errors import ConfigError
from overparam.models import build
from overparam.seeds import derive_seed
from overparam.train import train
from overparam.train.interventions import Active, GradPenalty
from overparam.train.sop import EPS, SparseOverparam, noise_norms, sop_loss
from tests.train.test_train import tiny_data


def reference_loss(z, y, u, v):
    """SOP's loss of one member, written out sample by sample and class by class: logits
    ``z [B, C]``, labels ``y [B]``, the batch's ``u [B]`` and ``v [B, C]``."""
    B, C = z.shape
    total = 0.0
    for i in range(B):
        zi = z[i]
        e = torch.exp(zi - zi.max())
        sm = e / e.sum()
        pred = int(torch.argmax(zi.detach()))
        q, su, sv = [], [], []
        for c in range(C):
            a = u[i] ** 2 if c == y[i] else torch.zeros((), dtype=z.dtype)
            b = v[i, c] ** 2 if c != y[i] else torch.zeros((), dtype=z.dtype)
            su.append(torch.clamp(a, 0.0, 1.0))
            sv.append(torch.clamp(b, 0.0, 1.0))
            q.append(torch.clamp(sm[c] + su[c] - sv[c].detach(), min=EPS))
        norm = torch.clamp(sum(q), min=EPS)
        q = [torch.clamp(qc / norm, EPS, 1.0) for qc in q]
        ce = -torch.log(q[int(y[i])])
        sq = sum(((1.0 if c == pred else 0.0) + su[c] - sv[c] - (1.0 if c == y[i] else 0.0)) ** 2
                 for c in range(C))
        total = total + ce + sq
    return total / B


def test_loss_and_gradients_match_a_per_sample_reference():
    g = torch.Generator().manual_seed(0)
    K, N, B, C, D = 2, 12, 6, 4, 5
    w = (3.0 * torch.randn(K, C, D, generator=g, dtype=torch.float64)).requires_grad_(True)
    x = torch.randn(K, B, D, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (K, B), generator=g)
    idx = torch.stack([torch.randperm(N, generator=g)[:B] for _ in range(K)])
    # u^2, v^2 on both sides of the clamp at 1; large logits put softmax below eps somewhere
    u = (1.2 * torch.rand(K, N, 1, generator=g, dtype=torch.float64)).requires_grad_(True)
    v = (1.2 * torch.rand(K, N, C, generator=g, dtype=torch.float64)).requires_grad_(True)
    out = torch.einsum("kbd,kcd->kbc", x, w)
    ub = u.gather(1, idx.unsqueeze(-1))
    vb = v.gather(1, idx.unsqueeze(-1).expand(-1, -1, C))
    loss = sop_loss(out, y, ub, vb)
    assert loss.shape == (K,)
    grads = torch.autograd.grad(loss.sum(), [w, u, v])
    p = torch.softmax(out, -1) + ub * ub * torch.nn.functional.one_hot(y, C)
    assert (p - vb.detach() ** 2 < EPS).any() and (ub.detach() ** 2 > 1).any()  # clamps active
    for k in range(K):
        wk = w.detach()[k].clone().requires_grad_(True)
        uk = u.detach()[k, :, 0].clone().requires_grad_(True)
        vk = v.detach()[k].clone().requires_grad_(True)
        ref = reference_loss(x[k] @ wk.T, y[k], uk[idx[k]], vk[idx[k]])
        assert math.isclose(float(loss[k].detach()), float(ref.detach()), rel_tol=1e-12)
        gw, gu, gv = torch.autograd.grad(ref, [wk, uk, vk])
        assert torch.allclose(grads[0][k], gw, rtol=1e-10, atol=1e-12)
        assert torch.allclose(grads[1][k, :, 0], gu, rtol=1e-10, atol=1e-12)
        assert torch.allclose(grads[2][k], gv, rtol=1e-10, atol=1e-12)
        assert gu.abs().sum() > 0 and gv.abs().sum() > 0  # both train; unseen samples do not
        seen = torch.zeros(N, dtype=torch.bool)
        seen[idx[k]] = True
        assert gu[~seen].abs().sum() == 0 and gv[~seen].abs().sum() == 0


def test_one_training_step_updates_network_u_and_v_like_the_reference():
    data = tiny_data(n=40, classes=3)
    sop = SparseOverparam(lr_u=5.0, lr_v=7.0, init_std=0.5)
    cfg = TrainConfig(model=ModelConfig(name="mlp_w8"), steps=1, batch_size=8,
                      optim=OptimConfig(lr=0.1, lr_scaling="none", schedule="constant"),
                      interventions=(sop,))
    res = train(cfg, [0, 3], data=data, dtype=torch.float64, keep_state=True)
    d = data.to("cpu", torch.float64)
    for r in res:
        model = build("mlp_w8", d.input_shape, 3, generator=torch.Generator().manual_seed(
            derive_seed(r.seed, "init"))).double()
        idx = torch.randperm(40, generator=torch.Generator().manual_seed(
            derive_seed(r.seed, "order")))[:8]
        gs = torch.Generator().manual_seed(derive_seed(r.seed, "sop"))
        u0 = (torch.randn(40, 1, generator=gs, dtype=torch.float64) * 0.5)[:, 0]
        v0 = torch.randn(40, 3, generator=gs, dtype=torch.float64) * 0.5
        u0.requires_grad_(True)
        v0.requires_grad_(True)
        params = list(model.parameters())
        ref = reference_loss(model(d.x_train[idx]), d.y_train[idx], u0[idx], v0[idx])
        grads = torch.autograd.grad(ref, params + [u0, v0])
        for (name, p), gp in zip(model.named_parameters(), grads):
            assert torch.allclose(r.state[name], p.detach() - 0.1 * gp, rtol=1e-10, atol=1e-12)
        art = r.artifacts["sop"]
        assert torch.allclose(art["u"][:, 0], u0.detach() - 5.0 * grads[-2], atol=1e-12)
        assert torch.allclose(art["v"], v0.detach() - 7.0 * grads[-1], atol=1e-12)
        assert torch.allclose(art["s_norm"], noise_norms(art["u"], art["v"], d.y_train, 3))
        assert set(r.extra) >= {"sop_fit_acc", "sop_mean_s_norm"}


def test_noise_norms_by_hand():
    u = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    v = torch.tensor([[0.3, 0.4, 0.1], [1.5, 0.2, 0.0]], dtype=torch.float64)
    got = noise_norms(u, v, torch.tensor([1, 0]), 3)
    # sample 0, label 1: s = (-0.09, 0.25, -0.01); sample 1, label 0: s = (1, -0.04, 0)
    assert torch.allclose(got, torch.tensor([math.sqrt(0.09 ** 2 + 0.25 ** 2 + 0.01 ** 2),
                                             math.sqrt(1 + 0.04 ** 2)], dtype=torch.float64))


@dataclass(frozen=True)
class DoubledLoss(Intervention):
    """A test intervention replacing each member's loss by twice its mean cross-entropy."""

    kind: ClassVar[str] = "doubled_loss"
    needs_autograd: ClassVar[bool] = True

    def start(self, run):
        class _Doubled(Active):
            replaces_loss = True

            def loss(self, step):
                return 2.0 * step.losses.mean(1)

        return _Doubled()


@dataclass(frozen=True)
class FusedDoubled(DoubledLoss):
    kind: ClassVar[str] = "fused_doubled"
    needs_autograd: ClassVar[bool] = False


def test_a_replaced_loss_is_used_instead_of_the_batch_mean():
    """Twice the loss at rate lr is SGD with momentum at rate 2 lr (not 3 lr: replaced, not
    added)."""
    def run(lr, extra):
        cfg = TrainConfig(model=ModelConfig(name="mlp_w8"), epochs=2, batch_size=16,
                          optim=OptimConfig(lr=lr), interventions=extra)
        return train(cfg, [0, 1], data=tiny_data(), dtype=torch.float64, keep_state=True)

    doubled = run(0.05, (DoubledLoss(),))
    plain = run(0.1, (GradPenalty(lam=0.0),))  # the autograd path, nothing added
    for a, b in zip(doubled, plain):
        for k in a.state:
            assert torch.allclose(a.state[k], b.state[k], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="replace the loss"):
        run(0.1, (FusedDoubled(),))  # the fused step would ignore it
    with pytest.raises(ValueError, match="replace the loss"):
        run(0.1, (DoubledLoss(), SparseOverparam()))


# Metrics of the loop before the replaces-loss hook existed (its HEAD version, float64): the
# fused path, and the autograd path with an extra loss term.
PINNED = {
    (): [(1.1142377671006218, 1.089828086384536, 10.086716817404232),
         (1.0966215447276633, 1.135404573637588, 9.95587236272182)],
    (GradPenalty(lam=0.1),): [(1.1136558693673333, 1.090014681478173, 10.083647889974985),
                              (1.096411485918471, 1.1353674869510124, 9.955033028536004)],
}


@pytest.mark.parametrize("extra", list(PINNED))
def test_runs_without_sop_are_unchanged(extra):
    cfg = TrainConfig(model=ModelConfig(name="mlp_w8"), optim=OptimConfig(lr=0.05), epochs=2,
                      batch_size=16, interventions=extra)
    res = train(cfg, [0, 1], data=tiny_data(), dtype=torch.float64, keep_state=True)
    for r, (train_loss, test_loss, sq) in zip(res, PINNED[extra]):
        got = (r.train_loss, r.test_loss,
               float(sum(v.double().pow(2).sum() for v in r.state.values())))
        for a, b in zip(got, (train_loss, test_loss, sq)):
            assert math.isclose(a, b, rel_tol=1e-12)


def test_settings_identity_and_errors():
    cfg = TrainConfig(interventions=(SparseOverparam(lr_u=1.0),))
    assert canonical_json(cfg) == '{"interventions":[{"kind":"sop","lr_u":1.0}]}'
    assert from_dict(TrainConfig, to_canonical_dict(cfg)) == cfg
    for field in ("lr_u", "lr_v", "init_std"):
        with pytest.raises(ConfigError) as e:
            SparseOverparam(**{field: 0.0})
        assert e.value.field == f"sop.{field}"
    g = torch.Generator().manual_seed(0)
    reg = Dataset("reg", torch.randn(20, 3, generator=g), torch.randn(20, 1, generator=g),
                  torch.randn(5, 3, generator=g), torch.randn(5, 1, generator=g), num_classes=0,
                  task="regression")
    with pytest.raises(ConfigError) as e:
        train(TrainConfig(model=ModelConfig(name="mlp_w4"), epochs=1, batch_size=10,
                          interventions=(SparseOverparam(),)), [0], data=reg)
    assert e.value.field == "sop"
