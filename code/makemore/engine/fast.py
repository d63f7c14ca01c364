"""The lecture's training loop, same math, several times faster.

:func:`makemore.train.train` is the readable reference: every step runs a dozen
small PyTorch ops, each dispatched from Python, plus autograd's bookkeeping. At
batch size 32 the arithmetic is tiny (a few hundred thousand multiply-adds per
layer), so most of a step's millisecond is *overhead*, not math. This module
removes the overhead without changing the math:

1. **A pure function of the tensors.** The model's layer list is turned into a
   "plan" (layer kinds and their flags), and :mod:`makemore.engine.functional` runs the
   same ops as :mod:`makemore.nn` on tensors passed in, returning the new
   BatchNorm running statistics instead of assigning them.
2. **Gradients by transformation.** ``torch.func.grad_and_value`` turns
   "loss of the parameters" into "gradient and loss of the parameters" -- a
   function again, which ...
3. **... the compiler sees whole.** ``torch.compile`` traces forward, backward
   and the SGD update into one graph, inside a ``torch.while_loop`` over
   :data:`LOOP` steps, and generates fused C++ for it: one Python call per
   :data:`LOOP` steps instead of hundreds of small ones per step.
4. **Many models at once.** ``torch.func.vmap`` turns the step of one model into
   the step of a stack of models of the same architecture (say 8 gains or
   learning rates); each model still sees only its own minibatches. A stack carries
   its activations as (features, batch): in that layout MKL runs every batched
   matrix product of the step without first copying an operand.

What stays exactly as in the plain loop: the minibatch indices (drawn from each
model's own generator, the same stream), the learning-rate schedule and the
update ``p += -lr * grad``. Run eagerly (``compile=False``), the step agrees with
the plain loop to the bit. Compiled, only rounding differs (fused kernels sum in
another order): minibatch losses agree to ~1e-5
relative over hundreds of steps, and the deep BatchNorm net's final train/val losses
after 200,000 steps to ~1e-5 -- far below the effect of another seed.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .. import env
from ..nn import Sequential
from ..train import PROGRESS_EVERY, History, ProgressFn, default_device, learning_rate
from .functional import bn_buffers, functional_forward, layer_plan, same_architecture

# Minibatch indices are drawn this many steps at a time: one call instead of one per
# step, with memory bounded (10,000 x 32 int64 = 2.5 MB per model). Drawing a
# (n, 32) block consumes a generator exactly like n draws of (32,) -- see the tests.
CHUNK = 10_000


def minibatch_indices(generators: list[torch.Generator], steps: int, n: int,
                      batch_size: int) -> torch.Tensor:
    """The minibatch indices of ``steps`` steps for each model, (steps, models, batch):
    model ``k`` draws from its own generator the stream the plain loop draws."""
    return torch.stack([torch.randint(0, n, (steps, batch_size), generator=g)
                        for g in generators], dim=1)


# ---------------------------------------------------------------------------------------
# SGD steps, as a function from old tensors to new tensors

# Steps per compiled call. The compiled step is a *loop*: ``torch.while_loop`` keeps
# the loop in the graph, and the compiler turns it into a C++ loop around one step.
# The per-call costs (checking ~35 input tensors, wrapping the outputs: ~200 us, as
# much as the step's arithmetic for one model) are paid once per LOOP steps, and the
# step is compiled once instead of unrolled. A step that records update:data ratios
# (every ``ud_every`` steps) is a call of one step of the same loop, its ratios
# computed from the parameters before and after it (:func:`_update_to_data`); the
# steps between two records run as one call (ud_every=100: 1 + 99). One graph per
# architecture: a second graph that recorded the ratios inside the step made a job of 7
# deep BN nets take 101 s instead of 62 s to compile on a cold cache here. Inductor's
# on-disk cache keeps no graph with a while_loop unless told to (torch 2.13: "Can't
# cache HigherOrderOperator"): see :data:`_CACHEABLE`.
LOOP = 100
# Inductor's caches key a graph on its code, and a while_loop's condition and body are
# sub-graphs whose code is part of that key (a body that differs in one constant misses:
# checked with torch 2.13); they refuse while_loop by default all the same, which made
# every process compile the loop graph anew. Marked cacheable, a process that finds the
# graph compiled before loads it: ~33 -> ~15 s for a job of 7 deep BatchNorm nets here
# (then with a second graph; a cold cache takes ~80 s), the same bits (tests/test_fast.py).
_CACHEABLE = {"unsafe_marked_cacheable_functions": ["torch.ops.higher_order.while_loop"]}
# Every (architecture, sizes, mode) is one more compiled graph of the same Python
# function; torch stops compiling (and runs eagerly) after 8 of them by default.
RECOMPILE_LIMIT = 64


def _update_to_data(before: list[torch.Tensor], after: list[torch.Tensor],
                    batched: bool) -> torch.Tensor:
    """The lecture's update:data ratio of each parameter, ``log10(std(update) /
    std(data))`` with the data after the update, for the step that took ``before``
    to ``after``: (n_params,), or (models, n_params) for a stack.

    The update is the one applied, ``after - before``: the lecture's ``-lr * p.grad``
    up to the float32 rounding of ``p + update`` (half a unit in the last place of
    ``p``), small next to the update unless the data are far from zero and the update
    tiny, as a BatchNorm gain's near 1. Over a deep BatchNorm net's first steps
    (tests/test_fast.py): the weight matrices' log10 ratios within 4e-5 of the
    lecture's, the gains' within 3e-4; the plots show ratios around -3."""
    def std(t):  # of each model's tensor, as torch.std: two passes, n - 1
        t = t.flatten(1) if batched else t.reshape(1, -1)
        # torch's std over one dim of a stack runs a one-pass (Welford) kernel: 7.5 ms
        # per record of 7 deep BN nets here, against 2.4 ms written out
        return (torch.linalg.vector_norm(t - t.mean(1, keepdim=True), dim=1)
                / math.sqrt(t.shape[1] - 1))
    ratios = torch.stack([(std(a - b) / std(a)).log10() for b, a in zip(before, after)], dim=-1)
    return ratios if batched else ratios[0]


def _make_step(plan: tuple, batched: bool, features_first: bool = False) -> Callable:
    """``step(params, buffers, X, Y, ix, neg_lr) -> (params, buffers, log10 losses)``
    runs ``len(ix)`` SGD steps with the minibatches ``X[ix[k]], Y[ix[k]]`` and the
    learning rates ``-neg_lr[k]``; ``params`` and ``buffers`` are lists of tensors.
    ``features_first``: see :func:`makemore.engine.functional.functional_forward`."""

    def loss_fn(params, buffers, X, Y, ix):
        logits, new_buffers = functional_forward(plan, params, buffers, X[ix], features_first)
        return F.cross_entropy(logits, Y[ix]), new_buffers

    # grad_and_value(f) returns (d f / d params, (f, aux)): differentiates argument 0
    grad_and_loss = torch.func.grad_and_value(loss_fn, has_aux=True)

    def step(params, buffers, X, Y, ix, neg_lr):
        losses = []
        for k in range(ix.shape[0]):  # compiled, it is one step: see _make_loop
            grads, (loss, buffers) = grad_and_loss(params, buffers, X, Y, ix[k])
            # the plain loop's p += -lr * p.grad
            params = [p + neg_lr[k] * g for p, g in zip(params, grads)]
            losses.append(loss.log10())
        return params, buffers, torch.stack(losses)

    if batched:
        # params and buffers are stacked along dim 0; indices, learning rates and
        # losses are (steps, models, ...); X and Y are shared
        step = torch.func.vmap(step, in_dims=(0, 0, None, None, 1, 1), out_dims=(0, 0, 1))
    return step


def _make_loop(plan: tuple, batched: bool, features_first: bool = False) -> Callable:
    """``loop(params, buffers, X, Y, ix, neg_lr, n) -> (params, buffers, log10 losses)``
    runs the first ``n`` (a tensor) of the :data:`LOOP` steps that ``ix`` and
    ``neg_lr`` hold, each one step of :func:`_make_step`, as a loop inside the graph."""
    step = _make_step(plan, batched, features_first=features_first)

    def loop(params, buffers, X, Y, ix, neg_lr, n):
        def cond(k, params, buffers, losses):
            return k < n

        def body(k, params, buffers, losses):
            i = k.view(1)  # the rows ix[k:k + 1]; k is a tensor, hence index_select
            params, buffers, loss = step(params, buffers, X, Y, ix.index_select(0, i),
                                         neg_lr.index_select(0, i))
            return k + 1, params, buffers, losses.index_put((i,), loss)

        losses = neg_lr.new_zeros(neg_lr.shape)  # (LOOP[, models]), as neg_lr
        k0 = torch.zeros((), dtype=torch.int64, device=ix.device)
        _, params, buffers, losses = torch.while_loop(cond, body, (k0, params, buffers, losses))
        return params, buffers, losses

    return loop


def _calls(start: int, n: int, ud_every: int):
    """The compiled calls over steps ``start .. start + n - 1``: ``(offset, steps,
    records ud)``, offsets from ``start``. A call that records the update:data
    ratios starts at every multiple of ``ud_every`` (``0``: never) and runs one
    step; the others run up to :data:`LOOP` steps, stopping before the next record."""
    s, end = start, start + n
    while s < end:
        with_ud = ud_every > 0 and s % ud_every == 0
        stop = end if ud_every <= 0 else min(end, (s // ud_every + 1) * ud_every)
        k = 1 if with_ud else min(LOOP, stop - s)
        yield s - start, k, with_ud
        s += k


_COMPILED: dict[tuple, Callable] = {}  # one compiled function per architecture and mode


def _compiled_step(plan: tuple, batched: bool, device: torch.device) -> Callable:
    """A function called like :func:`_make_step`'s ``step``, for calls of up to
    :data:`LOOP` steps: :func:`_make_loop`'s loop, compiled (shorter calls are padded)."""
    key = (plan, batched, device.type)
    if key not in _COMPILED:
        # On the CPU, a C++ wrapper calls the generated kernels, and runs the loop,
        # instead of Python: at ~60 kernels per step that saves a good tenth of its time.
        options = {"cpp_wrapper": device.type == "cpu", **_CACHEABLE}
        if device.type == "cpu":
            # No -ffast-math (inductor's cpp.enable_unsafe_math_opt_flag, with tanh written
            # as exp: ~1.3x the model-steps/s of a batch of 7 deep BN nets on an AVX-512
            # machine): on an AVX2 machine (AMD EPYC, this project's CI) the batched step
            # compiled that way trained the right weights but returned every minibatch
            # loss as inf -- the log-softmax's max starts at -inf, which -ffinite-math-only
            # lets the compiler assume away. The book plots those losses; correct on every
            # CPU comes first (tests/test_fast.py: compiled vmap vs solo runs, lossi finite).
            # Inductor picks the widest vector ISA the CPU reports (cpuinfo) either way;
            # before that it proves each one by compiling a test program and loading it in a
            # child process. On a cold cache that took ~26 s of every job's compilation
            # here (88 vs 114 s, two cold jobs side by side). Trusting the CPU's flags picks
            # the same ISA, so the same kernels; a compiler that cannot build them fails
            # the compile, and the eager step takes over (_give_up_compiling).
            options["cpp.vec_isa_ok"] = True
            # The C++ wrapper (the loop and the kernel calls) built apart from the kernels,
            # at -O1 instead of -O3: a cold compile of 7 deep BN nets took 42.5 instead of
            # 55.8 s here (no BN: 29.5 vs 33.1 s), with the same bits and no step rate lost
            # that side-by-side runs could show (7 no-BN nets, twice 20,000 steps each
            # way: 63.3 s built apart, 63.8 s as one file).
            options["cpp_wrapper_build_separate"] = True
        # dynamic=False: a step's shapes never change, and specializing on them
        # keeps a later model of another size from forcing slower dynamic kernels
        # A stack of models carries its activations (features, batch): then MKL runs
        # every batched product of the step, forward and backward, without first copying
        # an operand (row-major, the input gradient dy @ W.T takes MKL's copying path).
        # Measured here, a batch of 8 deep BN nets: the step's products 853 -> 725 us,
        # the whole step 1.14x. One model's plain products gain ~1% that way: it keeps
        # the row-major step (and its runs their bits).
        _COMPILED[key] = torch.compile(_make_loop(plan, batched, features_first=batched),
                                       fullgraph=True, dynamic=False, options=options)
    loop = _COMPILED[key]

    def steps(params, buffers, X, Y, ix, neg_lr):
        n = ix.shape[0]

        def padded(t):  # one graph for all lengths: pad to LOOP steps, run n of them
            return torch.cat([t, t.new_zeros((LOOP - n, *t.shape[1:]))]) if n < LOOP else t
        params, buffers, losses = loop(params, buffers, X, Y, padded(ix), padded(neg_lr),
                                       torch.tensor(n, device=ix.device))
        return params, buffers, losses[:n]
    return steps


_compile_failed = False  # once it failed (no C compiler, ...), don't retry in this process


def _give_up_compiling(e: Exception) -> None:
    """Say in one line that the compiler failed and the eager step takes over."""
    global _compile_failed
    _compile_failed = True
    first = (str(e).strip().splitlines() or [""])[0][:160]
    print(f"makemore.engine.fast: torch.compile failed ({type(e).__name__}: {first}); "
          f"training eagerly in this process (same math, slower)", file=sys.stderr)


def _want_compile(compile: bool | None) -> bool:
    """``compile`` if given, else ``$MAKEMORE_COMPILE`` (default on); never after a failure."""
    if compile is None:
        compile = env.flag("MAKEMORE_COMPILE", default=True)
    return compile and not _compile_failed


# ---------------------------------------------------------------------------------------
# the public API

def train_many(models: list[Sequential], X: torch.Tensor, Y: torch.Tensor, *,
               steps: int = 200_000, batch_size: int = 32, lrs: float | list[float] = 0.1,
               decay_step: int = 100_000, generators: list[torch.Generator],
               ud_every: int = 0, device: torch.device | None = None,
               compile: bool | None = None, progress: ProgressFn | None = None
               ) -> list[History]:
    """Train each model exactly as ``train.train(model, X, Y, steps, batch_size, lr,
    decay_step, generator)`` would, all at once.

    ``models`` must share one architecture (:func:`same_architecture`); more than
    one are stacked and trained as one batch with ``torch.vmap``. ``lrs`` is one
    learning rate for all or one per model; ``generators`` one per model (the
    one it was built with). ``ud_every > 0`` records the update:data ratios every
    that many steps (steps 0, ud_every, ...). ``compile=None`` compiles unless
    ``MAKEMORE_COMPILE=0``; where compilation fails, the same step runs eagerly.
    ``progress``, if given, is called with the steps done (per model) every
    :data:`~makemore.train.PROGRESS_EVERY` steps and at the end.
    Afterwards every model holds its trained parameters and BatchNorm buffers.
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
    plan, batched, n_models = layer_plan(models[0]), len(models) > 1, len(models)

    # The models' tensors, each stacked along a new dim 0 for vmap (one model: as is).
    # Copies: the models themselves are only written at the end.
    def stack(tensors_of):
        return [(torch.stack(ts) if batched else ts[0]).detach().clone().to(device)
                for ts in zip(*[tensors_of(m) for m in models])]
    params, buffers = stack(Sequential.parameters), stack(bn_buffers)
    X, Y = X.to(device), Y.to(device)

    step, compiled = _make_step(plan, batched), False
    if _want_compile(compile):
        try:
            step, compiled = _compiled_step(plan, batched, device), True
        except Exception as e:  # noqa: BLE001 -- e.g. no torch.compile on this Python
            _give_up_compiling(e)

    lossi, ud, ud_steps = [], [], []
    t0 = time.perf_counter()
    # each architecture, size and mode is compiled once; allow more than the default 8
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
        for start in range(0, steps, CHUNK):
            n = min(CHUNK, steps - start)
            # the plain loop's minibatch indices, (steps, models, batch); lrs (steps, models)
            ix = minibatch_indices(generators, n, X.shape[0], batch_size).to(device)
            neg_lr = torch.tensor([[-learning_rate(s, lr, decay_step) for lr in lrs]
                                   for s in range(start, start + n)],
                                  dtype=params[0].dtype, device=device)
            if not batched:
                ix, neg_lr = ix[:, 0], neg_lr[:, 0]
            for i, k, with_ud in _calls(start, n, ud_every):
                args = (params, buffers, X, Y, ix[i:i + k], neg_lr[i:i + k])
                try:
                    out = step(*args)
                except Exception as e:  # noqa: BLE001 -- anything from the compiler stack
                    if not compiled:
                        raise
                    # nothing was modified (the step is pure): redo these steps eagerly
                    _give_up_compiling(e)
                    step, compiled = _make_step(plan, batched), False
                    out = step(*args)
                if with_ud:  # a call of one step: its update is new - old
                    ud.append(_update_to_data(params, out[0], batched))
                    ud_steps.append(start + i)
                params, buffers, losses = out
                lossi.append(losses)
                done = start + i + k
                if progress is not None and done // PROGRESS_EVERY > (done - k) // PROGRESS_EVERY:
                    progress(done)  # steps done so far
    if progress is not None:
        progress(steps)
    seconds = time.perf_counter() - t0

    # write the trained tensors back into the models' own tensors (on their device)
    with torch.no_grad():
        for k, m in enumerate(models):
            for mine, new in zip(m.parameters() + bn_buffers(m), params + buffers):
                mine.copy_(new[k] if batched else new)
            m.train()
    # losses and ratios with a models dim, as in the batched case
    shape = (0, n_models)
    lossi = torch.cat(lossi).view(-1, n_models).cpu() if lossi else torch.zeros(shape)
    ud = (torch.stack(ud).view(-1, n_models, len(params)).cpu() if ud
          else torch.zeros(*shape, len(params)))
    return [History(lossi=lossi[:, k].float().contiguous(), ud=ud[:, k].float().contiguous(),
                    ud_steps=torch.tensor(ud_steps, dtype=torch.int64),
                    trainer="compiled" if compiled else "eager", seconds=seconds)
            for k in range(n_models)]


def train_fast(model: Sequential, X: torch.Tensor, Y: torch.Tensor, *,
               generator: torch.Generator, lr: float = 0.1, **kw) -> History:
    """:func:`train_many` for one model: ``train.train``'s math, compiled."""
    return train_many([model], X, Y, lrs=lr, generators=[generator], **kw)[0]
