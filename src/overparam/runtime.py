"""Process-level settings for a command or worker process (never applied at import).

* one torch thread (``OVERPARAM_THREADS`` overrides): on a busy 2-core machine the default made
  small-model training 3.5-30x slower;
* glibc's malloc keeps freed blocks instead of returning them with ``munmap``: PyTorch's CPU
  allocator asks malloc for every activation, and blocks above the mmap threshold (128 KiB)
  were page-faulted afresh at each training step (measured here: ~8% of a small-MLP step).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def configure_process(threads: int | None = None) -> None:
    """Apply the settings above to the current process."""
    import torch

    if threads is None:
        threads = int(os.environ.get("OVERPARAM_THREADS", "1"))
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return
        mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)
