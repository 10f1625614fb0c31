"""Where torch computations run, and with how many threads.

One place decides the device: CUDA when present, else CPU. A bigger run of a chapter is the same
code with ``device=dsnn.device.default()`` on a machine with a GPU; no function hard-codes
``.cuda()``. Functions that create tensors from numbers, arrays or seeds take ``device=`` and draw
their random numbers on the CPU before moving them (the same numbers on every device); functions
that receive tensors or networks compute on the device where those live.
"""

from __future__ import annotations

import os

import torch


def default(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Parameters
    ----------
    prefer : str, torch.device or None
        ``None`` picks CUDA if available, else CPU. ``"cpu"`` or ``"cuda"`` (or a
        ``torch.device``) forces a choice; asking for CUDA where there is none is an error.
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"prefer must be None, 'cpu' or 'cuda', got {prefer!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"prefer={prefer!r} asks for CUDA, but no CUDA device is available")
    if device.type not in {"cpu", "cuda"}:
        raise ValueError(f"prefer must be None, 'cpu' or 'cuda', got {prefer!r}")
    return device


def configure_threads(n_threads: int | None = None) -> int:
    """Set the number of torch intra-op threads and return it.

    ``None`` reads ``OMP_NUM_THREADS`` (the Makefile sets 1) and falls back to 1. On small
    machines a single thread is usually faster for the book's small tensors.
    """
    if n_threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "1")
        n_threads = int(env) if env.isdigit() and int(env) > 0 else 1
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    torch.set_num_threads(n_threads)
    return n_threads
