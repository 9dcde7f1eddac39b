import gzip
import pickle

import numpy as np
import pytest
import torch

from overparam.data import load
from overparam.data.mnist1d import cache_key, settings
from overparam.data.transforms import noisy_labels, random_labels, subset_indices
from overparam.data.vision import (
    load_cifar10,
    load_mnist,
    read_idx,
    write_cifar_binary_batch,
    write_idx,
)
from overparam.errors import ConfigError, DatasetMissingError


def test_mnist1d_shapes_cache_and_global_rng_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_CACHE", str(tmp_path))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ds = load("mnist1d", standardize=False)
    assert np.array_equal(np.random.get_state()[1], before)
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.y_train.dtype == torch.int64 and int(ds.y_train.max()) == 9
    files = list((tmp_path / "mnist1d").glob("*.npz"))
    assert len(files) == 1 and files[0].stem == cache_key(settings())
    again = load("mnist1d", standardize=False)
    assert torch.equal(ds.x_train, again.x_train)
    small = load("mnist1d", num_samples=500, standardize=False)
    assert small.x_train.shape == (400, 40)
    assert len(list((tmp_path / "mnist1d").glob("*.npz"))) == 2


def test_digits():
    ds = load("digits")
    assert ds.x_train.shape[1] == 64 and ds.n_train + len(ds.x_test) == 1797


def test_label_noise_is_exact_and_always_wrong():
    y = np.random.default_rng(0).integers(0, 10, 1000)
    noisy, flip = noisy_labels(y, 0.2, 10, seed=3)
    assert flip.sum() == 200
    assert np.all(noisy[flip] != y[flip]) and np.all(noisy[~flip] == y[~flip])
    again, _ = noisy_labels(y, 0.2, 10, seed=3)
    assert np.array_equal(noisy, again)
    other, _ = noisy_labels(y, 0.2, 10, seed=4)
    assert not np.array_equal(noisy, other)
    # wrong classes are spread over all the other classes
    assert len(np.unique((noisy[flip] - y[flip]) % 10)) == 9


def test_dataset_transforms_through_load():
    ds = load("digits", n_train=300, label_noise=0.1, seed=1)
    assert ds.n_train == 300 and ds.info["n_noisy"] == 30
    clean = ds.info["clean_y_train"]
    assert int((clean != ds.y_train).sum()) == 30
    assert abs(float(ds.x_train.mean())) < 1e-5 and abs(float(ds.x_train.std()) - 1) < 1e-3
    rl = load("digits", random_labels=True)
    assert not torch.equal(rl.y_train, load("digits").y_train)
    assert len(random_labels(50, 10, 0)) == 50
    with pytest.raises(ConfigError, match="n_train"):
        subset_indices(100, 101, 0)
    with pytest.raises(ConfigError, match="label_noise"):
        load("linear", label_noise=0.1)


def test_per_channel_standardization_on_images(tmp_path):
    _write_cifar_binary(tmp_path, n=20)
    ds = load("cifar10", root=tmp_path, download=False)
    m = ds.x_train.mean(dim=(0, 2, 3))
    s = ds.x_train.std(dim=(0, 2, 3))
    assert torch.allclose(m, torch.zeros(3), atol=1e-5) and torch.allclose(s, torch.ones(3), atol=1e-4)


def _mnist_arrays(n, seed):
    g = np.random.default_rng(seed)
    return g.integers(0, 256, (n, 28, 28), dtype=np.uint8), g.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_reader(tmp_path, gz):
    x, y = _mnist_arrays(12, 0)
    xt, yt = _mnist_arrays(5, 1)
    folder = tmp_path / "mnist"
    folder.mkdir()
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", xt)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", yt)
    if gz:  # a real gzip stream, readable by the standard library
        raw = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
        assert raw[:4] == b"\x00\x00\x08\x01"
    ds = load_mnist(root=tmp_path, download=False)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert np.allclose(ds.x_train[:, 0].numpy() * 255, x)
    assert np.array_equal(ds.y_train.numpy(), y)
    assert np.array_equal(read_idx(folder / f"t10k-labels-idx1-ubyte{ext}"), yt)


def test_idx_reader_rejects_truncated_file(tmp_path):
    x, _ = _mnist_arrays(3, 0)
    write_idx(tmp_path / "a", x)
    data = (tmp_path / "a").read_bytes()
    (tmp_path / "a").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="expected"):
        read_idx(tmp_path / "a")


def test_missing_mnist_offline_is_one_line(tmp_path):
    with pytest.raises(DatasetMissingError) as e:
        load_mnist(root=tmp_path, download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "train-images-idx3-ubyte" in msg


def _write_cifar_binary(root, n):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    g = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_cifar_binary_batch(folder / name, g.integers(0, 256, (n, 3, 32, 32)),
                                 g.integers(0, 10, n))


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    g = np.random.default_rng(0)
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = g.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = g.integers(0, 10, 4).tolist()
        expected[name] = (data, labels)
        with open(folder / name, "wb") as f:  # the format of the official python batches
            pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data}, f, protocol=2)
    ds = load_cifar10(root=tmp_path, download=False)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    d1, l1 = expected["data_batch_1"]
    assert np.allclose(ds.x_train[:4].numpy() * 255, d1.reshape(4, 3, 32, 32))
    assert ds.y_train[:4].tolist() == l1


def test_cifar10_unpickler_refuses_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": __import__("collections").OrderedDict()}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar10(root=tmp_path, download=False)


def test_cifar10_binary_and_missing(tmp_path):
    _write_cifar_binary(tmp_path, n=3)
    ds = load_cifar10(root=tmp_path, download=False)
    assert ds.x_train.shape == (15, 3, 32, 32) and ds.info["format"] == "binary"
    with pytest.raises(DatasetMissingError, match="cifar-10-batches-py"):
        load_cifar10(root=tmp_path / "nothing", download=False)


def test_synthetic_sets():
    lin = load("linear", n=50, d=20, noise=0.1, standardize=False)
    assert lin.task == "regression" and lin.x_train.shape == (50, 20) and lin.y_train.shape == (50, 1)
    beta = torch.tensor(lin.info["beta"], dtype=torch.float32)
    resid = lin.y_train[:, 0] - lin.x_train @ beta
    assert 0.05 < float(resid.std()) < 0.2
    t = load("teacher", n=100, d=5)
    assert t.num_classes == 10 and t.x_train.shape == (100, 5)
