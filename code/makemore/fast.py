"""The lecture's training loop, same math, several times faster.

:func:`makemore.train.train` is the readable reference: every step runs a dozen
small PyTorch ops, each dispatched from Python, plus autograd's bookkeeping. At
batch size 32 the arithmetic is tiny (a few hundred thousand multiply-adds per
layer), so most of a step's millisecond is *overhead*, not math. This module
removes the overhead without changing the math:

1. **The model as data.** The layer list is reduced to a "plan" (layer kinds and
   their flags); the parameters of all models of a job are stacked along a new
   dim 0, ``(M, ...)``.
2. **Backpropagation by hand.** :mod:`makemore.fastgrad` runs the forward pass and
   the backward pass the next lecture derives, layer by layer, as batched matrix
   products (``torch.bmm`` over the ``M`` models) and a few elementwise ops: no
   autograd graph, no ``vmap``. Each model still sees only its own minibatches.
3. **The compiler sees whole steps.** ``torch.compile`` turns :data:`UNROLL` steps
   (forward, backward, SGD update) into one graph of fused C++ loops around the
   matrix products: one Python call per 4 steps instead of hundreds of small ones.

What stays exactly as in the plain loop: the minibatch indices (drawn from each
model's own generator, the same stream), the learning-rate schedule and the
update ``p += -lr * grad``. Only rounding differs (a hand-derived gradient and
fused kernels sum in another order): minibatch losses agree to ~1e-6 relative
over hundreds of steps, and the deep BatchNorm net's final train/val losses after
200,000 steps to ~1e-5 -- far below the effect of another seed.

:func:`train_plain` is the other way to save time: the plain loop itself, bit for
bit, with less Python around the same kernels (for the runs that must match the
lecture's loop exactly).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import fastgrad
from .nn import BatchNorm1d, Embedding, Flatten, Linear, Sequential, Tanh
from .train import default_device, learning_rate

# Minibatch indices are drawn this many steps at a time: one call instead of one per
# step, with memory bounded (10,000 x 32 int64 = 2.5 MB per model). Drawing a
# (n, 32) block consumes a generator exactly like n draws of (32,) -- see the tests.
CHUNK = 10_000


@dataclass
class FastHistory:
    """What a fast run records (tensors instead of the plain loop's lists)."""

    lossi: torch.Tensor     # (steps,) float32: log10 of the minibatch loss at each step
    ud: torch.Tensor        # (n_records, n_params) float32: log10 update:data ratio per parameter
    ud_steps: torch.Tensor  # (n_records,) int64: the steps at which ud was recorded
    trainer: str            # "compiled", "eager" or "plain"
    seconds: float          # wall time of the training loop (compilation included)


# ---------------------------------------------------------------------------------------
# the model as data: layer kinds and flags

# the layers this trainer knows, by exact type: a subclass may change the math
_KINDS = {Embedding: "embedding", Flatten: "flatten", Linear: "linear",
          BatchNorm1d: "batchnorm", Tanh: "tanh"}


def _plan(model: Sequential) -> tuple:
    """The model reduced to what its step needs besides tensors: each layer's kind
    and flags. Equal plans run the same code."""
    plan = []
    for layer in model.layers:
        kind = _KINDS.get(type(layer))
        if kind is None:
            raise TypeError(f"the fast trainer does not know the layer {type(layer).__name__}; "
                            f"train this model with makemore.train.train")
        if kind == "linear":
            plan.append((kind, layer.bias is not None))
        elif kind == "batchnorm":
            plan.append((kind, layer.eps, layer.momentum, layer.unbiased, layer.track_std))
        else:
            plan.append((kind,))
    return tuple(plan)


def _buffers(model: Sequential) -> list[torch.Tensor]:
    """The BatchNorm running statistics, in layer order."""
    return [t for layer in model.layers for t in layer.buffers().values()]


# ---------------------------------------------------------------------------------------
# SGD steps, as a function from old tensors to new tensors

# Steps per compiled call. The compiler unrolls them into one graph: the per-call
# overhead (checking the inputs, wrapping the outputs) is paid once per UNROLL
# steps, at the price of a longer compilation. A run whose length is not a
# multiple compiles once more for the tail.
UNROLL = int(os.environ.get("MAKEMORE_UNROLL", 4))
# Every (architecture, sizes, mode) is one more compiled graph of the same Python
# function; torch stops compiling (and runs eagerly) after 8 of them by default.
RECOMPILE_LIMIT = 64


def _make_step(plan: tuple, record_ud: bool) -> Callable:
    """``step(params, buffers, X, Y, ix, neg_lr) -> (params, buffers, log10 losses[, ud])``
    runs ``len(ix)`` SGD steps of a stack of ``M`` models: step ``k`` trains model ``m``
    on the minibatch ``X[ix[k, m]], Y[ix[k, m]]`` with the learning rate ``-neg_lr[k, m]``.
    ``params`` and ``buffers`` are lists of tensors with the models dim first; the
    losses come out as (steps, M), ``ud`` (M, n_params) holds the update:data ratios of
    the first of these steps. Each step's forward and backward pass is
    :func:`makemore.fastgrad.step`, derived by hand."""

    def step(params, buffers, X, Y, ix, neg_lr):
        losses, ud = [], None
        for k in range(ix.shape[0]):  # a Python loop: the compiler unrolls it
            params, buffers, loss, ud_k = fastgrad.step(
                plan, params, buffers, X[ix[k]], Y[ix[k]], neg_lr[k], record_ud and k == 0)
            losses.append(loss)
            ud = ud_k if k == 0 else ud
        if record_ud:
            return params, buffers, torch.stack(losses), ud
        return params, buffers, torch.stack(losses)

    return step


_COMPILED: dict[tuple, Callable] = {}  # one compiled step per architecture and mode


def _compiled_step(plan: tuple, record_ud: bool, device: torch.device) -> Callable:
    key = (plan, record_ud, device.type)
    if key not in _COMPILED:
        # On the CPU, a C++ wrapper calls the generated kernels instead of Python:
        # at ~60 kernels per step that saves a good tenth of the step's time.
        options = {"cpp_wrapper": device.type == "cpu"}
        # dynamic=False: a step's shapes never change, and specializing on them
        # keeps a later model of another size from forcing slower dynamic kernels
        _COMPILED[key] = torch.compile(_make_step(plan, record_ud),
                                       fullgraph=True, dynamic=False, options=options)
    return _COMPILED[key]


_compile_failed = False  # once it failed (no C compiler, ...), don't retry in this process


def _give_up_compiling(e: Exception) -> None:
    """Say in one line that the compiler failed and the eager step takes over."""
    global _compile_failed
    _compile_failed = True
    first = (str(e).strip().splitlines() or [""])[0][:160]
    print(f"makemore.fast: torch.compile failed ({type(e).__name__}: {first}); "
          f"training eagerly in this process (same math, slower)", file=sys.stderr)


def _want_compile(compile: bool | None) -> bool:
    """``compile`` if given, else ``$MAKEMORE_COMPILE`` (default on); never after a failure."""
    if compile is None:
        compile = os.environ.get("MAKEMORE_COMPILE", "1").strip().lower() not in ("0", "false", "no")
    return compile and not _compile_failed


# ---------------------------------------------------------------------------------------
# the public API

def same_architecture(a: Sequential, b: Sequential) -> bool:
    """Can ``a`` and ``b`` train in one batched job? (Same layers and flags, same shapes.)"""
    def shapes(model):
        return [t.shape for t in model.parameters() + _buffers(model)]
    return _plan(a) == _plan(b) and shapes(a) == shapes(b)


def _progress_clock(progress: Callable[[int], None] | None, every: float = 1.0):
    """``tick(steps_done)`` calls ``progress(steps_done)`` at most every ``every`` seconds;
    ``tick(n, final=True)`` always does, unless ``n`` was the last number reported."""
    last = {"time": time.perf_counter(), "done": None}

    def tick(done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if progress is None or (final and done == last["done"]):
            return
        if final or now - last["time"] >= every:
            last["time"], last["done"] = now, done
            progress(done)
    return tick


def train_many(models: list[Sequential], X: torch.Tensor, Y: torch.Tensor, *,
               steps: int = 200_000, batch_size: int = 32, lrs: float | list[float] = 0.1,
               decay_step: int = 100_000, generators: list[torch.Generator],
               ud_every: int = 0, progress: Callable[[int], None] | None = None,
               device: torch.device | None = None,
               compile: bool | None = None) -> list[FastHistory]:
    """Train each model exactly as ``train.train(model, X, Y, steps, batch_size, lr,
    decay_step, generator)`` would, all at once.

    ``models`` must share one architecture (:func:`same_architecture`); they are
    stacked along a new dim 0 and trained as one batch (``torch.bmm`` over the
    models). ``lrs`` is one learning rate for all or one per model; ``generators``
    one per model (the one it was built with). ``ud_every > 0`` records the
    update:data ratios every that many steps (steps 0, ud_every, ...).
    ``progress(steps_done)``, if given, is called with 0 at the start, then about once
    a second and after the last step. ``compile=None`` compiles unless ``MAKEMORE_COMPILE=0``; where
    compilation fails, the same step runs eagerly. Afterwards every model holds
    its trained parameters and BatchNorm buffers.
    """
    if len(generators) != len(models):
        raise ValueError(f"{len(models)} models need {len(models)} generators, "
                         f"got {len(generators)}")
    lrs = [lrs] * len(models) if isinstance(lrs, (int, float)) else list(lrs)
    if len(lrs) != len(models):
        raise ValueError(f"{len(models)} models need 1 or {len(models)} learning rates")
    for m in models[1:]:
        if not same_architecture(models[0], m):
            raise ValueError("train_many needs models of one architecture "
                             "(see same_architecture); train the others in another call")
    device = default_device() if device is None else torch.device(device)
    plan, n_models = _plan(models[0]), len(models)

    # The models' tensors, each stacked along a new dim 0: (M, ...). Copies: the
    # models themselves are only written at the end.
    params = [torch.stack(ts).detach().to(device)
              for ts in zip(*[m.parameters() for m in models])]
    buffers = [torch.stack(ts).detach().to(device) for ts in zip(*[_buffers(m) for m in models])]
    X, Y = X.to(device), Y.to(device)

    # Steps per call: UNROLL, or fewer so that every ud record starts a call.
    unroll = math.gcd(UNROLL, ud_every) if ud_every > 0 else UNROLL
    record_ud = ud_every > 0
    step, compiled = _make_step(plan, record_ud), False
    if _want_compile(compile):
        try:
            step, compiled = _compiled_step(plan, record_ud, device), True
        except Exception as e:  # noqa: BLE001 -- e.g. no torch.compile on this Python
            _give_up_compiling(e)

    lossi, ud, ud_steps = [], [], []
    tick = _progress_clock(progress)
    tick(0, final=True)  # at once: the first call may compile for a minute
    t0 = time.perf_counter()
    # each architecture, size and mode is compiled once; allow more than the default 8
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
        for start in range(0, steps, CHUNK):
            n = min(CHUNK, steps - start)
            # the plain loop's minibatch indices: each model's own generator, the same
            # stream; laid out (steps, models, batch), the lrs (steps, models)
            ix = torch.stack([torch.randint(0, X.shape[0], (n, batch_size), generator=g)
                              for g in generators], dim=1).to(device)
            neg_lr = torch.tensor([[-learning_rate(s, lr, decay_step) for lr in lrs]
                                   for s in range(start, start + n)],
                                  dtype=params[0].dtype, device=device)
            for i in range(0, n, unroll):
                args = (params, buffers, X, Y, ix[i:i + unroll], neg_lr[i:i + unroll])
                try:
                    out = step(*args)
                except Exception as e:  # noqa: BLE001 -- anything from the compiler stack
                    if not compiled:
                        raise
                    # nothing was modified (the step is pure): redo these steps eagerly
                    _give_up_compiling(e)
                    step, compiled = _make_step(plan, record_ud), False
                    out = step(*args)
                params, buffers, losses = out[:3]
                lossi.append(losses)
                if record_ud and (start + i) % ud_every == 0:
                    ud.append(out[3])
                    ud_steps.append(start + i)
                tick(start + i + len(losses))
    seconds = time.perf_counter() - t0
    tick(steps, final=True)

    # write the trained tensors back into the models' own tensors (on their device)
    with torch.no_grad():
        for k, m in enumerate(models):
            for mine, new in zip(m.parameters() + _buffers(m), params + buffers):
                mine.copy_(new[k])
            m.train()
    shape = (0, n_models)
    lossi = torch.cat(lossi).cpu() if lossi else torch.zeros(shape)  # (steps, M)
    ud = torch.stack(ud).cpu() if ud else torch.zeros(*shape, len(params))  # (records, M, P)
    return [FastHistory(lossi=lossi[:, k].float().contiguous(), ud=ud[:, k].float().contiguous(),
                        ud_steps=torch.tensor(ud_steps, dtype=torch.int64),
                        trainer="compiled" if compiled else "eager", seconds=seconds)
            for k in range(n_models)]


def train_fast(model: Sequential, X: torch.Tensor, Y: torch.Tensor, *,
               generator: torch.Generator, lr: float = 0.1, **kw) -> FastHistory:
    """:func:`train_many` for one model: ``train.train``'s math, compiled."""
    return train_many([model], X, Y, lrs=lr, generators=[generator], **kw)[0]


def train_plain(model: Sequential, X: torch.Tensor, Y: torch.Tensor, *, steps: int = 200_000,
                lr: float = 0.1, decay_step: int = 100_000, generator: torch.Generator,
                batch_size: int = 32, progress: Callable[[int], None] | None = None
                ) -> FastHistory:
    """:func:`makemore.train.train` to the bit, with less Python around its kernels.

    The same ATen kernels on the same shapes in the same order: the model's own
    forward, autograd's backward, ``p += -lr * grad``. What goes is the overhead
    around them: the minibatch indices are drawn :data:`CHUNK` steps at a time
    (the same stream, see the tests) and gathered once per chunk, ``autograd.grad``
    hands the gradients over without the ``.grad`` bookkeeping, the update is two
    ``_foreach`` calls instead of a Python loop (on the CPU they run the same
    kernels tensor by tensor), and the losses stay tensors until the end.
    """
    params = model.parameters()
    lossi = torch.empty(steps)
    tick = _progress_clock(progress)
    model.train()
    t0 = time.perf_counter()
    for start in range(0, steps, CHUNK):
        n = min(CHUNK, steps - start)
        ix = torch.randint(0, X.shape[0], (n, batch_size), generator=generator)
        Xc, Yc = X[ix], Y[ix]  # (n, B, T), (n, B): the minibatches of this chunk
        for k in range(n):
            i = start + k
            loss = F.cross_entropy(model(Xc[k]), Yc[k])
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                neg_lr = -learning_rate(i, lr, decay_step)
                torch._foreach_add_(params, torch._foreach_mul(grads, neg_lr))
                torch.log10(loss, out=lossi[i])
            tick(i + 1)
    seconds = time.perf_counter() - t0
    tick(steps, final=True)
    n = len(params)
    return FastHistory(lossi, torch.empty(0, n), torch.empty(0, dtype=torch.int64), "plain",
                       seconds)
