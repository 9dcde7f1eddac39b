import os

import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated data sets are cached in a per-session directory."""
    old = os.environ.get("OVERPARAM_CACHE")
    os.environ["OVERPARAM_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("OVERPARAM_CACHE", None)
    else:
        os.environ["OVERPARAM_CACHE"] = old
