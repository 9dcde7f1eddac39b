"""The spurious-groups generator against its generative model: shapes, the attribute's agreement
rate (binomial tolerance), balanced test groups, the feature blocks' means, the core-only Bayes
error Phi(-sqrt(d_core) / core_noise) (scipy), seeding, and validation naming the field."""

import numpy as np
import pytest
from scipy import stats

from overparam.data.synthetic import spurious_groups
from overparam.errors import ConfigError


def test_shapes_dtypes_and_counts():
    data = spurious_groups(n=300, n_val=50, n_test=80, d_core=7, d_spurious=5, d_noise=3)
    for split, m in ((data.train, 300), (data.val, 50), (data.test, 80)):
        assert split.x.shape == (m, 15) and split.x.dtype == np.float64
        assert split.y.shape == split.a.shape == (m,) and split.y.dtype == np.int64
        assert set(np.unique(split.y)) <= {0, 1} and set(np.unique(split.a)) <= {0, 1}
        counts = split.counts()
        assert sum(counts.values()) == m
        assert counts["y1a0"] == int(np.sum((split.y == 1) & (split.a == 0)))
    assert data.info["d_noise"] == 3 and data.info["val_agreement"] == 0.9


@pytest.mark.parametrize("agreement", [0.9, 0.95])
def test_agreement_rates_train_val_and_balanced_test(agreement):
    n = 20000
    data = spurious_groups(n=n, n_val=n, n_test=n, d_core=2, d_spurious=2,
                           agreement=agreement, data_seed=3)
    sd = np.sqrt(agreement * (1 - agreement) / n)
    for split in (data.train, data.val):  # validation: the training distribution by default
        assert abs(split.agreement() - agreement) < 4 * sd
        assert abs(np.mean(split.y) - 0.5) < 4 * np.sqrt(0.25 / n)
    assert abs(data.test.agreement() - 0.5) < 4 * np.sqrt(0.25 / n)
    # balanced: each of the four groups holds a quarter of the test set
    for count in data.test.counts().values():
        assert abs(count / n - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    other = spurious_groups(n=50, n_val=n, n_test=50, agreement=agreement, val_agreement=0.5)
    assert abs(other.val.agreement() - 0.5) < 4 * np.sqrt(0.25 / n)


def test_feature_blocks_follow_the_generative_model():
    data = spurious_groups(n=4000, n_val=10, n_test=10, d_core=20, d_spurious=10, d_noise=5,
                           core_noise=3.0, spurious_noise=0.5, data_seed=1)
    x, y, a = data.train.x, data.train.y, data.train.a
    core, spu, noise = x[:, :20], x[:, 20:30], x[:, 30:]
    for block, label, noise_sd in ((core, y, 3.0), (spu, a, 0.5)):
        for v in (0, 1):  # mean s(v) = 2v - 1 in every coordinate, sd noise_sd
            rows = block[label == v]
            se = noise_sd / np.sqrt(rows.shape[0])
            assert np.all(np.abs(rows.mean(0) - (2 * v - 1)) < 5 * se)
            assert np.allclose(rows.std(0, ddof=1), noise_sd, rtol=0.15)
    assert np.all(np.abs(noise.mean(0)) < 5 / np.sqrt(4000))
    assert np.allclose(noise.std(0, ddof=1), 1.0, rtol=0.1)


def test_core_only_bayes_error_matches_the_closed_form():
    """With y balanced and x_core | y ~ N(s(y) 1, sigma^2 I), the Bayes rule on the core block
    is sign(sum x_core), whose error is Phi(-sqrt(d_core) / sigma) (= Phi(-1) by default)."""
    data = spurious_groups(n=20000, n_val=10, n_test=10, d_spurious=1, data_seed=2)
    x, y = data.train.x, data.train.y
    err = np.mean((x[:, :100].sum(1) > 0) != (y == 1))
    ref = stats.norm.cdf(-np.sqrt(100) / 10.0)
    assert abs(err - ref) < 4 * np.sqrt(ref * (1 - ref) / 20000)


def test_seeded_and_global_rng_untouched():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    a = spurious_groups(n=30, n_val=5, n_test=5, data_seed=7)
    b = spurious_groups(n=30, n_val=5, n_test=5, data_seed=7)
    c = spurious_groups(n=30, n_val=5, n_test=5, data_seed=8)
    assert np.array_equal(np.random.get_state()[1], before)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.a, b.test.a)
    assert not np.array_equal(a.train.x, c.train.x)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"n_test": True}, "n_test"), ({"d_core": -1}, "d_core"),
    ({"d_noise": -1}, "d_noise"), ({"core_noise": -1.0}, "core_noise"),
    ({"agreement": 1.5}, "agreement"), ({"test_agreement": -0.1}, "test_agreement"),
    ({"val_agreement": 2.0}, "val_agreement")])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^invalid {field}="):
        spurious_groups(**kwargs)
