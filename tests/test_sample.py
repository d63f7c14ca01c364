"""makemore.sample.sample_batch: many names at once, the same distribution as the
lecture's one-at-a-time loop (makemore.sample.sample, which stays as it is)."""
from __future__ import annotations

import pytest
import torch
from makemore import models, sample
from makemore.data import build_vocab
from makemore.nn import Embedding, Flatten, Linear, Sequential

VOCAB = build_vocab(["abcdefghijklmnopqrstuvwxyz"])


def chain(stop_after: int = 5, sharp: float = 100.0) -> Sequential:
    """A model that reads only the last character of its context: after character i
    comes i + 1, and '.' after ``stop_after`` and after 'z' ('.' starts with 'a')."""
    emb = Embedding(27, 27)
    emb.weight = torch.eye(27)
    W = torch.zeros(3 * 27, 27)
    for i in range(27):
        W[2 * 27 + i, 0 if i == stop_after else (i + 1) % 27] = sharp
    lin = Linear(81, 27)
    lin.weight, lin.bias = W, torch.zeros(27)
    return Sequential([emb, Flatten(), lin])


def test_batch_follows_the_context_like_the_sequential_loop():
    want = sample.sample(chain(), 3, vocab=VOCAB)
    assert want == ["abcde."] * 3
    assert sample.sample_batch(chain(), 7, vocab=VOCAB) == ["abcde."] * 7


def test_names_stop_at_their_own_dot_and_at_max_len():
    # every character equally likely: names of all lengths end in one batch
    flat = chain(sharp=0.0)
    names = sample.sample_batch(flat, 500, vocab=VOCAB, generator=torch.Generator().manual_seed(0))
    assert len(names) == 500 and len({len(s) for s in names}) > 5
    # a name ends at its first '.', or has max_len = 50 characters and no '.'
    # ((26/27)^50: about 15% of the names here)
    assert all((s.endswith(".") and s.count(".") == 1) or (len(s) == 50 and "." not in s)
               for s in names)
    assert 20 < sum(len(s) == 50 for s in names) < 150
    never = chain(stop_after=-1)  # '.' never follows: cut at max_len, no '.'
    assert sample.sample_batch(never, 4, vocab=VOCAB, max_len=9) == ["abcdefghi"] * 4


def test_same_distribution_as_the_sequential_sampler(splits):
    """Name lengths of a small, briefly trained network: mean and the share of
    each first letter agree within sampling noise (1,000 names each)."""
    from makemore import train

    g = models.new_generator()
    model = models.mlp("kaiming", n_hidden=50, generator=g)
    train.train(model, splits.Xtr, splits.Ytr, 300, generator=g, progress=False)
    seq = sample.sample(model, 1000, generator=torch.Generator().manual_seed(1),
                        vocab=splits.vocab)
    bat = sample.sample_batch(model, 1000, generator=torch.Generator().manual_seed(2),
                              vocab=splits.vocab)
    len_s = torch.tensor([len(s) for s in seq], dtype=torch.float)
    len_b = torch.tensor([len(s) for s in bat], dtype=torch.float)
    se = (len_s.var() / 1000 + len_b.var() / 1000).sqrt()
    assert (len_s.mean() - len_b.mean()).abs() < 4 * se
    for c in "ajkm":  # frequent first letters: shares within 4 standard errors
        ps, pb = (sum(s[0] == c for s in x) / 1000 for x in (seq, bat))
        p = (ps + pb) / 2
        assert abs(ps - pb) < 4 * (2 * p * (1 - p) / 1000) ** 0.5 + 1e-9, c


def test_deterministic_and_model_mode_restored():
    m = chain(sharp=1.0).train()
    a = sample.sample_batch(m, 50, vocab=VOCAB, generator=torch.Generator().manual_seed(3))
    b = sample.sample_batch(m, 50, vocab=VOCAB, generator=torch.Generator().manual_seed(3))
    assert a == b and m.training
    with pytest.raises(ValueError, match="temperature"):
        sample.sample_batch(m, 1, vocab=VOCAB, temperature=0)


def test_temperature_sharpens_and_one_is_the_lecture_loop():
    soft = chain(sharp=1.0)  # the next letter only a little more likely than the others
    g = torch.Generator
    assert sample.sample(soft, 5, vocab=VOCAB, generator=g().manual_seed(4)) == \
        sample.sample(soft, 5, vocab=VOCAB, generator=g().manual_seed(4), temperature=1.0)
    assert sample.sample(soft, 5, vocab=VOCAB, generator=g().manual_seed(4)) != ["abcde."] * 5
    assert sample.sample(soft, 5, vocab=VOCAB, generator=g().manual_seed(4),
                         temperature=0.02) == ["abcde."] * 5
    with pytest.raises(ValueError, match="temperature"):
        sample.sample(soft, 1, vocab=VOCAB, temperature=-1)
