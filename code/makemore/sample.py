"""Sampling names from a trained model: the lecture's loop, one character at a time."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import Vocab
from .nn import Sequential

SAMPLE_SEED = 2147483647 + 10  # the lecture's sampling seed


@torch.no_grad()
def sample(model: Sequential, n: int = 20, generator: torch.Generator | None = None,
           vocab: Vocab | None = None, block_size: int = 3, max_len: int = 50
           ) -> list[str]:
    """Draw ``n`` names, each ending with ``'.'`` as the lecture prints them.

    The model runs in evaluation mode: a BatchNorm cannot normalize a batch of
    one example, so it must use its running statistics. ``max_len`` only guards
    against a model that never emits ``'.'``.
    """
    g = torch.Generator().manual_seed(SAMPLE_SEED) if generator is None else generator
    if vocab is None:
        from .data import load_splits

        vocab = load_splits(block_size).vocab
    was_training = model.training
    model.eval()
    names = []
    try:
        for _ in range(n):
            out = []
            context = [0] * block_size
            while len(out) < max_len:
                logits = model(torch.tensor([context]))
                probs = F.softmax(logits, dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                out.append(ix)
                if ix == 0:
                    break
            names.append(vocab.decode(out))
    finally:
        model.train(was_training)
    return names
