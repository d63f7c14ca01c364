"""Forward and backward statistics: the numbers behind the lecture's diagnostic plots.

Pure functions on tensors and models, no plotting (that is :mod:`makemore.show.plots`).
The four diagnostics of the lecture, in the order it shows them:

1. :func:`forward_stats`     -- activation distribution of every Tanh layer;
2. :func:`backward_stats`    -- gradient distribution of the same layers;
3. :func:`weight_grad_stats` -- gradient distribution of every 2-D parameter and its
   grad:data ratio;
4. :func:`update_ratios`     -- update:data ratio of every 2-D parameter over training.

:func:`diagnose` runs one forward and backward pass and collects 1-3, so a chapter
can look at a network at initialization without training it. Layers are numbered
as in the lecture, whose ``layers`` list starts at the first Linear: the embedding
table ``C`` and the flattening view sit outside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nn import Linear, Module, Sequential, Tanh

SATURATION = 0.97  # the lecture's "saturated" for its printout: |t| > 0.97
DEAD = 0.99  # the lecture's white-pixel test for the saturation map: |h| > 0.99
HIST_BINS = 100  # torch.histogram's default, as in the lecture


@dataclass
class Histogram:
    """A density histogram: ``density[k]`` over the bin ``edges[k]..edges[k+1]``."""

    density: torch.Tensor
    edges: torch.Tensor

    @property
    def centers(self) -> torch.Tensor:
        return (self.edges[:-1] + self.edges[1:]) / 2


def histogram(t: torch.Tensor, bins: int = HIST_BINS) -> Histogram:
    """The lecture's ``hy, hx = torch.histogram(t, density=True)``.

    ``density=True`` scales the counts so that the area under the curve is 1;
    layers with different numbers of elements then share one y-axis.
    (``torch.histogram`` runs on CPU float tensors only, hence the conversion.)
    """
    hy, hx = torch.histogram(t.detach().float().cpu(), bins=bins, density=True)
    return Histogram(hy, hx)


def saturated_fraction(t: torch.Tensor, threshold: float = SATURATION) -> float:
    """Fraction of the entries of ``t`` in tanh's flat tails, ``|t| > threshold``."""
    return (t.detach().abs() > threshold).float().mean().item()


def saturation_map(h: torch.Tensor, threshold: float = DEAD) -> torch.Tensor:
    """``h.abs() > threshold``: True where a tanh output sits in a flat tail.

    There the local gradient ``1 - h**2`` is below ``1 - 0.99**2 = 0.02``, so
    (almost) nothing flows back through that neuron for that example.
    """
    return h.detach().abs() > threshold


def dead_neurons(h: torch.Tensor, threshold: float = DEAD) -> torch.Tensor:
    """Indices of the neurons (columns of ``h``) saturated for *every* example.

    The lecture's white column: such a neuron passes no gradient for any input
    in the batch, so its incoming weights never learn -- a dead neuron.
    """
    return saturation_map(h, threshold).all(dim=0).nonzero().flatten()


def tanh_grad_survival(h: torch.Tensor) -> float:
    """Mean of ``1 - h**2``: the average fraction of gradient a tanh lets through.

    Backprop through ``h = tanh(x)`` multiplies the gradient by ``1 - h**2``: 1 at
    ``h = 0`` (the gradient passes untouched), 0 at ``h = +-1`` (it is killed).
    """
    return (1 - h.detach() ** 2).mean().item()


# ---------------------------------------------------------------------------
# per-layer statistics (plots 1 and 2)

@dataclass
class LayerStats:
    """Statistics of one layer's output (or of its gradient).

    ``index`` is the lecture's layer number (counted from the first Linear),
    ``block`` the number of Linear layers up to this one (0 for the embedding):
    the k-th Linear, the BatchNorm and the Tanh after it share block k and a color.
    ``saturated`` is the fraction ``|t| > 0.97`` (``None`` for gradients).
    """

    index: int
    name: str
    block: int
    mean: float
    std: float
    saturated: float | None
    hist: Histogram

    def __str__(self) -> str:  # the lecture's printout
        kind = self.name.split("(")[-1].rstrip(")")
        if self.saturated is None:
            return f"layer {self.index} ({kind:>10s}): mean {self.mean:+f}, std {self.std:e}"
        return (f"layer {self.index} ({kind:>10s}): mean {self.mean:+.2f}, "
                f"std {self.std:.2f}, saturated: {self.saturated * 100:.2f}%")


def _first_linear(model: Sequential) -> int:
    """Position of the first Linear in ``model.layers`` (the lecture's layer 0)."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Linear):
            return i
    return 0


def lecture_layer(model: Sequential, index: int) -> Module:
    """The layer the lecture calls ``layers[index]``, e.g. the "layer 1 (Tanh)" of a
    :class:`LayerStats` (``model.layers`` also holds the embedding and the flatten)."""
    return model.layers[_first_linear(model) + index]


def layer_blocks(model: Sequential) -> list[int]:
    """For each layer, its block: how many Linear layers come up to and including it
    (0 for the embedding; the k-th Linear and what follows it are block k)."""
    blocks, n = [], 0
    for layer in model.layers:
        # a residual block (chapter "Beyond BatchNorm") counts the Linear layers inside it
        inner = getattr(layer, "layers", [layer])
        n += sum(isinstance(sub, Linear) for sub in inner)
        blocks.append(n)
    return blocks


def _layer_stats(model: Sequential, kind: type[Module], grad: bool, threshold: float,
                 bins: int) -> list[LayerStats]:
    offset, blocks = _first_linear(model), layer_blocks(model)
    stats = []
    for i, layer in enumerate(model.layers[:-1]):  # the output layer is left out
        if not isinstance(layer, kind):
            continue
        t = layer.out
        if t is None:
            raise ValueError(f"layer {i} has no .out: run a forward pass first")
        if grad:
            # only a leaf or a tensor that retained it has a .grad (asking others warns)
            t = t.grad if (t.is_leaf or t.retains_grad) else None
            if t is None:
                raise ValueError(f"layer {i} has no .out.grad: call .out.retain_grad() "
                                 f"before loss.backward() (train(..., retain_grad=True) "
                                 f"or diagnose() do it)")
        t = t.detach()
        name = f"layer {i - offset} ({type(layer).__name__})"
        sat = None if grad else saturated_fraction(t, threshold)
        stats.append(LayerStats(i - offset, name, blocks[i], t.mean().item(), t.std().item(),
                                sat, histogram(t, bins)))
    return stats


def forward_stats(model: Sequential, kind: type[Module] = Tanh,
                  threshold: float = SATURATION, bins: int = HIST_BINS) -> list[LayerStats]:
    """Plot 1: mean, std, saturation and histogram of ``.out`` of every ``kind`` layer.

    A healthy tanh network keeps a similar std in every layer and a few percent
    saturated; too small a gain lets the std shrink with depth, too large a gain
    piles the activations up at +-1.
    """
    return _layer_stats(model, kind, grad=False, threshold=threshold, bins=bins)


def backward_stats(model: Sequential, kind: type[Module] = Tanh,
                   bins: int = HIST_BINS) -> list[LayerStats]:
    """Plot 2: mean, std and histogram of ``.out.grad`` of every ``kind`` layer.

    Needs the gradients of the layer outputs, which PyTorch throws away unless
    ``out.retain_grad()`` was called. Healthy: the same std in every layer, so
    that no layer learns much faster or slower than the others.
    """
    return _layer_stats(model, kind, grad=True, threshold=SATURATION, bins=bins)


# ---------------------------------------------------------------------------
# weight gradients (plot 3) and update ratios (plot 4)

@dataclass
class ParamStats:
    """Statistics of one 2-D parameter's gradient.

    ``grad_data`` is ``grad.std() / p.std()``: how large the gradient is next to
    the numbers it will change. ``index`` is the position in ``model.parameters()``.
    """

    index: int
    name: str
    block: int
    shape: tuple[int, ...]
    mean: float
    std: float
    grad_data: float
    hist: Histogram

    def __str__(self) -> str:  # the lecture's printout
        return (f"weight {str(self.shape):>10s} | mean {self.mean:+f} | std {self.std:e} "
                f"| grad:data ratio {self.grad_data:e}")


def _param_blocks(model: Sequential) -> list[int]:
    """The block of the layer that owns each parameter, in ``parameters()`` order."""
    return [b for layer, b in zip(model.layers, layer_blocks(model), strict=True)
            for _ in layer.parameters()]


def weight_columns(model: Sequential) -> list[tuple[int, str, int]]:
    """``(column, name, block)`` of every 2-D parameter in ``parameters()`` order: ``C``
    is block 0, the k-th Linear's weight ``Wk`` block k (chapter "Diagnostics": the
    columns of an update:data history that the plots draw)."""
    return [(j, f"W{block}" if block else "C", block)
            for j, (p, block) in enumerate(zip(model.parameters(), _param_blocks(model),
                                               strict=True))
            if p.ndim == 2]


def weight_grad_stats(model: Sequential, bins: int = HIST_BINS) -> list[ParamStats]:
    """Plot 3: gradient statistics of every 2-D parameter (the lecture's ``p.ndim == 2``).

    Biases and BatchNorm's gamma/beta are left out, as in the lecture: the
    weight matrices are where most of the parameters, and the trouble, are.
    """
    stats = []
    for i, (p, block) in enumerate(zip(model.parameters(), _param_blocks(model), strict=False)):
        if p.ndim != 2:
            continue
        if p.grad is None:
            raise ValueError(f"parameter {i} {tuple(p.shape)} has no .grad: "
                             f"run loss.backward() first")
        g = p.grad.detach()
        shape = tuple(p.shape)
        stats.append(ParamStats(i, f"{i} {shape}", block, shape, g.mean().item(),
                                g.std().item(), (g.std() / p.detach().std()).item(),
                                histogram(g, bins)))
    return stats


def update_ratios(ud: torch.Tensor, parameters: list[torch.Tensor]
                  ) -> tuple[torch.Tensor, list[str]]:
    """Plot 4: the 2-D parameters' columns of a ``History.ud``, and their names.

    ``ud`` is ``(records, n_params)``: ``ud[i, j]`` is ``log10(std(lr * grad_j) / std(p_j))``
    (a nested list is accepted too). Returns a ``(records, n_2d)`` tensor and the legend
    names ``"param j"``. About -3 (an update a thousandth of the data) is the lecture's
    rule of thumb.
    """
    ud = torch.as_tensor(ud, dtype=torch.float32)
    if ud.numel() == 0:
        raise ValueError("empty ud history: train with record_ud=True")
    if ud.ndim != 2 or ud.shape[1] != len(parameters):
        raise ValueError(f"ud has shape {tuple(ud.shape)} but there are {len(parameters)} "
                         f"parameters: pass the parameters of the model that was trained")
    cols = [j for j, p in enumerate(parameters) if p.ndim == 2]
    return ud[:, cols], [f"param {j}" for j in cols]


# ---------------------------------------------------------------------------
# one diagnostic pass

@dataclass
class Diagnosis:
    """Plots 1-3 of one minibatch, and its loss."""

    loss: float
    forward: list[LayerStats]
    backward: list[LayerStats]
    weights: list[ParamStats]


def diagnose(model: Sequential, X: torch.Tensor, Y: torch.Tensor, batch_size: int = 32,
             generator: torch.Generator | None = None, kind: type[Module] = Tanh
             ) -> Diagnosis:
    """One forward and backward pass on a minibatch, as at a training step, no update.

    The minibatch is drawn exactly like ``train``'s, so with the generator the
    model was built with it is the lecture's first batch. The forward pass runs
    in training mode (BatchNorm uses the batch statistics); the BatchNorm running
    statistics it updates are put back, and the parameters are not touched.
    Left behind: every layer's ``.out`` (for :func:`saturation_map`) and the
    parameters' ``.grad`` of this batch.
    """
    buffers = [(layer, name, t.clone()) for layer in model.layers
               for name, t in layer.buffers().items()]
    was_training = model.training
    model.train()
    try:
        ix = torch.randint(0, X.shape[0], (batch_size,), generator=generator)
        loss = F.cross_entropy(model(X[ix]), Y[ix])
        for layer in model.layers:
            if layer.out is not None and layer.out.requires_grad:
                layer.out.retain_grad()
        for p in model.parameters():
            p.grad = None
        loss.backward()
    finally:
        for layer, name, t in buffers:
            setattr(layer, name, t)
        model.train(was_training)
    return Diagnosis(loss.item(), forward_stats(model, kind), backward_stats(model, kind),
                     weight_grad_stats(model))


# ---------------------------------------------------------------------------
# the lecture's initialization experiments

def matmul_std(scale: float, fan_in: int = 10, fan_out: int = 200, n: int = 1000,
               generator: torch.Generator | None = None) -> float:
    """Std of ``y = x @ w`` for unit-Gaussian ``x`` and ``w = scale * N(0, 1)``.

    Each ``y`` sums ``fan_in`` products of variance ``scale**2``, so
    ``std(y) = scale * sqrt(fan_in)``: ``scale = 1 / sqrt(fan_in)`` keeps the std at 1.
    """
    x = torch.randn((n, fan_in), generator=generator)
    w = torch.randn((fan_in, fan_out), generator=generator) * scale
    return (x @ w).std().item()


@dataclass
class LinearStats:
    """Stds of the lecture's bonus cells: forward values, then their gradients."""

    inp: float
    w: float
    x: float
    out: float
    out_grad: float
    x_grad: float
    w_grad: float
    inp_grad: float


def linear_stats(n: int = 1000, scale: float = 1.0, batchnorm: bool = False,
                 generator: torch.Generator | None = None) -> LinearStats:
    """The lecture's bonus: ``x = w @ inp`` with an ``(n, n)`` weight, optionally normalized.

    With ``scale = 1`` the forward std grows by ``sqrt(n)`` (about 31.6 for
    n=1000) and the gradient of ``inp`` by as much; ``scale = 1/sqrt(n)`` keeps
    both at 1. With ``batchnorm=True``, ``out = (x - x.mean()) / sqrt(x.var() + eps)``
    is unit-std whatever the scale, and it divides the gradient flowing back into
    ``x`` by the same std, so the scale of ``w`` no longer matters. With the
    lecture's seed this reproduces both cells (``b @ a`` of the "Linear" cell
    draws the same numbers as ``w @ inp``).
    """
    inp = torch.randn(n, generator=generator).requires_grad_()
    w = (torch.randn((n, n), generator=generator) * scale).requires_grad_()
    x = w @ inp
    out = (x - x.mean()) / torch.sqrt(x.var() + 1e-5) if batchnorm else x
    loss = out @ torch.randn(n, generator=generator)
    for t in (x, out):
        t.retain_grad()
    loss.backward()
    return LinearStats(inp.std().item(), w.std().item(), x.std().item(), out.std().item(),
                       out.grad.std().item(), x.grad.std().item(), w.grad.std().item(),
                       inp.grad.std().item())


def depth_stds(gain: float, n_layers: int = 5, width: int = 100, tanh: bool = True,
               n: int = 1000, generator: torch.Generator | None = None) -> list[float]:
    """Std of the activations after each of ``n_layers`` Linear(+Tanh) layers.

    Weights are ``gain * N(0, 1) / sqrt(width)`` (Kaiming with a gain). Without
    tanh, gain 1 keeps the std at 1 and any other gain grows or shrinks it
    geometrically. With tanh, which squashes, gain 1 lets the std shrink with
    depth, 5/3 (tanh's gain) holds it steady and 3 drives it to saturation.
    """
    x = torch.randn((n, width), generator=generator)
    stds = []
    for _ in range(n_layers):
        x = x @ (torch.randn((width, width), generator=generator) * gain / width**0.5)
        if tanh:
            x = torch.tanh(x)
        stds.append(x.std().item())
    return stds


def window_means(x: torch.Tensor, window: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mid-window steps, means) of ``x`` over non-overlapping windows of ``window``
    rows: the lecture series' ``lossi.view(-1, 1000).mean(1)`` (makemore part 5).
    A last, incomplete window is left out. Introduced in "The MLP" (the loss curve)."""
    n = len(x) // window
    means = x[: n * window].float().reshape(n, window, *x.shape[1:]).mean(1)
    return torch.arange(n) * window + (window - 1) / 2, means
