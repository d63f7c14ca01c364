"""Statistics of a list of names: lengths, letter counts, which names are real, and how
likely names are under a model.

The same questions are asked of ``names.txt`` (chapter "Data": how long are the names,
which letters occur) and of the names a network samples (chapter "Sampling": are they
names of the training set, real names the network never saw, or new; how long; how
surprising to the network that made them). Every function takes plain lists of names;
a sampled name may keep the ``'.'`` that ended it (:func:`makemore.sample.sample`
prints it), which is stripped before counting. The ``*_numbers`` functions return the
numbers a chapter's prose quotes, keyed as the prose's glue keys (see
:func:`makemore.book.glue_all`).
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from IPython.display import Markdown

from ..data import BOUNDARY, Splits, Vocab, build_dataset
from ..nn import Sequential
from ..show import tables

SHORT = 3  # "short" names: this many characters or fewer (chapter "Sampling")
LONG = 10  # "long" names: this many characters or more


def strip_end(names: Sequence[str]) -> list[str]:
    """The names without the ``'.'`` that ends a sampled name."""
    return [s.rstrip(BOUNDARY) for s in names]


def lengths(names: Sequence[str]) -> torch.Tensor:
    """(n,) the length of every name in characters, its ending ``'.'`` not counted."""
    return torch.tensor([len(s) for s in strip_end(names)])


def code_list(chars: Sequence[str]) -> Markdown:
    """``a``, ``e``, ... as inline code, for prose that names letters or names."""
    return Markdown(", ".join(f"`{c}`" for c in chars))


# --- names.txt (chapter "Data") -----------------------------------------------------

def length_summary(words: Sequence[str]) -> dict[str, float | int]:
    """How many names and characters, and the names' shortest, longest, mean and most
    common length (chapter "Data")."""
    n = lengths(words)
    return {"n-words": len(words), "n-chars": int(n.sum()), "len-min": int(n.min()),
            "len-max": int(n.max()), "len-mean": n.float().mean().item(),
            "len-mode": int(n.mode().values)}


def letter_counts(words: Sequence[str]) -> dict[str, int]:
    """How often each character occurs in ``words``, in alphabetical order."""
    counts = Counter("".join(words))
    return {c: counts[c] for c in sorted(counts)}


def letter_summary(words: Sequence[str], k: int = 5) -> dict[str, object]:
    """The most and least frequent letters and their share of all characters (chapter
    "Data"): ``top-char``/``rare-char`` (inline code), their counts and the top one's
    share in percent, and the ``k`` most frequent (``top5``) and rarest (``rare5``,
    rarest first) with their shares."""
    counts = letter_counts(words)
    total = sum(counts.values())
    by_count = sorted(counts, key=counts.get, reverse=True)
    top, rare = by_count[:k], by_count[-k:][::-1]
    return {"top-char": code_list(top[:1]), "top-count": counts[top[0]],
            "top-share": 100 * counts[top[0]] / total,
            "rare-char": code_list(rare[:1]), "rare-count": counts[rare[0]],
            f"top{k}": code_list(top), f"rare{k}": code_list(rare),
            f"top{k}-share": 100 * sum(counts[c] for c in top) / total,
            f"rare{k}-share": 100 * sum(counts[c] for c in rare) / total,
            "top-letters": "".join(top), "rare-letters": "".join(rare)}


def vocab_grid(vocab: Vocab, cols: int = 9) -> tuple[list[list[str]], list[str]]:
    """``itos`` as a grid for :func:`makemore.show.tables.markdown`: the token in row ``r``
    and column ``+c`` has index ``r + c`` (chapter "Data"). Returns ``(rows, header)``."""
    header = ["index"] + [f"+{c}" for c in range(cols)]
    rows = []
    for start in range(0, len(vocab), cols):
        tokens = [f"`{vocab.itos[i]}`" for i in range(start, min(start + cols, len(vocab)))]
        rows.append([str(start)] + tokens + [""] * (cols - len(tokens)))
    return rows, header


def split_numbers(splits: Splits) -> dict[str, float | int]:
    """The examples of each split, all of them, and the training split's share of them
    in percent (chapter "Data")."""
    n = {"n-train": len(splits.Xtr), "n-val": len(splits.Xdev), "n-test": len(splits.Xte)}
    n["n-examples"] = sum(n.values())
    n["train-share"] = 100 * n["n-train"] / n["n-examples"]
    return n


# --- real or new (chapter "Sampling") ----------------------------------------------

@dataclass(frozen=True)
class NameSplit:
    """The names of the lecture's 80/10/10 split (:func:`makemore.data.make_splits`)."""

    train: frozenset[str]
    val: frozenset[str]
    test: frozenset[str]

    @cached_property  # a set difference of ~29,000 names: once, not once per sample
    def heldout(self) -> frozenset[str]:
        """Real names the network never trained on: validation and test names that are
        not also training names (a few names occur twice in names.txt)."""
        return (self.val | self.test) - self.train


def split_names(words: Sequence[str], seed: int = 42) -> NameSplit:
    """The names of each split, shuffled and cut exactly as
    :func:`makemore.data.make_splits` cuts them into examples."""
    words = list(words)
    random.Random(seed).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return NameSplit(frozenset(words[:n1]), frozenset(words[n1:n2]), frozenset(words[n2:]))


@dataclass(frozen=True)
class Novelty:
    """Shares (0 to 1) of names that are training names, real but unseen names, new."""

    train: float
    heldout: float
    new: float

    @property
    def real(self) -> float:
        return self.train + self.heldout


def novelty(names: Sequence[str], split: NameSplit) -> Novelty:
    """Which share of ``names`` is in the training set, real but unseen, or new."""
    plain = strip_end(names)
    train = sum(s in split.train for s in plain) / len(plain)
    heldout = sum(s in split.heldout for s in plain) / len(plain)
    return Novelty(train, heldout, 1 - train - heldout)


def new_names(names: Sequence[str], split: NameSplit, k: int = 8) -> list[str]:
    """The first ``k`` of ``names`` that are not real names."""
    real = split.train | split.heldout
    return [s for s in strip_end(names) if s not in real][:k]


def novelty_numbers(names: Sequence[str], split: NameSplit, k: int = 8) -> dict[str, object]:
    """Percent training names, real but unseen, new; and the first ``k`` new names
    (``examples``, inline code), for the prose."""
    share = novelty(names, split)
    return {"train": 100 * share.train, "heldout": 100 * share.heldout,
            "new": 100 * share.new, "examples": code_list(new_names(names, split, k))}


def novelty_table(groups: dict[object, Sequence[str]], split: NameSplit,
                  key: str = "T") -> Markdown:
    """A table with one row per group of names (``{key: names}``): the shares of
    training names, real but unseen names and new names, and the mean length."""
    rows = []
    for k, names in groups.items():
        share = novelty(names, split)
        mean_length = sum(map(len, strip_end(names))) / len(names)  # as Python floats
        rows.append([str(k), f"{share.train:.1%}", f"{share.heldout:.1%}",
                     f"{share.new:.1%}", f"{mean_length:.2f}"])
    return tables.markdown(rows, [key, "in training set", "real, unseen", "new",
                                  "mean length"], align="rrrrr")


# --- how likely, how long ----------------------------------------------------------

@torch.no_grad()
def nll_per_char(model: Sequential, names: Sequence[str], vocab: Vocab,
                 block_size: int = 3) -> float:
    """Mean negative log-likelihood per character of ``names`` under ``model`` in
    evaluation mode, the end token included (the loss the chapters report, on these
    names). The model's mode is restored."""
    X, Y = build_dataset(strip_end(names), block_size, vocab)
    was_training = model.training
    model.eval()
    try:
        return F.cross_entropy(model(X), Y).item()
    finally:
        model.train(was_training)


def length_distribution(lens: torch.Tensor, max_len: int = 20) -> torch.Tensor:
    """(max_len,) the share of names of length 1, 2, ..., ``max_len`` or more."""
    counts = torch.bincount(lens.clamp(max=max_len), minlength=max_len + 1)[1:].float()
    return counts / counts.sum()


def length_numbers(lens: torch.Tensor) -> dict[str, float]:
    """Mean length, and percent of names of at most :data:`SHORT` and of at least
    :data:`LONG` characters."""
    return {"len": lens.float().mean().item(),
            "short": 100 * (lens <= SHORT).float().mean().item(),
            "long": 100 * (lens >= LONG).float().mean().item()}


@dataclass
class Samples:
    """``n`` names a network sampled, measured (chapter "Sampling")."""

    names: list[str]  # without their ending '.'
    share: Novelty
    nll: float  # per character, under the network that sampled them
    val: float  # the network's validation loss
    lengths: torch.Tensor = field(repr=False)

    def numbers(self) -> dict[str, float]:
        """The prose's numbers: percent training, unseen (``heldout``), new (``novel``)
        and real names, mean length and its tails, own NLL and validation loss."""
        return {"train": 100 * self.share.train, "heldout": 100 * self.share.heldout,
                "novel": 100 * self.share.new, "real": 100 * self.share.real,
                **length_numbers(self.lengths), "nll": self.nll, "val": self.val}


def measure(model: Sequential, split: NameSplit, vocab: Vocab, val: float,
            n: int = 1000, seed: int | None = None) -> Samples:
    """Sample ``n`` names at once (:func:`makemore.sample.sample_batch`, the lecture's
    sampling seed unless ``seed`` is given) and measure them."""
    from ..sample import SAMPLE_SEED, sample_batch

    g = torch.Generator().manual_seed(SAMPLE_SEED if seed is None else seed)
    names = strip_end(sample_batch(model, n, generator=g, vocab=vocab))
    return Samples(names, novelty(names, split), nll_per_char(model, names, vocab), val,
                   lengths(names))


def sample_table(measured: dict[str, Samples], data_lengths: torch.Tensor) -> Markdown:
    """One row per network: validation loss, the shares of its samples that are
    training names, real but unseen and new, their mean length and their NLL per
    character; a last row with the mean length of the real names (``data_lengths``)."""
    rows: list[list[object]] = [
        [label, m.val, f"{m.share.train:.1%}", f"{m.share.heldout:.1%}",
         f"{m.share.new:.1%}", f"{m.lengths.float().mean():.2f}", m.nll]
        for label, m in measured.items()]
    rows.append(["the data (names.txt)", "", "", "", "", f"{data_lengths.float().mean():.2f}", ""])
    return tables.markdown(rows, ["network", "val loss", "in training set", "real, unseen",
                                  "new", "mean length", "NLL/char of own samples"],
                           align="lrrrrrr")


def quality_numbers(measured: dict[str, Samples], final: str) -> dict[str, object]:
    """Across networks: how many, the correlation of validation loss and the share of
    real names, and own-sample NLL minus validation loss (``gap-*``; ``above``: a
    sentence on how many networks lie above the line where the two are equal)."""
    vals = torch.tensor([m.val for m in measured.values()])
    real = torch.tensor([m.share.real for m in measured.values()])
    gap = torch.tensor([m.nll for m in measured.values()]) - vals
    n_above = int((gap > 0).sum())
    above = (f"All {len(gap)} networks lie below the line" if n_above == 0 else
             f"{n_above} of the {len(gap)} networks lie above the line, the others below it")
    return {"n-models": len(measured),
            "corr": torch.corrcoef(torch.stack([vals, real]))[0, 1].item(),
            "gap-final": measured[final].nll - measured[final].val,
            "gap-min": gap.min().item(), "gap-max": gap.max().item(),
            "above": Markdown(above)}


def shared_numbers(left: Sequence[str], right: Sequence[str]) -> dict[str, int]:
    """Two equally long columns of names: how many names both share (``shared-20``),
    how many of those stand a row apart, and how many rows start with the same two
    letters (chapter "Sampling": two networks, one seed)."""
    n = len(left)
    if len(right) != n:
        raise ValueError(f"columns of {n} and {len(right)} names")
    return {"shared-20": len(set(left) & set(right)),
            "row-apart": sum(left[i] == right[j] for i in range(n) for j in range(n)
                             if abs(i - j) == 1),
            "same-start": sum(a[:2] == b[:2] for a, b in zip(left, right, strict=True))}


def numbered(*columns: Sequence[str]) -> list[list[object]]:
    """Rows ``[i, name, name, ...]`` from columns of names, numbered from 1, each name
    as inline code."""
    rows = zip(*columns, strict=True)
    return [[i, *(f"`{s}`" for s in row)] for i, row in enumerate(rows, start=1)]
