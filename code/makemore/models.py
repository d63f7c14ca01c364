"""One function per network configuration of the lecture.

Every builder draws its random numbers from a ``torch.Generator`` in the
lecture's order, so that with the lecture's seed (:data:`SEED`) the initial
weights, and therefore every number trained from them, reproduce. The generator
is passed on to the training loop afterwards, as in the lecture, which keeps
drawing its minibatches from the same stream.
"""
from __future__ import annotations

from typing import Literal

import torch

from .nn import (
    BatchNorm1d,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    Module,
    Residual,
    Sequential,
    Tanh,
)

SEED = 2147483647
VOCAB_SIZE = 27

MLPInit = Literal["original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm", "batchnorm_b1"]
MLP_INITS: tuple[str, ...] = ("original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm",
                              "batchnorm_b1")
# the inits with the lecture's BatchNorm after the hidden Linear layer
MLP_BATCHNORM_INITS: tuple[str, ...] = ("batchnorm", "batchnorm_b1")


def new_generator(seed: int = SEED) -> torch.Generator:
    """The lecture's ``torch.Generator().manual_seed(2147483647)``."""
    return torch.Generator().manual_seed(seed)


def mlp(init: MLPInit = "original", n_embd: int = 10, n_hidden: int = 200,
        block_size: int = 3, vocab_size: int = VOCAB_SIZE,
        generator: torch.Generator | None = None) -> Sequential:
    """The one-hidden-layer MLP of Bengio et al. (2003) with the lecture's inits.

    ``init`` picks the row of the lecture's loss log:

    - ``"original"``: ``C, W1, b1, W2, b2`` all unit Gaussians;
    - ``"fix_softmax"``: ``W2 * 0.01`` and ``b2 * 0``, so the initial logits are
      near zero and the initial loss near ``-ln(1/27)``;
    - ``"fix_tanh"``: additionally ``W1 * 0.2`` and ``b1 * 0.01`` so that the tanh
      layer is not saturated at init;
    - ``"kaiming"``: ``W1 * (5/3) / sqrt(fan_in)`` instead of the hand-tuned 0.2;
    - ``"batchnorm"``: Kaiming ``W1``, no ``b1`` (BatchNorm's mean subtraction
      would cancel it), then the lecture's BatchNorm: normalize by the unbiased
      std without eps, running mean/std with momentum 0.001;
    - ``"batchnorm_b1"``: the same network with ``b1`` kept, ``kaiming``'s
      ``b1 * 0.01``: what the lecture trained when it wrote BatchNorm's row of its
      loss log (the video's 12,297 parameters), before it noticed that ``b1`` is
      useless. Drawing ``b1`` shifts every random number after it.
    """
    if init not in MLP_INITS:
        raise ValueError(f"unknown MLP init {init!r}; choose one of {', '.join(MLP_INITS)}")
    g = new_generator() if generator is None else generator
    fan_in = n_embd * block_size
    C = torch.randn((vocab_size, n_embd), generator=g)
    W1 = torch.randn((fan_in, n_hidden), generator=g)
    b1 = None if init == "batchnorm" else torch.randn(n_hidden, generator=g)
    W2 = torch.randn((n_hidden, vocab_size), generator=g)
    b2 = torch.randn(vocab_size, generator=g)
    if init != "original":  # make the softmax less confidently wrong at init
        W2 = W2 * 0.01
        b2 = b2 * 0
    if init == "fix_tanh":  # keep the pre-activations inside tanh's active range
        W1 = W1 * 0.2
        b1 = b1 * 0.01
    elif init in ("kaiming", *MLP_BATCHNORM_INITS):  # gain 5/3 for tanh over sqrt(fan_in)
        W1 = W1 * (5 / 3) / fan_in**0.5
        if b1 is not None:
            b1 = b1 * 0.01

    emb = Embedding(vocab_size, n_embd, generator=torch.Generator())
    emb.weight = C
    hidden = Linear(fan_in, n_hidden, bias=b1 is not None, generator=torch.Generator())
    hidden.weight, hidden.bias = W1, b1
    out = Linear(n_hidden, vocab_size, generator=torch.Generator())
    out.weight, out.bias = W2, b2
    layers: list[Module] = [emb, Flatten(), hidden]
    if init in MLP_BATCHNORM_INITS:
        layers.append(BatchNorm1d(n_hidden, eps=0.0, momentum=0.001, unbiased=True,
                                  track_std=True))
    layers += [Tanh(), out]
    return _requires_grad(Sequential(layers))


def deep_mlp(batchnorm: bool = True, gain: float = 5 / 3, tanh: bool = True,
             n_layers: int = 6, n_embd: int = 10, n_hidden: int = 100,
             block_size: int = 3, vocab_size: int = VOCAB_SIZE,
             last_scale: float = 0.1, layernorm: bool = False, residual: bool = False,
             generator: torch.Generator | None = None) -> Sequential:
    """The lecture's deep network: ``n_layers`` Linear layers, each followed by
    BatchNorm (optional) and Tanh (optional) except the last, which is followed by
    BatchNorm only.

    ``gain`` multiplies every hidden Linear weight (already ``1/sqrt(fan_in)``):
    5/3 is tanh's gain; 1 lets activations shrink layer by layer; 3 saturates
    them. The last layer is made less confident at init by ``last_scale`` -- on
    BatchNorm's gamma when there is BatchNorm, otherwise on the weight.
    BatchNorm is the lecture's: unbiased variance to normalize, eps 1e-5,
    momentum 0.1.

    Chapter "Beyond BatchNorm": ``layernorm=True`` puts a :class:`LayerNorm` wherever
    BatchNorm would be (instead of it); ``residual=True`` wraps each hidden layer, the
    ``n_layers - 2`` from width ``n_hidden`` to ``n_hidden``, in a :class:`Residual`
    block, ``x + tanh(x @ W)``, around which the input passes unchanged. Both draw the
    same random numbers as the network without them: the same seed, the same weights.
    """
    if batchnorm and layernorm:
        raise ValueError("deep_mlp: choose BatchNorm or LayerNorm, not both")
    if residual and batchnorm:
        raise ValueError("deep_mlp: a residual block holds no BatchNorm (its running "
                         "statistics); use layernorm=True or no normalization")
    g = new_generator() if generator is None else generator
    emb = Embedding(vocab_size, n_embd, generator=g)
    layers: list[Module] = [emb, Flatten()]
    sizes = [n_embd * block_size] + [n_hidden] * (n_layers - 1) + [vocab_size]
    norm = batchnorm or layernorm
    for i in range(n_layers):
        last = i == n_layers - 1
        # with a normalization right after, a bias would be subtracted away (BatchNorm)
        # or duplicate its beta (LayerNorm): leave it out
        layers.append(Linear(sizes[i], sizes[i + 1], bias=not norm, generator=g))
        if batchnorm:
            layers.append(BatchNorm1d(sizes[i + 1], unbiased=True))
        elif layernorm:
            layers.append(LayerNorm(sizes[i + 1]))
        if tanh and not last:
            layers.append(Tanh())
    with torch.no_grad():
        if norm:
            layers[-1].gamma *= last_scale
        else:
            layers[-1].weight *= last_scale
        # as in the lecture, every Linear but the very last layer gets the gain
        # (with BatchNorm last, that includes the output Linear)
        for layer in layers[:-1]:
            if isinstance(layer, Linear):
                layer.weight *= gain
    if residual:
        layers = _residual_blocks(layers)
    return _requires_grad(Sequential(layers))


def _residual_blocks(layers: list[Module]) -> list[Module]:
    """Wrap every hidden layer of a deep net, a Linear from the width to the width and
    what follows it up to the next Linear, in a :class:`Residual` block; the first
    Linear (from the embeddings) and the output Linear change the width and stay out."""
    starts = [i for i, layer in enumerate(layers) if isinstance(layer, Linear)]
    out: list[Module] = layers[:starts[1]]
    for a, b in zip(starts[1:-1], starts[2:], strict=False):
        out.append(Residual(layers[a:b]))
    return out + layers[starts[-1]:]


def _requires_grad(model: Sequential) -> Sequential:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def num_params(model: Module) -> int:
    """Number of trainable scalars (the lecture's ``sum(p.nelement() ...)``)."""
    return sum(p.nelement() for p in model.parameters())
