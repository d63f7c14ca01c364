"""Sampling names from a trained model: the lecture's loop, one character at a time, and
a batched version that draws many names at once for statistics."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import Vocab
from .nn import Sequential

SAMPLE_SEED = 2147483647 + 10  # the lecture's sampling seed


@torch.no_grad()
def _defaults(generator: torch.Generator | None, vocab: Vocab | None, block_size: int
              ) -> tuple[torch.Generator, Vocab]:
    """The lecture's sampling generator (seed :data:`SAMPLE_SEED`) and the dataset's
    vocabulary, where the caller gives none."""
    g = torch.Generator().manual_seed(SAMPLE_SEED) if generator is None else generator
    if vocab is None:
        from .data import load_splits

        vocab = load_splits(block_size).vocab
    return g, vocab


def sample(model: Sequential, n: int = 20, generator: torch.Generator | None = None,
           vocab: Vocab | None = None, block_size: int = 3, max_len: int = 50,
           temperature: float = 1.0) -> list[str]:
    """Draw ``n`` names, each ending with ``'.'`` as the lecture prints them.

    The model runs in evaluation mode: a BatchNorm cannot normalize a batch of
    one example, so it must use its running statistics. ``max_len`` only guards
    against a model that never emits ``'.'``. ``temperature`` divides the logits
    (the exercise of chapter "Sampling"); at 1, the lecture's loop exactly.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    g, vocab = _defaults(generator, vocab, block_size)
    was_training = model.training
    model.eval()
    names = []
    try:
        for _ in range(n):
            out = []
            context = [0] * block_size
            while len(out) < max_len:
                logits = model(torch.tensor([context]))
                probs = F.softmax(logits / temperature, dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                out.append(ix)
                if ix == 0:
                    break
            names.append(vocab.decode(out))
    finally:
        model.train(was_training)
    return names


@torch.no_grad()
def sample_batch(model: Sequential, n: int = 1000, generator: torch.Generator | None = None,
                 vocab: Vocab | None = None, block_size: int = 3, max_len: int = 50,
                 temperature: float = 1.0) -> list[str]:
    """Draw ``n`` names at once: every unfinished name advances one character per
    forward pass (chapter "Sampling", for statistics over many samples).

    The same distribution as :func:`sample`, but not the same names for a seed: the
    draws of the ``n`` names interleave in the generator's stream. ``temperature``
    divides the logits. A name stops at its first ``'.'`` (kept, as :func:`sample`
    prints it) or after ``max_len`` characters.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    g, vocab = _defaults(generator, vocab, block_size)
    was_training = model.training
    model.eval()  # BatchNorm: running statistics, each name independent of the others
    out = torch.zeros(n, max_len, dtype=torch.long)  # (n, max_len) characters drawn
    lengths = torch.full((n,), max_len)  # each name's length, '.' included
    context = torch.zeros(n, block_size, dtype=torch.long)  # (n, block_size)
    active = torch.arange(n)  # the rows still drawing, as indices into out
    try:
        for t in range(max_len):
            if len(active) == 0:
                break
            probs = F.softmax(model(context) / temperature, dim=1)  # (n_active, vocab)
            ix = torch.multinomial(probs, num_samples=1, generator=g)  # (n_active, 1)
            out[active, t] = ix[:, 0]
            context = torch.cat([context[:, 1:], ix], dim=1)
            ended = ix[:, 0] == 0
            lengths[active[ended]] = t + 1
            active, context = active[~ended], context[~ended]
    finally:
        model.train(was_training)
    return [vocab.decode(row[:k].tolist()) for row, k in zip(out, lengths)]
