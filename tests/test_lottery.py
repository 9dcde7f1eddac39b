import pytest
import torch

from overparam.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from overparam.data.dataset import Dataset
from overparam.sparsity.lottery import train_dense, train_masked
from overparam.sparsity.masks import (
    density,
    magnitude_prune,
    ones_like,
    prunable,
    random_like,
    schedule,
)


def data():
    g = torch.Generator().manual_seed(0)
    return Dataset("tiny", torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g),
                   torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g),
                   num_classes=3)


def test_schedule_lands_exactly_on_every_level():
    targets = [0.7, 0.5, 0.3, 0.2, 0.1, 0.05]
    s = schedule(targets, 0.2)
    assert all(t in s for t in targets) and s == sorted(s, reverse=True)
    ratios = [b / a for a, b in zip([1.0] + s[:-1], s)]
    assert all(r >= 0.8 - 1e-12 for r in ratios)  # never more than 20% of survivors per round
    assert len(s) == 17  # ceil(log(t/d) / log 0.8) rounds per level: 2 + 2 + 3 + 2 + 4 + 4
    assert schedule([0.5, 0.1], 0.0) == [0.5, 0.1]
    with pytest.raises(ValueError):
        schedule([0.5], 1.0)


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_magnitude_pruning_density_and_nesting(scope):
    g = torch.Generator().manual_seed(1)
    params = {"a.weight": torch.randn(2, 8, 5, generator=g), "a.bias": torch.randn(2, 8),
              "b.weight": torch.randn(2, 3, 8, generator=g)}
    assert prunable(params) == ["a.weight", "b.weight"]
    masks = ones_like(params)
    total = 8 * 5 + 3 * 8
    for target in (0.8, 0.5, 0.2):
        new = magnitude_prune(params, masks, target, scope)
        for k in range(2):
            kept = sum(int(m[k].sum()) for m in new.values())
            if scope == "global":
                assert kept == round(target * total)
            else:
                assert int(new["a.weight"][k].sum()) == round(target * 40)
                assert int(new["b.weight"][k].sum()) == round(target * 24)
        for n in new:  # pruned weights never come back
            assert torch.all(new[n] <= masks[n])
        # kept weights are the largest surviving ones
        if scope == "global":
            for k in range(2):
                kept_vals = torch.cat([params[n][k].abs()[new[n][k] > 0] for n in new])
                dropped = torch.cat([params[n][k].abs()[(new[n][k] == 0) & (masks[n][k] > 0)]
                                     for n in new])
                if len(dropped):
                    assert kept_vals.min() >= dropped.max()
        masks = new
    rnd = random_like(masks, torch.Generator().manual_seed(0))
    for n in masks:
        assert torch.equal(rnd[n].flatten(1).sum(1), masks[n].flatten(1).sum(1))
        assert not torch.equal(rnd[n], masks[n])


def test_rewinding_masks_and_zero_pruned_weights_after_training():
    d = data()
    cfg = TrainConfig(model=ModelConfig(name="mlp_w16"), optim=OptimConfig(lr=0.05),
                      epochs=3, batch_size=16, data=DataConfig(name="digits"))
    seeds = [0, 1]
    _, ens, rewind = train_dense(cfg, seeds, d)
    params = {n: p.detach() for n, p in ens.params.items()}
    masks = magnitude_prune(params, ones_like(params), 0.3)
    captured = {}

    def grab(e):
        captured.update({n: p.detach().clone() for n, p in e.params.items()})

    results, ticket = train_masked(cfg, seeds, d, rewind, masks, extra=grab)
    # the rewound weights are exactly the masked initial weights
    for n, p in captured.items():
        expected = rewind[n] * masks[n] if n in masks else rewind[n]
        assert torch.equal(p, expected), n
    # after training: pruned weights exactly zero, density exactly as planned, weights moved
    for n, m in masks.items():
        assert torch.all(ticket.params[n].detach()[m == 0] == 0)
        assert not torch.equal(ticket.params[n].detach(), captured[n])
    total = 6 * 16 + 16 * 16 * 2 + 16 * 3  # prunable weights of mlp_w16 on 6 inputs, 3 classes
    assert sum(m[0].numel() for m in masks.values()) == total
    assert density(masks) == pytest.approx([round(0.3 * total) / total] * 2, abs=1e-12)
    kept_after = {n: (ticket.params[n].detach() != 0).float() for n in masks}
    assert density(kept_after) <= density(masks)
    assert all(r.train_acc >= 0 for r in results)


def test_rewind_to_iteration_k():
    d = data()
    cfg = TrainConfig(model=ModelConfig(name="mlp_w8"), epochs=2, batch_size=16)
    _, _, rewind0 = train_dense(cfg, [0], d, rewind_step=0)
    _, _, rewind3 = train_dense(cfg, [0], d, rewind_step=3)
    assert any(not torch.equal(rewind0[n], rewind3[n]) for n in rewind0)
    with pytest.raises(ValueError, match="rewind_step"):
        train_dense(cfg, [0], d, rewind_step=10_000)
