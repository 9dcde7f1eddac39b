"""MNIST (IDX files) and CIFAR-10 (python or binary batches) from a local root directory.

Files are looked for under ``root`` (default :func:`data_root`), in ``root``, ``root/mnist``,
``root/MNIST/raw`` for MNIST and ``root/cifar-10-batches-py`` / ``root/cifar-10-batches-bin`` for
CIFAR-10. When they are missing and ``download`` is true, the standard archives are fetched; when
that fails (offline), :class:`DatasetMissingError` says in one line where to put which files.

IDX format (LeCun et al. 1998): big-endian magic ``0x0000 0803`` (images, then n, rows, cols as
uint32) or ``0x0000 0801`` (labels, then n), followed by uint8 data; files may be gzipped.
CIFAR-10 (Krizhevsky 2009): the python batches are pickled dicts with ``data`` (uint8
``[10000, 3072]``) and ``labels``; they are read with an unpickler that admits only numpy array
reconstruction and plain containers, never arbitrary classes. The binary batches hold records of
one label byte and 3,072 pixel bytes.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from overparam.data.dataset import Dataset, data_root, from_numpy
from overparam.errors import DatasetMissingError

MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array of its declared shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} bytes of data, found {data.size}")
    return data.reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _find(base: Path, stem: str) -> Path | None:
    for folder in (base, base / "mnist", base / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _download(url: str, dest: Path, timeout: float = 20.0) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, tmp)
    Path(tmp.name).replace(dest)


def load_mnist(root: str | Path | None = None, download: bool = True) -> Dataset:
    """MNIST: 60,000 train / 10,000 test 28x28 grey images as ``[n, 1, 28, 28]`` in [0, 1]."""
    base = Path(root) if root is not None else data_root()
    paths = {k: _find(base, stem) for k, stem in MNIST_FILES.items()}
    if any(p is None for p in paths.values()) and download:
        for key, stem in MNIST_FILES.items():
            if paths[key] is not None:
                continue
            for mirror in MNIST_MIRRORS:
                try:
                    _download(mirror + stem + ".gz", base / "mnist" / (stem + ".gz"))
                    paths[key] = base / "mnist" / (stem + ".gz")
                    break
                except OSError:
                    continue
    missing = [MNIST_FILES[k] + "[.gz]" for k, p in paths.items() if p is None]
    if missing:
        raise DatasetMissingError(
            f"MNIST files not found and could not be downloaded: put {', '.join(missing)} "
            f"in {base / 'mnist'} (or set OVERPARAM_DATA)")
    x = read_idx(paths["train_x"]).astype(np.float32)[:, None] / 255.0
    xt = read_idx(paths["test_x"]).astype(np.float32)[:, None] / 255.0
    return from_numpy("mnist", x, read_idx(paths["train_y"]).astype(np.int64), xt,
                      read_idx(paths["test_y"]).astype(np.int64), num_classes=10)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits numpy array reconstruction and nothing else: no arbitrary code on load."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images ``[n, 3, 32, 32]`` uint8 and labels ``[n]``."""
    with open(path, "rb") as f:
        d = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(d["labels"], dtype=np.int64)


def read_cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte + 3,072 pixel bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{path}: size {raw.size} is not a multiple of 3073")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _cifar_files(base: Path) -> tuple[list[Path], Path, str] | None:
    py = base / "cifar-10-batches-py"
    if all((py / f"data_batch_{i}").is_file() for i in range(1, 6)) and (py / "test_batch").is_file():
        return [py / f"data_batch_{i}" for i in range(1, 6)], py / "test_batch", "python"
    bn = base / "cifar-10-batches-bin"
    if all((bn / f"data_batch_{i}.bin").is_file() for i in range(1, 6)) and (bn / "test_batch.bin").is_file():
        return [bn / f"data_batch_{i}.bin" for i in range(1, 6)], bn / "test_batch.bin", "binary"
    return None


def load_cifar10(root: str | Path | None = None, download: bool = True) -> Dataset:
    """CIFAR-10: 50,000 train / 10,000 test colour images as ``[n, 3, 32, 32]`` in [0, 1]."""
    base = Path(root) if root is not None else data_root()
    found = _cifar_files(base)
    if found is None and download:
        archive = base / "cifar-10-python.tar.gz"
        try:
            _download(CIFAR10_URL, archive, timeout=60.0)
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(base, filter="data")
            found = _cifar_files(base)
        except (OSError, tarfile.TarError):
            found = None
    if found is None:
        raise DatasetMissingError(
            "CIFAR-10 not found and could not be downloaded: extract cifar-10-python.tar.gz "
            f"(or the binary version) so that {base / 'cifar-10-batches-py'} holds data_batch_1..5 "
            "and test_batch (or set OVERPARAM_DATA)")
    train_files, test_file, kind = found
    reader = read_cifar_python_batch if kind == "python" else read_cifar_binary_batch
    parts = [reader(p) for p in train_files]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    xt, yt = reader(test_file)
    return from_numpy("cifar10", x, y, xt.astype(np.float32) / 255.0, yt, num_classes=10,
                      format=kind)


def write_cifar_binary_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write images ``[n, 3, 32, 32]`` uint8 and labels as a CIFAR-10 binary batch."""
    rec = np.concatenate([np.asarray(labels, np.uint8)[:, None],
                          np.asarray(images, np.uint8).reshape(len(labels), -1)], axis=1)
    path.write_bytes(rec.tobytes())


