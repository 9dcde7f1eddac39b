"""The Mask intervention: a parent run's weights pruned, rewound, enforced by parameter."""

from dataclasses import replace

import pytest
import torch

from overparam.config import ModelConfig, OptimConfig, TrainConfig, from_dict, to_canonical_dict
from overparam.errors import ConfigError
from overparam.sparsity.lottery import Mask
from overparam.sparsity.masks import density, magnitude_prune, ones_like
from overparam.sweep import land, plain_result
from overparam.train import Ensemble, train
from overparam.train.interventions import Snapshot
from overparam.train.loop import build_members
from tests.train.test_train import tiny_data

TOTAL = 6 * 16 + 16 * 16 * 2 + 16 * 3  # prunable weights of mlp_w16 on 6 inputs, 3 classes


def trained(cfg, seeds, data, weights, dtype=torch.float32):
    res = train(cfg, seeds, data=data, keep_state=True, weights_dir=weights, dtype=dtype)
    for r in res:
        land(cfg, r.seed, plain_result(r), None, weights)
    return res


@pytest.fixture
def dense(tmp_path):
    cfg = TrainConfig(model=ModelConfig(name="mlp_w16"), optim=OptimConfig(lr=0.05), epochs=3,
                      batch_size=16)
    return cfg, trained(cfg, [0, 1], tiny_data(), tmp_path), tmp_path


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_ticket_is_rewound_masked_and_enforced_by_parameter(dense, optim):
    parent, res, weights = dense
    data = tiny_data()
    cfg = replace(parent, optim=OptimConfig(name=optim, lr=0.05, weight_decay=1e-3),
                  interventions=(Mask(parent=parent, density=0.3),))
    assert from_dict(TrainConfig, to_canonical_dict(cfg)) == cfg
    ticket = trained(cfg, [0, 1], data, weights)
    # the mask: exactly the magnitude mask of the parent's final weights (independent recompute)
    ens = Ensemble(build_members(parent, [0, 1], data))
    stacked = ens.stack([r.state for r in res])
    expected = ens.unstack(magnitude_prune(stacked, ones_like(stacked), 0.3))
    init = build_members(parent, [0, 1], data)
    for k, r in enumerate(ticket):
        mask = r.artifacts["mask"]
        assert set(mask) == {"layers.0.weight", "layers.1.weight", "layers.2.weight",
                             "layers.3.weight"}
        assert sum(int(m.sum()) for m in mask.values()) == round(0.3 * TOTAL)
        assert r.extra["density_measured"] == pytest.approx(round(0.3 * TOTAL) / TOTAL)
        for n, m in mask.items():
            assert torch.equal(m, expected[k][n])
            w = r.state[n]
            assert torch.all(w[m == 0] == 0)  # pruned weights exactly zero after training
            moved = w[m > 0] != init[k].state_dict()[n][m > 0]
            assert moved.float().mean() > 0.9  # survivors trained from the rewound init


def test_optimizer_state_of_pruned_weights_is_zero(dense):
    parent, _, weights = dense
    from overparam.sparsity import lottery as lot
    from overparam.train.interventions import Run
    from overparam.weights import WeightStore

    data = tiny_data()
    cfg = replace(parent, interventions=(Mask(parent=parent, density=0.2),))
    ens = Ensemble(build_members(cfg, [0, 1], data))
    run = Run(cfg, [0, 1], data, ens, "cpu", torch.float32, 9, 3,
              [torch.Generator() for _ in range(2)], WeightStore(weights))
    active = lot._Mask(cfg.interventions[0], run)
    from overparam.train.optim import make_optimizer

    opt = make_optimizer(cfg.optim, ens.parameters(), 0.05)
    x = torch.stack([data.x_train[:8]] * 2)
    y = torch.stack([data.y_train[:8]] * 2)
    ens.fused_loss_and_grad(x, y, "classification")
    step = type("S", (), {"optimizer": opt})()
    active.post_backward(step)
    for n, m in active.masks.items():
        assert torch.all(ens.params[n].grad[m == 0] == 0)
    opt.step()
    active.post_step(step)
    for n, m in active.masks.items():
        for state in opt.state_of(ens.params[n]):
            assert torch.all(state[m == 0] == 0) and torch.any(state[m > 0] != 0)


def test_chain_controls_and_rewinding(tmp_path):
    data = tiny_data()
    root = TrainConfig(model=ModelConfig(name="mlp_w16"), optim=OptimConfig(lr=0.05), epochs=3,
                       batch_size=16, interventions=(Snapshot(step=2),))
    base = replace(root, interventions=())
    roots = trained(root, [0, 1], data, tmp_path)
    r1 = replace(base, interventions=(Mask(parent=root, density=0.5, rewind_step=2),))
    t1 = trained(r1, [0, 1], data, tmp_path)
    r2 = replace(base, interventions=(Mask(parent=r1, density=0.25, rewind_step=2),))
    t2 = trained(r2, [0, 1], data, tmp_path)
    assert r2.interventions[0].root() == root
    for a, b in zip(t1, t2):  # nested: round 2 keeps a subset of round 1's weights
        for n in a.artifacts["mask"]:
            assert torch.all(b.artifacts["mask"][n] <= a.artifacts["mask"][n])
    stacked = {n: torch.stack([r.artifacts["mask"][n] for r in t2])
               for n in t2[0].artifacts["mask"]}
    assert density(stacked) == pytest.approx([round(0.25 * TOTAL) / TOTAL] * 2)
    # rewound to the root's snapshot after 2 steps: the survivors start there (one SGD step
    # of round 2 from the snapshot, masked, is what the first step gives)
    snap = roots[0].artifacts["step2"]
    one = train(replace(r2, steps=1, optim=OptimConfig(lr=1e-12, momentum=0.0)), [0],
                data=data, keep_state=True, weights_dir=tmp_path)[0]
    for n, m in t2[0].artifacts["mask"].items():
        assert torch.allclose(one.state[n], snap[n] * m, atol=1e-9)
    # controls: the same mask from a fresh initialization; a random mask of the same counts
    reinit = trained(replace(base, interventions=(
        Mask(parent=r1, density=0.25, rewind_step=2, init="reinit"),)), [0, 1], data, tmp_path)
    rand = trained(replace(base, interventions=(
        Mask(parent=r1, density=0.25, rewind_step=2, random=True),)), [0, 1], data, tmp_path)
    for k in range(2):
        for n, m in t2[k].artifacts["mask"].items():
            assert torch.equal(reinit[k].artifacts["mask"][n], m)
            r = rand[k].artifacts["mask"][n]
            assert int(r.sum()) == int(m.sum()) and not torch.equal(r, m)
    assert roots[0].artifacts["step2"]["layers.0.weight"].shape == (16, 6)


def test_mask_settings_are_validated(tmp_path):
    parent = TrainConfig()
    for kwargs, field in (({"density": 0.0}, "mask.density"), ({"density": 1.5}, "mask.density"),
                          ({"density": 0.5, "scope": "row"}, "mask.scope"),
                          ({"density": 0.5, "init": "zeros"}, "mask.init")):
        with pytest.raises(ConfigError) as e:
            Mask(parent=parent, **kwargs)
        assert e.value.field == field
    cfg = TrainConfig(model=ModelConfig(name="mlp_w8"), epochs=1, batch_size=16,
                      interventions=(Mask(parent=parent, density=0.5),))
    with pytest.raises(ConfigError, match="weights"):
        train(cfg, [0], data=tiny_data())  # no weights directory to read the parent from
    with pytest.raises(FileNotFoundError, match="not stored"):
        train(cfg, [0], data=tiny_data(), weights_dir=tmp_path)
