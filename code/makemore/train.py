"""The lecture's training loop, evaluation and the BatchNorm calibration pass.

This is the readable reference: one minibatch, one forward, one backward, one
SGD update per step. :mod:`makemore.engine.fast` runs the same math faster for the
book's full-length runs; tests check the two agree.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .nn import BatchNorm1d, Sequential

STEPS = 200_000
BATCH_SIZE = 32


def default_device() -> torch.device:
    """CUDA when present, else the CPU (the tested path)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def learning_rate(step: int, lr: float = 0.1, decay_step: int = 100_000,
                  decay: float = 0.1) -> float:
    """Step decay: ``lr`` until ``decay_step``, then ``lr * decay`` (0.1 -> 0.01)."""
    return lr if step < decay_step else lr * decay


@dataclass
class History:
    """What a training run records, whichever trainer ran it (this loop or
    :mod:`makemore.engine.fast`); a cached :class:`makemore.runs.Run` holds one too.

    Introduced in the MLP chapter (``run.lossi``); the diagnostics chapter reads ``ud``.
    """

    lossi: torch.Tensor  # (steps,) float32: log10 of the minibatch loss at step i
    # (records, n_params) float32: log10 std(lr * grad) / std(data); makemore.engine.fast
    # takes the update as applied, new - old data (the same up to float32 rounding)
    ud: torch.Tensor
    ud_steps: torch.Tensor  # (records,) int64: the step of each row of ud
    trainer: str  # "plain" (this loop), "compiled" or "eager" (makemore.engine.fast)
    seconds: float  # wall time of the training loop


# what a trainer's ``progress`` callback receives: the number of steps done so far
ProgressFn = Callable[[int], None]
PROGRESS_EVERY = 1_000  # steps between two calls of a progress callback


def _progress(steps: int, progress: bool | ProgressFn | None):
    """tqdm on a terminal, nothing in a notebook or a log; a callback is called
    with the steps done every :data:`PROGRESS_EVERY` steps (see ``makemore.runs.pretrain``)."""
    if callable(progress):
        for i in range(steps):
            if i % PROGRESS_EVERY == 0 and i:
                progress(i)
            yield i
        progress(steps)
        return
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        yield from range(steps)
        return
    from tqdm.auto import trange

    yield from trange(steps, mininterval=1.0)


OPTIMIZERS = ("sgd", "adam")
ADAM_BETAS = (0.9, 0.999)  # Kingma & Ba's defaults, and torch.optim.Adam's
ADAM_EPS = 1e-8


def train(model: Sequential, X: torch.Tensor, Y: torch.Tensor, steps: int = STEPS,
          batch_size: int = BATCH_SIZE, lr: float = 0.1, decay_step: int = 100_000,
          generator: torch.Generator | None = None, record_ud: bool = False,
          retain_grad: bool = False, progress: bool | ProgressFn | None = None,
          optimizer: str = "sgd") -> History:
    """Minibatch SGD, exactly the lecture's loop.

    ``generator`` should be the one the model was built with, so that the
    minibatches continue the lecture's random stream. ``retain_grad=True`` keeps
    the gradient of every layer's ``.out`` (for the diagnostics) -- at a cost.
    ``record_ud=True`` records the update:data ratios at every step.

    ``optimizer="adam"`` replaces the SGD update by Adam's (Kingma & Ba, 2014; the
    chapter "Beyond BatchNorm"), with ``lr`` (and its schedule) as Adam's step size and
    :data:`ADAM_BETAS`, :data:`ADAM_EPS`; its update:data ratios are those of the update
    actually applied, ``std(update) / std(data)``, as :mod:`makemore.engine.fast` records them.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    parameters = model.parameters()
    if optimizer == "adam":  # Adam's running averages of the gradient and its square
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in parameters]
    lossi, ud = [], []  # Python floats, as the lecture; tensors at the end
    t0 = time.perf_counter()
    model.train()
    for i in _progress(steps, progress):
        # minibatch construct
        ix = torch.randint(0, X.shape[0], (batch_size,), generator=generator)
        Xb, Yb = X[ix], Y[ix]
        # forward pass
        logits = model(Xb)
        loss = F.cross_entropy(logits, Yb)
        # backward pass
        if retain_grad:
            for layer in model.layers:
                layer.out.retain_grad()
        for p in parameters:
            p.grad = None
        loss.backward()
        # update
        lr_i = learning_rate(i, lr, decay_step)
        if optimizer == "adam":
            updates = adam_updates(parameters, moments, i + 1, lr_i)  # applied
        else:
            with torch.no_grad():
                for p in parameters:
                    p += -lr_i * p.grad
        # track stats
        lossi.append(loss.log10().item())
        if record_ud:
            with torch.no_grad():
                if optimizer == "adam":  # the update as applied
                    ud.append([(u.std() / p.data.std()).log10().item()
                               for u, p in zip(updates, parameters, strict=False)])
                else:
                    ud.append([((lr_i * p.grad).std() / p.data.std()).log10().item()
                               for p in parameters])
    # float32 holds every value exactly: each was a float32 loss before .item()
    n = len(parameters)
    return History(lossi=torch.tensor(lossi, dtype=torch.float32),
                   ud=torch.tensor(ud, dtype=torch.float32).view(-1, n),
                   ud_steps=torch.arange(len(ud), dtype=torch.int64),
                   trainer="plain", seconds=time.perf_counter() - t0)


@torch.no_grad()
def adam_updates(parameters: list[torch.Tensor], moments: list[tuple[torch.Tensor, torch.Tensor]],
                 t: int, lr: float, betas: tuple[float, float] = ADAM_BETAS,
                 eps: float = ADAM_EPS) -> list[torch.Tensor]:
    """One Adam step (Kingma & Ba, 2014, Algorithm 1) on ``parameters`` from their
    ``.grad``: update each pair ``(m, v)`` of ``moments`` in place, add the update to
    each parameter, and return the updates applied.

    ``m`` and ``v`` average the gradient and its square; divided by ``1 - beta**t`` they
    are unbiased at step ``t`` (counted from 1). The update ``-lr * m / (sqrt(v) + eps)``
    is about ``lr`` in size wherever the gradient keeps its sign, however large or small
    the gradient: unlike SGD's ``-lr * grad``, it does not scale with the gradient.
    """
    b1, b2 = betas
    updates = []
    for p, (m, v) in zip(parameters, moments, strict=False):
        m.mul_(b1).add_(p.grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
        update = -lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        p += update
        updates.append(update)
    return updates


# Rows per forward pass when evaluating a split. In evaluation mode every layer acts on
# each row alone, so a split's logits come out the same, to the bit, in blocks of rows
# as in one pass (a test checks it). One pass over the 182,625 training rows makes
# fresh ~73 MB tensors, whose memory the kernel hands over page by page (zeroing each);
# a block's (512, 100) activations (200 kB) stay in the core's cache. Measured here, the
# three splits of a deep net: 1.0-1.1 s in blocks of 4,096 rows, 0.65-0.74 s in blocks of 512.
EVAL_ROWS = 512


@torch.no_grad()
def split_loss(model: Sequential, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Cross-entropy of the whole split, in evaluation mode (the logits of
    :data:`EVAL_ROWS` rows at a time, the loss over all of them at once)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x) for x in X.split(EVAL_ROWS)])
    loss = F.cross_entropy(logits, Y).item()
    model.train(was_training)
    return loss


def evaluate(model: Sequential, splits, names: tuple[str, ...] = ("train", "val", "test")
             ) -> dict[str, float]:
    """``{split: loss}`` for a :class:`makemore.data.Splits`."""
    return {name: split_loss(model, *splits.split(name)) for name in names}


@torch.no_grad()
def calibrate(model: Sequential, X: torch.Tensor) -> Sequential:
    """Replace every BatchNorm's running statistics by those of the whole ``X``.

    The lecture's "calibrate the batch norm at the end of training": the mean and
    std (or var) of each BatchNorm's input over the full training set, where each
    BatchNorm sees the previous layers' full-set outputs, normalized with *their*
    calibrated statistics -- what evaluation mode then computes.

    Layer by layer, :data:`EVAL_ROWS` rows at a time, with the sums in float64
    (:func:`full_set_statistics`). One forward pass of all of ``X`` in training mode
    with momentum 1 gives the same statistics up to float32 rounding, but its
    reductions over 182,625 rows took ~4 s per deep net here (this: ~1 s).
    """
    was_training = model.training
    model.eval()
    n = len(X)
    try:
        blocks = list(X.split(EVAL_ROWS))
        for layer in model.layers:
            if isinstance(layer, BatchNorm1d):
                mean, var = full_set_statistics(blocks)  # var: unbiased
                layer.running_mean = mean.float()
                if layer.track_std:  # the std the layer itself would take of the batch
                    biased = var if layer.unbiased else var * (n - 1) / n
                    layer.running_std = biased.sqrt().float()
                else:  # running_var is always the unbiased variance (nn.BatchNorm1d)
                    layer.running_var = var.float()
            blocks = [layer(x) for x in blocks]
    finally:
        model.train(was_training)
    return model


def full_set_statistics(blocks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the unbiased variance over dim 0 of the rows of all ``blocks``
    together, in float64, in two passes (the mean, then the squared deviations)."""
    n = sum(len(x) for x in blocks)
    mean = sum(x.double().sum(0) for x in blocks) / n
    var = sum(((x.double() - mean) ** 2).sum(0) for x in blocks) / (n - 1)
    return mean, var
