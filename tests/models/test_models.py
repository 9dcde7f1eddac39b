import pytest
import torch

from overparam.errors import ConfigError
from overparam.models import build, count_params, parse_name

# The blueprint's tables (section V-A, V-E): MLP on 784 inputs, 10 classes.
MLP_COUNTS = {8: 6_514, 16: 13_274, 32: 27_562, 64: 59_210, 128: 134_794, 256: 335_114,
              512: 932_362, 1024: 2_913_290, 2048: 10_020_874, 4096: 36_818_954}
# CNN on 3x32x32, without BatchNorm's affine parameters (section V-A).
CNN_COUNTS = {4: 72_990, 8: 152_082, 16: 337_050, 32: 814_122, 64: 2_196_810, 96: 4_150_890}


@pytest.mark.parametrize("width, expected", sorted(MLP_COUNTS.items()))
def test_mlp_counts_match_blueprint(width, expected):
    model = build(f"mlp_w{width}", (1, 28, 28), 10, device="meta" if width > 1024 else "cpu")
    assert count_params(model) == expected


@pytest.mark.parametrize("c, expected", sorted(CNN_COUNTS.items()))
def test_cnn_counts_match_blueprint(c, expected):
    model = build(f"cnn_c{c}", (3, 32, 32), 10)
    assert count_params(model, include_norm_affine=False) == expected
    # with BatchNorm's affine parameters: 2 per channel of each of the six BN layers
    assert count_params(model) == expected + 2 * 2 * (c + 2 * c + 4 * c)


def test_names_parse_and_errors():
    assert parse_name("mlp_w128").depth == 4 and parse_name("mlp_w64_d6").depth == 6
    assert parse_name("cnn_c16").width == 16
    for bad in ("mlp_w0", "mlp", "cnn_c", "mlp_w8_d0", "transformer"):
        with pytest.raises(ConfigError, match="model"):
            parse_name(bad)


def test_seeded_init_is_reproducible_and_leaves_global_rng():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = build("mlp_w16", (40,), 10, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    b = build("mlp_w16", (40,), 10, seed=1)
    c = build("mlp_w16", (40,), 10, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def test_default_init_matches_pytorch_bounds():
    m = build("mlp_w256", (40,), 10, seed=0)
    w = m.layers[1].weight.detach()
    bound = 1 / 256 ** 0.5
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.95 * bound
    # uniform on [-b, b]: variance b^2 / 3
    assert abs(float(w.var()) - bound ** 2 / 3) < 0.05 * bound ** 2 / 3


def test_ntk_parameterization_forward_equals_scaled_standard():
    m = build("mlp_w32_d3", (5,), 2, parameterization="ntk", seed=0)
    x = torch.randn(4, 5, dtype=torch.float64)
    m = m.double()
    h = x
    for i, layer in enumerate(m.layers):
        h = (2 ** 0.5 / layer.in_features ** 0.5) * h @ layer.weight.T
        if i < 2:
            h = torch.relu(h)
    assert torch.allclose(m(x), h)
