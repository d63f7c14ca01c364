"""Backpropagation by hand: the gradients of a stack of MLPs, without autograd, to the bit.

``loss.backward()`` records a graph during the forward pass and then walks it,
calling one backward kernel per recorded op. At batch size 32 the kernels are
tiny, and recording and walking the graph costs about as much as the math. This
module writes the same backward pass out by hand, the way the next lecture of
the series ("becoming a backprop ninja") derives it, for the layers of the loss
log's MLPs: Embedding, Flatten, Linear, Tanh, BatchNorm and the cross-entropy loss;
and for the chapter "Beyond BatchNorm", LayerNorm (BatchNorm's chain over the
features) and residual blocks (the gradient of ``x + f(x)`` reaches ``x`` twice).

It runs ``M`` models of one architecture at once: every tensor gets a leading
models dim, ``x @ W`` becomes ``torch.bmm``, and each elementwise op covers all
models in one kernel call. Each line calls the ATen kernel that autograd calls
for that op, per model on the same shapes; the batched matrix product and the
row-wise kernels compute every model's numbers as the single-model ones do, so
the losses and gradients are *equal*, bit for bit, to autograd's on one model
(tests check this against :func:`makemore.train.train`). The four loss-log MLPs
train as one job this way (:func:`train_plain_many`) at ~3x the steps/s of the
lecture's loop typed out four times (``make bench``: "MLP, stack of 4"). BatchNorm's
backward is autograd's chain op by op (mean, std or var, subtract, divide, scale,
shift), not the one-line formula the next lecture derives: that formula is the
same math with other roundings. The short runs of the depth study (up to 50 layers)
train this way, with no graph to compile.

Introduced for the pre-trained runs of the loss log (chapter "Reproduction").
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..nn import BatchNorm1d, Module, Residual, Sequential
from ..train import PROGRESS_EVERY, History, ProgressFn, learning_rate
from .fast import CHUNK, minibatch_indices
from .functional import LAYER_KINDS, batchnorm_forward, layernorm_forward, same_architecture

aten = torch.ops.aten

# per layer: (kind, its parameters stacked (M, ...), its BatchNorm running statistics
# stacked (M, dim) -- updated in place --, the first model's layer: BatchNorm's flags)
Layers = list[tuple[str, list[torch.Tensor], list[torch.Tensor], Module]]


def supports(model: Sequential) -> bool:
    """Can this module differentiate ``model``? (Only the layers above; a BatchNorm
    that divides by ``sqrt(std**2 + eps)`` is left to autograd: no model here has one.)"""
    return all(LAYER_KINDS.get(type(layer)) in BY_HAND
               and not (isinstance(layer, BatchNorm1d) and layer.track_std and layer.eps != 0)
               and (not isinstance(layer, Residual) or supports(layer))
               for layer in model.layers)


# the layer kinds whose backward this module writes out
BY_HAND = ("embedding", "flatten", "linear", "batchnorm", "layernorm", "tanh", "residual")


def _flat(layers: list[Module]) -> list[tuple[str, Module]]:
    """``(kind, layer)`` for every layer in the order the forward pass runs them, a
    residual block as ``("residual_in", block)``, its layers, ``("residual_out", block)``."""
    out = []
    for layer in layers:
        kind = LAYER_KINDS[type(layer)]
        if kind == "residual":
            out += [("residual_in", layer), *_flat(layer.layers), ("residual_out", layer)]
        else:
            out.append((kind, layer))
    return out


def stack(models: list[Sequential]) -> Layers:
    """The models' layers as (kind, parameters stacked along a new dim 0): copies,
    trained in place by the caller and written back with :func:`unstack`."""
    if not all(supports(m) for m in models):
        raise TypeError("backprop knows Embedding, Flatten, Linear, Tanh, BatchNorm1d, "
                        "LayerNorm and Residual only; differentiate other models with autograd")
    if not all(same_architecture(models[0], m) for m in models[1:]):
        raise ValueError("backprop.stack needs models of one architecture (the same layers "
                         "and sizes); train the others in another call")
    flats = [_flat(m.layers) for m in models]

    def stacked(j, tensors_of):  # one stacked copy per tensor of each model's layer j
        per_model = [tensors_of(f[j][1]) for f in flats]
        return [torch.stack(ts).detach() for ts in zip(*per_model, strict=True)]

    def params(layer):
        return layer.parameters()

    def buffers(layer):
        return list(layer.buffers().values())

    return [(kind, [] if kind.startswith("residual") else stacked(j, params),
             stacked(j, buffers), layer)
            for j, (kind, layer) in enumerate(flats[0])]


def parameters(layers: Layers) -> list[torch.Tensor]:
    """The stacked parameters in ``model.parameters()`` order."""
    return [p for _, ps, _, _ in layers for p in ps]


def unstack(layers: Layers, models: list[Sequential]) -> None:
    """Copy the trained stacked parameters and BatchNorm running statistics back
    into each model's own tensors."""
    with torch.no_grad():
        for k, m in enumerate(models):
            for mine, new in zip(m.parameters(), parameters(layers), strict=False):
                mine.copy_(new[k])
            for (_, layer), (_, _, bufs, _) in zip(_flat(m.layers), layers, strict=False):
                for name, new in zip(layer.buffers(), bufs, strict=False):
                    setattr(layer, name, new[k].clone())


@torch.no_grad()
def loss_and_grads(layers: Layers, x: torch.Tensor, y: torch.Tensor
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each model's minibatch loss and the gradients of its parameters, stacked:
    for model ``k``, ``F.cross_entropy(model_k(x[k]), y[k])`` and
    ``torch.autograd.grad(loss, model_k.parameters())`` to the bit.

    ``x``: (M, B, block_size) int64 contexts, ``y``: (M, B) int64 targets.
    Returns the losses (M,) and the gradients in :func:`parameters` order; the
    BatchNorm running statistics in ``layers`` are updated in place, as the
    training-mode forward pass of :class:`makemore.nn.BatchNorm1d` updates them.
    """
    M, B = y.shape
    models = torch.arange(M).view(M, 1, 1)  # pairs each model with its own rows
    # forward, keeping each layer's input and output (and BatchNorm's intermediates):
    # the backward pass needs them
    ins, outs, saved, skips = [], [], [], []
    h = x
    for kind, ps, bufs, layer in layers:
        ins.append(h)
        if kind == "residual_in":  # the block's input, added back at its end
            skips.append(h)
        elif kind == "residual_out":  # nn.Residual's x + f(x)
            h = skips.pop() + h
        elif kind == "embedding":  # row x of C, per model: (M, B, T) -> (M, B, T, n_embd)
            C = ps[0]  # (M, vocab, n_embd): model k's row x is row k * vocab + x of the stack
            rows = (h + models * C.shape[1]).view(-1)  # the backward adds into these rows
            h = C.view(-1, C.shape[2]).index_select(0, rows).view(*h.shape, C.shape[2])
        elif kind == "flatten":  # (M, B, T, n_embd) -> (M, B, T * n_embd)
            h = h.view(M, B, -1)
        elif kind == "linear":  # (M, B, fan_in) @ (M, fan_in, fan_out)
            h = torch.bmm(h, ps[0])
            if len(ps) > 1:
                h = h + ps[1].unsqueeze(1)  # the bias, broadcast over the batch
        elif kind == "batchnorm":  # nn.BatchNorm1d's ops over dim 1 (the batch)
            gamma, beta = (p.unsqueeze(1) for p in ps)
            h, stats, bn = batchnorm_forward(h, gamma, beta, *bufs, layer.eps, layer.momentum,
                                             layer.unbiased, layer.track_std, dim=1)
            for buf, new in zip(bufs, stats, strict=False):
                buf.copy_(new)  # the running statistics, as the layer updates them
            saved.append(bn)
        elif kind == "layernorm":  # over dim 2, each example's features
            gamma, beta = (p.unsqueeze(1) for p in ps)
            h, ln = layernorm_forward(h, gamma, beta, layer.eps, dim=2)
            saved.append(ln)
        elif kind == "tanh":
            h = torch.tanh(h)
        outs.append(h)

    # F.cross_entropy is log-softmax (row by row), then the mean negative
    # log-likelihood: one call per model, as each model's loss is its own mean
    logp = torch._log_softmax(h, 2, False)  # (M, B, vocab)
    loss = torch.stack([aten.nll_loss_forward(lp, yk, None, 1, -100)[0]
                        for lp, yk in zip(logp.unbind(0), y.unbind(0), strict=False)])
    # its backward, aten.nll_loss_backward's values for all models at once: -1 / B at
    # each row's target (-grad / total weight, with grad 1 and B rows), 0 elsewhere
    dlogp = torch.zeros_like(logp).scatter_(2, y.unsqueeze(2), -1.0 / B)
    # then log-softmax's: d loss / d logits = (softmax - onehot(y)) / B
    d = aten._log_softmax_backward_data(dlogp, logp, 2, h.dtype)

    # backward, layer by layer from the top: d = d loss / d (the layer's output)
    grads: list[torch.Tensor] = []  # last parameter first
    for (kind, ps, _, layer), inp, out in zip(reversed(layers), reversed(ins), reversed(outs),
                                              strict=True):
        if kind == "residual_out":  # x + f(x): d reaches x twice, directly and through f
            skips.append(d)
        elif kind == "residual_in":  # the two sum (the order of two terms changes no bit)
            d = skips.pop() + d
        elif kind == "batchnorm":
            d = _batchnorm_backward(d, inp, ps[0], saved.pop(), layer, grads)
        elif kind == "layernorm":
            d = _layernorm_backward(d, inp, ps[0], saved.pop(), grads)
        elif kind == "tanh":
            d = aten.tanh_backward(d, out)  # d * (1 - tanh**2)
        elif kind == "linear":
            if len(ps) > 1:  # the bias was broadcast over the batch: sum its gradient
                grads.append(d.sum([1]))
            grads.append(torch.bmm(inp.transpose(1, 2), d))  # dW = x^T @ d
            d = torch.bmm(d, ps[0].transpose(1, 2))  # dx = d @ W^T
        elif kind == "flatten":
            d = d.view(inp.shape)
        elif kind == "embedding":  # add each row's gradient back into its row of C
            dC = torch.zeros_like(ps[0])
            aten._index_put_impl_(dC.view(-1, dC.shape[2]), [rows], d.reshape(-1, dC.shape[2]),
                                  True, True)
            grads.append(dC)
    return loss, grads[::-1]


def _batchnorm_backward(d: torch.Tensor, h: torch.Tensor, gamma: torch.Tensor, saved: tuple,
                        layer: BatchNorm1d, grads: list[torch.Tensor]) -> torch.Tensor:
    """d loss / d h from d loss / d (BatchNorm's output), for ``out = gamma * (h -
    mean) / s + beta``: autograd's backward formula of each op, in the order its
    engine runs them, so that every rounding is the same. Appends the gradients of
    beta and gamma to ``grads`` (last parameter first)."""
    s, xhat = saved
    B = h.shape[1]
    grads.append(d.sum([1]))  # beta, broadcast over the batch: sum
    grads.append((d * xhat).sum([1]))  # gamma
    dxhat = d * gamma.unsqueeze(1)
    # xhat = a / s: d a = dxhat / s, d s = -dxhat * a / s**2 (summed over the batch)
    da = dxhat / s
    ds = (-dxhat * (xhat / s)).sum([1], keepdim=True)  # xhat / s: autograd's (a / s) / s
    # s = std(h), or sqrt(var(h) + eps): back to d var, then through var's formula
    if layer.track_std:
        dvar = (ds / (s * 2)).masked_fill_(s == 0, 0)  # d std / d var = 1 / (2 std)
    else:
        dvar = ds / (2 * s)  # sqrt's backward; + eps passes the gradient through
    correction = 1 if layer.unbiased else 0
    dh_var = (2.0 / (B - correction)) * dvar * (h - h.mean(1, keepdim=True))
    # a = h - mean: d h = d a, and d mean = -(d a summed over the batch), spread evenly
    dh_mean = (-da).sum([1], keepdim=True).expand_as(h) / B
    # the engine adds the three contributions to d h in this order: a's, var's, mean's
    return da + dh_var + dh_mean


def _layernorm_backward(d: torch.Tensor, h: torch.Tensor, gamma: torch.Tensor, saved: tuple,
                        grads: list[torch.Tensor]) -> torch.Tensor:
    """:func:`_batchnorm_backward` for :class:`makemore.nn.LayerNorm`: the same chain of
    autograd's formulas, its statistics over the features (dim 2) instead of the batch,
    with the biased variance; beta and gamma still sum their gradient over the batch."""
    s, xhat = saved
    n = h.shape[2]
    grads.append(d.sum([1]))  # beta
    grads.append((d * xhat).sum([1]))  # gamma
    dxhat = d * gamma.unsqueeze(1)
    da = dxhat / s
    ds = (-dxhat * (xhat / s)).sum([2], keepdim=True)
    dvar = ds / (2 * s)
    dh_var = (2.0 / n) * dvar * (h - h.mean(2, keepdim=True))
    dh_mean = (-da).sum([2], keepdim=True).expand_as(h) / n
    return da + dh_var + dh_mean


# ---------------------------------------------------------------------------------------
# the lecture's loop with these gradients

def train_plain(model: Sequential, X: torch.Tensor, Y: torch.Tensor, *, generator: torch.Generator,
                **kw) -> History:
    """:func:`train_plain_many` for one model: :func:`makemore.train.train` to the bit."""
    return train_plain_many([model], X, Y, generators=[generator], **kw)[0]


def train_plain_many(models: list[Sequential], X: torch.Tensor, Y: torch.Tensor, *,
                     steps: int = 200_000, lr: float = 0.1, decay_step: int = 100_000,
                     generators: list[torch.Generator], batch_size: int = 32,
                     progress: ProgressFn | None = None) -> list[History]:
    """Train each model as :func:`makemore.train.train` does, to the bit, with less
    Python around its kernels; models of one architecture train all at once.

    The same ATen kernels on the same shapes in the same order: the forward,
    autograd's backward kernels, ``p += -lr * grad``. What goes is the overhead
    around them: the minibatch indices are drawn :data:`CHUNK` steps at a time
    (the same stream, see the tests) and gathered once per chunk; the backward
    pass is written out by hand, for all models in one go (:func:`loss_and_grads`:
    autograd's kernels without its graph); the update is two ``_foreach`` calls
    (on the CPU they run the same kernels tensor by tensor), and the losses stay
    tensors until the end. A model that :func:`supports` refuses trains alone, its
    gradients from ``autograd.grad``. The loss-log MLP rows train with it
    (:func:`makemore.runs.jobs.train_job`).
    ``progress`` is called with the steps done (per model).
    """
    if len(generators) != len(models):
        raise ValueError(f"{len(models)} models need {len(models)} generators")
    by_hand = all(supports(m) for m in models)
    if not by_hand and len(models) > 1:
        raise ValueError("only models that backprop.supports train together here; "
                         "train the others one by one")
    for m in models:
        m.train()
    layers = stack(models) if by_hand else None
    params = parameters(layers) if by_hand else models[0].parameters()
    M = len(models)
    lossi = torch.empty(steps, M)
    # -lr as a float32 scalar tensor: the same product as with a Python float (which
    # ATen casts to float32 for a float32 tensor), without converting it every call
    neg_lrs: dict[float, torch.Tensor] = {}
    t0 = time.perf_counter()
    for start in range(0, steps, CHUNK):
        n = min(CHUNK, steps - start)
        # each model's own stream of minibatches: (n, M, B) indices, (n, M, B, T) inputs
        ix = minibatch_indices(generators, n, X.shape[0], batch_size)
        Xc, Yc = X[ix], Y[ix]
        for k in range(n):
            i = start + k
            if by_hand:
                loss, grads = loss_and_grads(layers, Xc[k], Yc[k])
            else:
                model = models[0]
                loss = F.cross_entropy(model(Xc[k, 0]), Yc[k, 0])
                grads = torch.autograd.grad(loss, params)
                loss = loss.view(1)  # (M,) as the stacked losses
            with torch.no_grad():
                neg_lr = -learning_rate(i, lr, decay_step)
                if neg_lr not in neg_lrs:
                    neg_lrs[neg_lr] = torch.tensor(neg_lr, dtype=params[0].dtype)
                torch._foreach_add_(params, torch._foreach_mul(grads, neg_lrs[neg_lr]))
                torch.log10(loss, out=lossi[i])
            if progress is not None and i % PROGRESS_EVERY == 0:
                progress(i)
    seconds = time.perf_counter() - t0
    if progress is not None:
        progress(steps)
    if by_hand:
        unstack(layers, models)
    n = len(params)
    return [History(lossi[:, k].contiguous(), torch.empty(0, n),
                    torch.empty(0, dtype=torch.int64), "plain", seconds) for k in range(M)]
