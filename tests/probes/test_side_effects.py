"""Every probe leaves the model bit-identical: state dict, training flags, ``.grad``."""

import copy

import pytest
import torch

from overparam.models import build
from overparam.probes import hessian, landscape, ntk, perturb
from tests.probes.helpers import ce, tiny_cases


def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()])


def assert_unchanged(model, snap):
    state, flags, grads = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    for k in state:
        assert torch.equal(state[k], now[k]), k
    assert flags == [m.training for m in model.modules()]
    for g0, p in zip(grads, model.parameters()):
        assert (g0 is None and p.grad is None) or torch.equal(g0, p.grad)


def prepared(name):
    model, x, y = tiny_cases()[name]
    model = copy.deepcopy(model)
    model.train()  # probes default to eval mode: the flag must come back as it was
    if name == "bn_cnn_eval":
        model[1].eval()  # mixed flags survive too
    ce(model(x), y).backward()  # a populated .grad (BN running stats move here, before the snapshot)
    next(model.parameters()).grad = None  # and one None
    return model, x, y


PROBES = {
    "top_lanczos": lambda m, x, y: hessian.top_eigenvalues(m, ce, x, y, k=2),
    "top_power_train_mode": lambda m, x, y: hessian.top_eigenvalues(
        m, ce, x, y, method="power", max_iter=20, train=True),
    "trace_batched": lambda m, x, y: hessian.trace(m, ce, x, y, n_probes=3, batch_size=5),
    "density": lambda m, x, y: hessian.density(m, ce, x, y, n_probes=2, lanczos_steps=5),
    "perturb": lambda m, x, y: perturb.perturbation_sensitivity(m, ce, x, y, n_samples=2),
    "perturb_filter": lambda m, x, y: perturb.perturbation_sensitivity(
        m, ce, x, y, n_samples=2, filter_normalized=True, train=True),
    "eps_sharpness": lambda m, x, y: perturb.epsilon_sharpness(m, ce, x, y, max_iter=2),
    "interpolate": lambda m, x, y: landscape.interpolate(m, copy.deepcopy(m), ce, x, y,
                                                         alphas=[0.0, 0.5]),
    "slice": lambda m, x, y: landscape.slice_2d(m, ce, x, y, resolution=3),
    "barrier": lambda m, x, y: landscape.mode_connectivity_barrier(m, copy.deepcopy(m), x, y,
                                                                   n_points=3),
    "ntk_jacobian": lambda m, x, y: ntk.empirical_ntk(m, x[:4], implementation="jacobian"),
    "ntk_ntvp": lambda m, x, y: ntk.empirical_ntk(m, x[:4], implementation="ntvp"),
}


@pytest.mark.parametrize("case", ["relu_mlp", "bn_cnn_eval"])
@pytest.mark.parametrize("probe", list(PROBES))
def test_probe_leaves_model_unchanged(case, probe):
    model, x, y = prepared(case)
    snap = snapshot(model)
    PROBES[probe](model, x, y)
    assert_unchanged(model, snap)


def test_structured_ntk_leaves_mlp_unchanged():
    model = build("mlp_w8", (5,), 3, seed=0).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    model.train()
    ce(model(x), torch.tensor([0, 1, 2, 0])).backward()
    snap = snapshot(model)
    ntk.empirical_ntk(model, x, implementation="structured")
    assert_unchanged(model, snap)
