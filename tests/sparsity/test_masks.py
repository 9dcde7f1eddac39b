import pytest
import torch

from overparam.sparsity.masks import (
    magnitude_prune,
    ones_like,
    prunable,
    random_like,
    schedule,
)


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
    rnd = random_like(masks, [torch.Generator().manual_seed(k) for k in range(2)])
    for n in masks:
        assert torch.equal(rnd[n].flatten(1).sum(1), masks[n].flatten(1).sum(1))
        assert not torch.equal(rnd[n], masks[n])
