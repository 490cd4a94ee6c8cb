"""``custom_op``: fastgan's ``torch.library`` ops, with an eager fast path around the dispatcher.

Every fastgan op is a ``torch.library.custom_op`` with a fake and an autograd formula: that is what
``torch.compile``, ``torch.export``, ``opcheck``, FakeTensor, functorch and the profiler see.  In
plain eager mode, though, a Python custom op costs two trips through the dispatcher (its autograd
kernel, then its backend kernel, each unpacking the schema), about 15 us per call on this project's
hosts and 50-100 us with a backward: more than the kernels of StyleGAN2's 4^2..64^2 layers take.

:func:`custom_op` registers the op exactly as ``torch.library.custom_op`` does and returns a
:class:`FastOp`.  Called in plain eager mode, a FastOp runs the *same* function, setup_context and
backward through a ``torch.autograd.Function`` (or calls the function directly when no input needs a
gradient), so results are bitwise identical and backward ops called from a backward formula take the
fast path too.  It hands the call to the registered op whenever anything could observe the
difference: torch.compile / export tracing, tensor subclasses (FakeTensor, FunctionalTensor,
DTensor, ...), Python dispatch or function modes (make_fx, FlopCounterMode), functorch transforms,
the JIT tracer.  Under the autograd profiler the fast path records the op's name, so profiles still
show ``fastgan::<op>``.  ``FASTGAN_EAGER_FAST_PATH=0`` (read at import) sends every call through the
dispatcher.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["custom_op", "FastOp", "fast_path_enabled", "eager_fast_path", "input_grad_used",
           "engine_pruning"]

_ENABLED = os.environ.get("FASTGAN_EAGER_FAST_PATH", "1").strip() not in ("0", "false", "no", "off")

# Argument types the fast path accepts as they are; anything else (a tensor subclass, an fx Proxy,
# a SymInt) goes through the dispatcher, which knows how to handle it.
_PLAIN = frozenset({Tensor, torch.nn.Parameter, type(None), int, float, bool, str,
                    torch.dtype, torch.device})
_SCALARS = frozenset({int, float, bool})

_C = torch._C
try:  # the internals _plain_eager reads
    _ = (_C._len_torch_function_stack, _C._len_torch_dispatch_stack,
               _C._are_functorch_transforms_active, _C._get_tracing_state,
               _C._autograd._profiler_enabled, _C._any_requires_grad)
    _SUPPORTED = True
except AttributeError:  # a torch without these internals: always use the dispatcher
    _SUPPORTED = False
_ENABLED = _ENABLED and _SUPPORTED


def fast_path_enabled() -> bool:
    return _ENABLED


@contextlib.contextmanager
def eager_fast_path(enabled: bool):
    """Within the block, eager calls take the fast path (``True``, the default where this torch
    supports it) or the dispatcher (``False``; what the benchmark and the parity tests compare).
    Process-wide, not thread-local."""
    global _ENABLED
    prev, _ENABLED = _ENABLED, bool(enabled) and _SUPPORTED
    try:
        yield
    finally:
        _ENABLED = prev


_ENGINE_PRUNING = True


@contextlib.contextmanager
def engine_pruning(enabled: bool):
    """Within the block, :func:`input_grad_used` does (``True``, the default) or does not
    (``False``) ask the engine; benchmark-only: what a backward that reads only
    ``ctx.needs_input_grad`` costs.  Process-wide, not thread-local."""
    global _ENGINE_PRUNING
    prev, _ENGINE_PRUNING = _ENGINE_PRUNING, bool(enabled)
    try:
        yield
    finally:
        _ENGINE_PRUNING = prev


def input_grad_used(ctx, i: int) -> bool:
    """Whether a backward formula must compute the gradient of its node's input ``i``:
    ``ctx.needs_input_grad[i]``, refined by autograd's engine, as PyTorch's own C++ backward
    nodes do.  ``needs_input_grad`` is fixed at forward time, so it stays True for a parameter
    inside ``torch.autograd.grad(out, x)`` (a gradient penalty's inner pass) or
    ``out.backward(inputs=[x])``; the engine knows that the node at the other end of that input's
    edge (its ``grad_fn``, or a leaf's AccumulateGrad) will not run, and this returns False.

    Every other engine answer means "used": a leaf that ``torch.autograd.grad`` returns (the
    engine raises for those), no engine pass running (a backward traced by torch.compile, or
    called directly).  The edge is the node's own (``ctx.next_functions``), never rebuilt from a
    saved tensor, so checkpointing's recomputed saved tensors cannot mislead it; the query costs
    well under a microsecond."""
    if not ctx.needs_input_grad[i]:
        return False
    if not _ENGINE_PRUNING or torch.compiler.is_compiling():
        return True  # a compiled backward is traced once for every later call: never skip there
    try:
        node = ctx.next_functions[i][0]
        return node is None or bool(_C._will_engine_execute_node(node))
    except (RuntimeError, AttributeError, IndexError, TypeError):
        return True


def _plain_eager(args) -> bool:
    """Whether nothing but plain eager autograd would see this call."""
    if torch.compiler.is_compiling():  # first: Dynamo folds it, so it never traces the rest
        return False
    if (_C._len_torch_function_stack() or _C._len_torch_dispatch_stack()
            or _C._are_functorch_transforms_active()
            or _C._get_tracing_state() is not None):
        return False
    for a in args:
        t = type(a)
        if t in _PLAIN:
            continue
        if (t is list or t is tuple) and all(type(e) in _SCALARS for e in a):
            continue
        return False
    return True


class FastOp:
    """A registered custom op (``.op``, a ``CustomOpDef``) plus its eager fast path.

    ``register_fake`` and ``register_autograd`` register on the op as usual; calling the FastOp
    dispatches as described in the module docstring."""

    def __init__(self, op, fn: Callable):
        self.op = op
        self.name = op._qualname if hasattr(op, "_qualname") else str(op)
        self._fn = fn
        self._function: Optional[type] = None
        # The dispatcher turns an int passed for a float argument into a float; so must the fast
        # path (a Triton launch would otherwise specialise on an int).  Without the schema (a
        # torch whose CustomOpDef lacks these internals) this op always takes the dispatcher.
        schema = getattr(getattr(op, "_opoverload", None), "_schema", None)
        self._usable = schema is not None
        self._float_args = () if schema is None else tuple(
            i for i, a in enumerate(schema.arguments) if str(a.type) in ("float", "float?"))
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn

    def register_fake(self, fake: Callable) -> Callable:
        return self.op.register_fake(fake)

    def register_autograd(self, backward: Callable, *, setup_context: Callable) -> None:
        self.op.register_autograd(backward, setup_context=setup_context)
        fn = self._fn

        def forward(ctx, *args):
            out = fn(*args)
            setup_context(ctx, args, out)
            return out

        # The same autograd contract as torch.library's generated Function (materialised grads,
        # ctx.needs_input_grad per input), minus the dispatcher.  Old-style forward(ctx, ...) and
        # the C apply: Function.apply would rebind the arguments through inspect.signature on
        # every call (a new-style setup_context) and scan for functorch wrappers, which
        # _plain_eager has already excluded.
        function = type("FastGrad_" + self.name.replace("::", "_"), (torch.autograd.Function,),
                        {"forward": staticmethod(forward), "backward": staticmethod(backward)})
        self._apply = super(torch.autograd.Function, function).apply
        self._function = function

    def __call__(self, *args):
        if not (_ENABLED and self._usable and _plain_eager(args)):
            return self.op(*args)
        if _C._autograd._profiler_enabled():
            with torch.profiler.record_function(self.name):
                return self._eager(args)
        return self._eager(args)

    def _eager(self, args):
        for i in self._float_args:
            if type(args[i]) is int:
                args = tuple(float(a) if j in self._float_args and type(a) is int else a
                             for j, a in enumerate(args))
                break
        if self._function is not None and torch.is_grad_enabled() and _C._any_requires_grad(*args):
            return self._apply(*args)
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"FastOp({self.name})"


def custom_op(name: str, *, mutates_args=()) -> Callable[[Callable], FastOp]:
    """``torch.library.custom_op(name, mutates_args=...)`` returning a :class:`FastOp`."""
    if mutates_args:
        raise ValueError("fastgan's fast path supports functional ops only (mutates_args=())")

    def decorate(fn: Callable) -> FastOp:
        return FastOp(torch.library.custom_op(name, mutates_args=())(fn), fn)

    return decorate
