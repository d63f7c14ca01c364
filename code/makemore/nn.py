"""The teaching layers, written from scratch on plain tensors.

The API mirrors ``torch.nn`` (a module is called on its input and lists its
``parameters()``), but every layer is a handful of lines so the math stays
visible. Each layer keeps its last output in ``.out`` so the diagnostics can look
at activations and, after ``out.retain_grad()``, at their gradients.

Weights are stored as ``(fan_in, fan_out)`` and applied as ``x @ W`` (as in the
lecture); ``torch.nn.Linear`` stores the transpose.
"""
from __future__ import annotations

import torch


class Module:
    """The smallest common base: a ``training`` flag and ``parameters()``."""

    training: bool = True
    out: torch.Tensor | None = None

    def parameters(self) -> list[torch.Tensor]:
        return []

    def buffers(self) -> dict[str, torch.Tensor]:
        """Tensors that change during training but not by gradient descent."""
        return {}

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)


class Embedding(Module):
    """A lookup table ``C``: token ``i`` becomes row ``C[i]``."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 generator: torch.Generator | None = None) -> None:
        self.weight = torch.randn((num_embeddings, embedding_dim), generator=generator)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.out = self.weight[idx]
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight]


class Flatten(Module):
    """Concatenate the embeddings of a context: ``(B, T, C) -> (B, T*C)``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = x.view(x.shape[0], -1)
        return self.out


class Linear(Module):
    """``y = x @ W + b`` with ``W ~ N(0, 1/fan_in)``.

    Dividing by ``sqrt(fan_in)`` keeps the output's variance equal to the input's
    for unit-Gaussian inputs: each output sums ``fan_in`` products of variance
    ``1/fan_in``. The gain that a tanh needs on top is applied by the model.
    """

    def __init__(self, fan_in: int, fan_out: int, bias: bool = True,
                 generator: torch.Generator | None = None) -> None:
        self.weight = torch.randn((fan_in, fan_out), generator=generator) / fan_in**0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = x @ self.weight
        if self.bias is not None:
            self.out = self.out + self.bias
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d(Module):
    """Batch normalization over the batch dimension (Ioffe & Szegedy, 2015).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``, with ``mean``/``var`` of the
    batch in training and the running estimates in evaluation.

    The defaults match ``torch.nn.BatchNorm1d``: the *biased* variance normalizes
    the batch, the *unbiased* one feeds ``running_var``. The lecture's variants
    differ, and its numbers depend on them:

    - ``unbiased=True`` normalizes with the unbiased variance (the lecture's deep
      network, ``x.var(0)``);
    - ``track_std=True`` keeps a running *standard deviation* ``running_std``
      instead of ``running_var``, and with ``eps=0`` normalizes by ``x.std(0)``
      exactly as the lecture's first BatchNorm MLP (momentum 0.001).
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1,
                 unbiased: bool = False, track_std: bool = False) -> None:
        self.eps = eps
        self.momentum = momentum
        self.unbiased = unbiased
        self.track_std = track_std
        # parameters, trained with backprop
        self.gamma = torch.ones(dim)
        self.beta = torch.zeros(dim)
        # buffers, trained with a running "momentum update"
        self.running_mean = torch.zeros(dim)
        if track_std:
            self.running_std = torch.ones(dim)
        else:
            self.running_var = torch.ones(dim)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            xmean = x.mean(0, keepdim=True)
            if self.track_std:
                xstd = x.std(0, keepdim=True, unbiased=self.unbiased)
            else:
                xvar = x.var(0, keepdim=True, unbiased=self.unbiased)
        else:
            xmean = self.running_mean
            if self.track_std:
                xstd = self.running_std
            else:
                xvar = self.running_var
        if self.track_std:
            # the lecture's first BN: divide by the std itself (eps=0 gives exactly that)
            xhat = (x - xmean) / (xstd if self.eps == 0 else torch.sqrt(xstd**2 + self.eps))
        else:
            xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean = (1 - m) * self.running_mean + m * xmean.squeeze(0)
                if self.track_std:
                    self.running_std = (1 - m) * self.running_std + m * xstd.squeeze(0)
                else:
                    # like torch: running_var always tracks the unbiased variance
                    n = x.shape[0]
                    uvar = xvar if self.unbiased else xvar * n / (n - 1)
                    self.running_var = (1 - m) * self.running_var + m * uvar.squeeze(0)
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.gamma, self.beta]

    def buffers(self) -> dict[str, torch.Tensor]:
        if self.track_std:
            return {"running_mean": self.running_mean, "running_std": self.running_std}
        return {"running_mean": self.running_mean, "running_var": self.running_var}


class LayerNorm(Module):
    """Layer normalization over the features of each example (Ba et al., 2016).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with ``mean`` and the *biased*
    ``var`` of each row (example) over its features, as ``torch.nn.LayerNorm``: where
    BatchNorm averages a feature over the batch, LayerNorm averages an example over its
    features. Nothing depends on the other examples of the batch, so there are no
    running statistics, training and evaluation compute the same function, and a batch
    of one example is as good as any. Introduced in the chapter "Beyond BatchNorm".
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        self.eps = eps
        # parameters, trained with backprop: one scale and one shift per feature
        self.gamma = torch.ones(dim)
        self.beta = torch.zeros(dim)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xmean = x.mean(-1, keepdim=True)  # (B, 1): one mean per example
        xvar = x.var(-1, keepdim=True, unbiased=False)  # (B, 1), as torch.nn.LayerNorm
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.gamma, self.beta]


class Tanh(Module):
    """The squashing non-linearity; its local gradient is ``1 - tanh(x)**2``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = torch.tanh(x)
        return self.out


class Sequential(Module):
    """Apply layers in order; ``parameters()`` concatenates theirs."""

    def __init__(self, layers: list[Module]) -> None:
        self.layers = layers

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers by ``"<layer index>.<name>"`` (detached copies); a
        layer inside a :class:`Residual` block is ``"<block>.<index in it>.<name>"``."""
        return {key: t.detach().clone() for key, t in _tensors(self.layers).items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> Sequential:
        """Copy tensors from :meth:`state_dict` output back into the layers."""
        own = _tensors(self.layers)
        missing = set(own) - set(state)
        unexpected = set(state) - set(own)
        if missing or unexpected:
            raise ValueError(
                f"state does not fit this model: missing {sorted(missing)}, "
                f"unexpected {sorted(unexpected)}; was it saved from another configuration?")
        for key, t in state.items():
            if own[key].shape != t.shape:
                raise ValueError(f"{key}: shape {tuple(t.shape)} does not fit "
                                 f"{tuple(own[key].shape)}")
            with torch.no_grad():
                own[key].copy_(t)
        return self


class Residual(Sequential):
    """A residual block (He et al., 2016): ``x + f(x)`` for the layers ``f`` it holds.

    The input passes around the block unchanged and the block only adds to it, so the
    gradient reaching ``x`` is the gradient of the output *plus* what flows back through
    ``f``: an identity path from the loss to every block, whatever ``f`` does to its
    share. ``f`` must keep the width. Its layers may not hold running statistics (no
    BatchNorm inside: :meth:`Sequential.state_dict` names a block's tensors by position).
    A :class:`Sequential` whose call adds its input back: ``parameters()`` and ``train()``
    are Sequential's. Introduced in the chapter "Beyond BatchNorm".
    """

    def __init__(self, layers: list[Module]) -> None:
        for layer in layers:
            if layer.buffers() or isinstance(layer, Residual):
                raise TypeError(f"a Residual block holds plain layers only, not "
                                f"{type(layer).__name__} (running statistics, nested blocks)")
        super().__init__(layers)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = layer(h)
        self.out = x + h  # the residual stream: input plus the block's contribution
        return self.out


def _tensors(layers: list[Module], prefix: str = "") -> dict[str, torch.Tensor]:
    """The layers' own parameter and buffer tensors (not copies) by state-dict key."""
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, Residual):
            out |= _tensors(layer.layers, f"{prefix}{i}.")
            continue
        for name in ("weight", "bias", "gamma", "beta"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                out[f"{prefix}{i}.{name}"] = t
        for name, t in layer.buffers().items():
            out[f"{prefix}{i}.{name}"] = t
    return out
