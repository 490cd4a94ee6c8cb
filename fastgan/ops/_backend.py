"""Backend selection shared by every fastgan op.

Three backends implement each op:

* ``'ref'``    pure PyTorch; float64-capable; the oracle and the CPU path.
* ``'triton'`` kernels from ``fastgan.kernels`` on CUDA tensors (and on CPU tensors when
  ``TRITON_INTERPRET=1`` is set before triton is imported, which is how CI exercises them).
* ``'cuda'``   the C++/CUDA extension ``fastgan._C`` built by ``setup.py``.

``impl=None`` picks the preferred available backend for the tensor's device (``FASTGAN_IMPL`` can
force one globally).  A backend that is chosen automatically and is missing is skipped quietly; one
that is requested explicitly (argument or environment) raises :class:`BackendUnavailableError` with
instructions.
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass

import torch

IMPLS = ("ref", "triton", "cuda")

# Preference on CUDA devices when impl=None.  Both fused backends move the minimal bytes; the order
# is provisional until bench/results holds GPU numbers for every op (see README, "Choosing a backend").
_CUDA_PREFERENCE = ("cuda", "triton", "ref")


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run here."""


@dataclass(frozen=True)
class ImplStatus:
    available: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.available


def _memo(fn):
    """Cache ``fn``'s result per argument tuple for the process.  A plain dict rather than
    functools.lru_cache: torch.compile traces through these calls, and Dynamo warns on every
    lru_cache-wrapped function it meets (it reads a dict without complaint)."""
    cache: dict = {}

    @functools.wraps(fn)
    def cached(*args):
        if args not in cache:
            cache[args] = fn(*args)
        return cache[args]

    cached.cache_clear = cache.clear
    return cached


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@_memo
def _triton_status() -> ImplStatus:
    try:
        importlib.import_module("triton")
    except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
        return ImplStatus(False, f"triton is not importable ({e}); `pip install triton`")
    return ImplStatus(True)


@_memo
def _cuda_ext_status() -> ImplStatus:
    try:
        importlib.import_module("fastgan._C")
    except Exception as e:  # noqa: BLE001
        return ImplStatus(False, "the CUDA extension fastgan._C is not built "
                          f"({type(e).__name__}: {e}); build it on a machine with nvcc and a CUDA "
                          "build of torch: `FASTGAN_BUILD_CUDA=1 pip install -e . --no-build-isolation`")
    return ImplStatus(True)


def impl_status(impl: str, device: torch.device | str | None = None) -> ImplStatus:
    """Whether ``impl`` can run on tensors of ``device`` (default: the best device present)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if impl == "ref":
        return ImplStatus(True)
    if impl == "triton":
        st = _triton_status()
        if not st:
            return st
        if device.type == "cuda" and not triton_interpret():
            return ImplStatus(True)
        if device.type == "cpu" and triton_interpret():
            return ImplStatus(True)
        if device.type == "cpu":
            return ImplStatus(False, "triton runs on CUDA tensors; on CPU tensors only under the "
                              "interpreter (set TRITON_INTERPRET=1 before importing triton)")
        return ImplStatus(False, "TRITON_INTERPRET=1 is set: triton runs only on CPU tensors")
    # cuda
    if device.type != "cuda":
        return ImplStatus(False, f"the 'cuda' backend needs CUDA tensors, got device {device}")
    if not torch.cuda.is_available() or torch.version.cuda is None:
        return ImplStatus(False, "torch has no usable CUDA device")
    return _cuda_ext_status()


def available_impls(device: torch.device | str | None = None) -> dict[str, ImplStatus]:
    """Which backends can run on ``device`` and, for each that cannot, why."""
    return {name: impl_status(name, device) for name in IMPLS}


def resolve_impl(impl: str | None, device: torch.device, prefer: tuple[str, ...] | None = None) -> str:
    """The concrete backend for one call.  ``prefer``: the automatic choice's order on CUDA
    devices for this op (default cuda, triton, ref), backed by the op's benchmark numbers."""
    source = "impl"
    if impl is None:
        env = os.environ.get("FASTGAN_IMPL", "").strip()
        if env:
            impl, source = env, "FASTGAN_IMPL"
    if impl is not None:
        if impl not in IMPLS:
            raise ValueError(f"{source} must be one of {IMPLS} or None, got {impl!r}")
        st = impl_status(impl, device)
        if not st:
            raise BackendUnavailableError(f"{source}={impl!r} was requested but is unavailable: {st.reason}")
        return impl
    if device.type == "cuda":
        for name in prefer or _CUDA_PREFERENCE:
            if impl_status(name, device):
                return name
    return "ref"


@_memo
def cuda_ext_has_ops(*names: str) -> bool:
    """Whether the loaded fastgan._C registers every ``torch.ops.fastgan_cuda.<name>`` (an
    extension built from an older checkout may lack a newer op's kernels)."""
    try:
        for name in names:
            getattr(torch.ops.fastgan_cuda, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def fallback_if_ext_lacks_op(chosen: str, impl: str | None, device: torch.device, has_op: bool,
                             missing: str) -> str:
    """``chosen`` (from :func:`resolve_impl`), unless it is 'cuda' and the built extension lacks
    the op (``has_op`` False): then an explicit request (``impl`` or FASTGAN_IMPL) raises, naming
    ``missing`` and how to rebuild, and an automatic choice falls back quietly to triton / ref."""
    if chosen != "cuda" or has_op:
        return chosen
    requested = impl if impl is not None else (os.environ.get("FASTGAN_IMPL", "").strip() or None)
    if requested is not None:
        source = "impl" if impl is not None else "FASTGAN_IMPL"
        raise BackendUnavailableError(
            f"{source}='cuda' was requested but the built extension fastgan._C has no {missing}; "
            "rebuild it: `FASTGAN_BUILD_CUDA=1 pip install -e . --no-build-isolation`")
    return "triton" if impl_status("triton", device) else "ref"
