"""A network's parameters by name, and what their gradients and values say about
symmetry (chapter "Exercises", E01: what happens when every parameter starts at zero).

A parameter is named by its layer and attribute, ``"layer 6 Linear.bias"``, in the
order of ``model.parameters()``, so a table of gradients reads like the network.
"""
from __future__ import annotations

import torch
from IPython.display import Markdown

from ..nn import Linear, Sequential
from ..show import tables

ATTRIBUTES = ("weight", "bias", "gamma", "beta")  # the parameters of makemore.nn's layers


def named_parameters(model: Sequential) -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` for every parameter, in the order of ``model.parameters()``."""
    named = []
    for i, layer in enumerate(model.layers):
        for p in layer.parameters():
            attr = next(a for a in ATTRIBUTES if getattr(layer, a, None) is p)
            named.append((f"layer {i} {type(layer).__name__}.{attr}", p))
    return named


@torch.no_grad()
def fill(model: Sequential, value: float) -> Sequential:
    """Set every parameter of ``model`` to ``value`` in place (0: the all-zero network
    of E01); returns ``model``."""
    for p in model.parameters():
        p.fill_(value)
    return model


def _grad(name: str, p: torch.Tensor) -> torch.Tensor:
    if p.grad is None:
        raise ValueError(f"{name} has no gradient: run a backward pass first "
                         "(stats.diagnose does one)")
    return p.grad


def gradient_table(model: Sequential) -> Markdown:
    """Every parameter's gradient after a backward pass: its shape, largest absolute
    entry and how many entries are not exactly zero."""
    rows = []
    for name, p in named_parameters(model):
        g = _grad(name, p)
        rows.append([name, str(tuple(p.shape)), f"{g.abs().max().item():.3g}",
                     f"{int((g != 0).sum())} of {p.numel()}"])
    return tables.markdown(rows, ["parameter", "shape", "max abs grad", "non-zero entries"],
                           align="llrr")


def live_parameters(model: Sequential) -> list[str]:
    """The names of the parameters with a gradient that is not zero in every entry."""
    return [name for name, p in named_parameters(model) if (_grad(name, p) != 0).any()]


def unit_spread(model: Sequential) -> float:
    """How different the units of the hidden layers are: the largest standard deviation
    along a row of any hidden Linear weight (the output layer not counted). Zero when
    every unit of every hidden layer computes the same function."""
    hidden = [layer.weight.detach() for layer in model.layers if isinstance(layer, Linear)][:-1]
    if not hidden:
        raise ValueError("the network has no hidden Linear layer")
    return max(W.std(dim=1).max().item() for W in hidden)
