"""The lecture's own notebook, printout by printout.

The book holds itself against the notebook of the lecture, ``makemore_part3_bn.ipynb``
in the repository ``karpathy/nn-zero-to-hero`` (``lectures/makemore/``), which was
saved with its outputs. This module keeps what that notebook printed, verbatim
(:data:`NOTEBOOK`: reference data, like :data:`makemore.runs.LECTURE`), and
recomputes every one of those printouts with the package, in the notebook's own
print formats, so that the two can be compared string for string: equal strings
mean equal at the printed precision. Introduced in chapter "PyTorch-ifying the code"
(the deep network's cut) and used by "Kaiming init" and "BatchNorm" (the bonus cells).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from IPython.display import Markdown

from ..analysis.stats import backward_stats, forward_stats, linear_stats, weight_grad_stats
from ..data import Splits
from ..models import SEED, deep_mlp, mlp, new_generator, num_params
from ..nn import BatchNorm1d, Embedding, Flatten, Linear, Module, Sequential, Tanh
from ..runs import Run
from ..sample import sample
from ..train import History, split_loss, train

NOTEBOOK_REPO = "karpathy/nn-zero-to-hero"
NOTEBOOK_PATH = "lectures/makemore/makemore_part3_bn.ipynb"

# The notebook's loop breaks with `if i >= 1000: break` *after* step i's update, so
# steps 0, 1, ..., 1000 all update the parameters: 1,001 updates, not 1,000.
CUT_STEPS = 1001
GAIN = 1.0  # the notebook's `layer.weight *= 1.0 #5/3`: the final network uses gain 1
LAST_SCALE = 0.1  # `layers[-1].gamma *= 0.1`
DECAY_STEP = 150_000  # `lr = 0.1 if i < 150000 else 0.01` (never reached by the cut)

# What the notebook printed, cell by cell (the cell numbers count from 0, markdown
# cells included). Copied verbatim from the saved outputs; nothing here is computed.
NOTEBOOK: dict[int, str] = {
    6: "12097",
    7: """\
      0/ 200000: 3.3239
  10000/ 200000: 2.0322
  20000/ 200000: 2.5675
  30000/ 200000: 2.0125
  40000/ 200000: 2.2446
  50000/ 200000: 1.8897
  60000/ 200000: 2.0785
  70000/ 200000: 2.3681
  80000/ 200000: 2.2918
  90000/ 200000: 2.0238
 100000/ 200000: 2.3673
 110000/ 200000: 2.3132
 120000/ 200000: 1.6414
 130000/ 200000: 1.9311
 140000/ 200000: 2.2231
 150000/ 200000: 2.0027
 160000/ 200000: 2.0997
 170000/ 200000: 2.4949
 180000/ 200000: 2.0199
 190000/ 200000: 2.1707""",
    10: """\
train 2.0674145221710205
val 2.1056840419769287""",
    13: "47024",
    14: "      0/ 200000: 3.2870",
    15: """\
layer 2 (      Tanh): mean -0.00, std 0.63, saturated: 2.78%
layer 5 (      Tanh): mean +0.00, std 0.64, saturated: 2.56%
layer 8 (      Tanh): mean -0.00, std 0.65, saturated: 2.25%
layer 11 (      Tanh): mean +0.00, std 0.65, saturated: 1.69%
layer 14 (      Tanh): mean +0.00, std 0.65, saturated: 1.88%""",
    16: """\
layer 2 (      Tanh): mean -0.000000, std 2.640702e-03
layer 5 (      Tanh): mean +0.000000, std 2.245584e-03
layer 8 (      Tanh): mean -0.000000, std 2.045742e-03
layer 11 (      Tanh): mean +0.000000, std 1.983134e-03
layer 14 (      Tanh): mean -0.000000, std 1.952382e-03""",
    17: """\
weight   (27, 10) | mean +0.000000 | std 8.020534e-03 | grad:data ratio 8.012630e-03
weight  (30, 100) | mean +0.000246 | std 9.241077e-03 | grad:data ratio 4.881091e-02
weight (100, 100) | mean +0.000113 | std 7.132879e-03 | grad:data ratio 6.964619e-02
weight (100, 100) | mean -0.000086 | std 6.234305e-03 | grad:data ratio 6.073741e-02
weight (100, 100) | mean +0.000052 | std 5.742187e-03 | grad:data ratio 5.631483e-02
weight (100, 100) | mean +0.000032 | std 5.672205e-03 | grad:data ratio 5.570125e-02
weight  (100, 27) | mean -0.000082 | std 1.209416e-02 | grad:data ratio 1.160106e-01""",
    19: """\
train 2.4002976417541504
val 2.3982467651367188""",
    20: """\
carpah.
qarlileif.
jmrix.
thty.
sacansa.
jazhnte.
dpn.
arciigqeiunellaia.
chriiv.
kalein.
dhlm.
join.
qhinn.
sroin.
arian.
quiqaelogiearyxix.
kaeklinsan.
ed.
ecoia.
gtleley.""",
    23: """\
a std: 0.9875972270965576
b std: 1.0006722211837769
c std: 31.01241683959961
-----
c grad std: 0.9782556295394897
a grad std: 30.8818302154541
b grad std: 0.9666601419448853""",
    24: """\
inp std:  0.9875972270965576
w std:  1.0006722211837769
x std:  31.01241683959961
out std:  1.0
------
out grad std:  0.9782556295394897
x grad std:  0.031543977558612823
w grad std:  0.031169468536973
inp grad std:  0.9953052997589111""",
}

# Numbers the video shows that the notebook does not keep (it was saved after the last
# edit), as the video prints them. Reference data, like NOTEBOOK.
VIDEO: dict[str, str] = {
    "initial loss, original MLP": "27.88",
    "initial loss, softmax fixed": "3.32",
    "MLP (C, W1, b1, W2, b2)": "11897",
    "MLP + BatchNorm, b1 kept": "12297",
    "deep, no BatchNorm": "46497",
    "deep + BatchNorm, biases kept": "47551",
}

# The notebook's "loss log" (cell 11, a Markdown cell): (train, val) of each row as typed
# there, verbatim; makemore.runs.LECTURE holds the same numbers rounded to 4 decimals. The
# BatchNorm row is the calibrated network's, measured while it still had b1 (the video's
# 12,297 parameters), not the final code's printout of cell 10.
LOSS_LOG: dict[str, tuple[str, str]] = {
    "original": ("2.1245384216308594", "2.168196439743042"),
    "fix_softmax": ("2.07", "2.13"),
    "fix_tanh": ("2.0355966091156006", "2.1026785373687744"),
    "kaiming": ("2.0376641750335693", "2.106989622116089"),
    "batchnorm_calibrated": ("2.0668270587921143", "2.104844808578491"),
}

def video_step0(loss0: float, loss0_fixed: float) -> dict[str, Markdown]:
    """The video's step-0 printouts before and after the softmax fix
    (:data:`VIDEO`) as Markdown, ``loss0`` and ``loss0-fixed``, after
    checking that this build's two losses print the same at the two decimals the video
    shows; a ``ValueError`` says which does not."""
    labels = {"loss0": "initial loss, original MLP", "loss0-fixed": "initial loss, softmax fixed"}
    ours = {"loss0": f"{loss0:.2f}", "loss0-fixed": f"{loss0_fixed:.2f}"}
    wrong = [f"{k}: {ours[k]}, the video {VIDEO[label]}" for k, label in labels.items()
             if ours[k] != VIDEO[label]]
    if wrong:
        raise ValueError(f"step-0 losses differ from the video's: {'; '.join(wrong)}")
    return {k: Markdown(VIDEO[label]) for k, label in labels.items()}


# What each printout is, for the tables.
CELLS: dict[int, str] = {
    6: "parameters of the BatchNorm MLP", 7: "BatchNorm MLP: minibatch loss every 10,000 steps",
    10: "BatchNorm MLP: split losses, running statistics",
    13: "parameters of the deep network", 14: "deep network: step-0 minibatch loss",
    15: "activations of the tanh layers", 16: "gradients of the tanh outputs",
    17: "weight gradients", 19: "evaluation after the cut", 20: "20 sampled names",
    23: "bonus: Linear", 24: "bonus: Linear + BatchNorm",
}


def lecture_network(generator: torch.Generator | None = None) -> Sequential:
    """The notebook's final deep network (cell 13): :func:`makemore.models.deep_mlp`
    with BatchNorm, gain 1.0 and the last BatchNorm's gamma times 0.1."""
    return deep_mlp(batchnorm=True, gain=GAIN, last_scale=LAST_SCALE, generator=generator)


@dataclass
class Cut:
    """The notebook's deep network after its loop's 1,001 updates, and its printouts."""

    model: Sequential
    history: History
    printed: dict[int, str]  # cell -> this build's printout, in the notebook's format


def _loss_line(step: int, loss: float, max_steps: int = 200_000) -> str:
    return f"{step:7d}/{max_steps:7d}: {loss:.4f}"  # the notebook's progress print


def lecture_cut(splits: Splits, steps: int = CUT_STEPS) -> Cut:
    """Cells 13-20: build, train ``steps`` updates with the lecture's loop, then print
    the per-layer statistics of the last step, the split losses and 20 samples.

    The statistics are taken before the evaluation, which overwrites every ``.out``.
    """
    g = new_generator()
    model = lecture_network(g)
    history = train(model, splits.Xtr, splits.Ytr, steps=steps, decay_step=DECAY_STEP,
                    generator=g, retain_grad=True, record_ud=True, progress=False)
    # the loop records log10(loss) as a float32 .item(); 10** gives the loss back to ~1e-7
    printed = {
        13: str(num_params(model)),
        14: _loss_line(0, 10 ** history.lossi[0]),
        15: "\n".join(map(str, forward_stats(model))),
        16: "\n".join(map(str, backward_stats(model))),
        17: "\n".join(map(str, weight_grad_stats(model))),
    }
    printed[19] = split_printout({name: split_loss(model, *splits.split(name))
                                  for name in ("train", "val")})
    printed[20] = "\n".join(sample(model, 20, vocab=splits.vocab))
    return Cut(model, history, printed)


def mlp_printout(run: Run) -> dict[int, str]:
    """Cells 6-7 from the book's BatchNorm MLP run: parameter count and the loss
    at every 10,000th step (from the run's recorded log10 losses)."""
    steps = range(0, len(run.lossi), 10_000)
    return {6: str(num_params(run.model)),
            7: "\n".join(_loss_line(i, 10 ** run.lossi[i].item()) for i in steps)}


def split_printout(losses: dict[str, float]) -> str:
    """The notebook's ``split_loss('train'); split_loss('val')`` printout (cells 10 and
    19, and the loss log's rows): ``print(split, loss.item())``, every digit of the float."""
    return "\n".join(f"{split} {losses[split]}" for split in ("train", "val"))


def bonus_printout() -> dict[int, str]:
    """Cells 23-24, the notebook's bonus (not covered in the video), from
    :func:`makemore.analysis.stats.linear_stats` with the lecture's seed."""
    a = linear_stats(generator=new_generator(SEED))
    s = linear_stats(batchnorm=True, generator=new_generator(SEED))
    return {
        23: "\n".join([f"a std: {a.inp}", f"b std: {a.w}", f"c std: {a.x}", "-----",
                       f"c grad std: {a.out_grad}", f"a grad std: {a.inp_grad}",
                       f"b grad std: {a.w_grad}"]),
        24: "\n".join([f"inp std:  {s.inp}", f"w std:  {s.w}", f"x std:  {s.x}",
                       f"out std:  {s.out}", "------", f"out grad std:  {s.out_grad}",
                       f"x grad std:  {s.x_grad}", f"w grad std:  {s.w_grad}",
                       f"inp grad std:  {s.inp_grad}"]),
    }


# The backward pass is the one place where this build's PyTorch and the one the notebook
# ran on (2022, Python 3.8) add in different orders: gradients come out a few float32 ulps
# apart, about 1e-6 relative, which shows in the 7th significant digit of a `%e`. Those
# lines are compared to this relative tolerance instead of digit for digit; a near-zero
# mean printed as "-0.000000" vs "+0.000000" differs by less than its last digit.
GRAD_RTOL = 2e-6
# The BatchNorm MLP's minibatch losses (cell 7) come from the book's compiled trainer, the
# notebook's math with some additions in another order: over 200,000 steps that can move a
# printed "%.4f" by one unit of its last digit (this build: step 180,000, 2.0198 vs
# 2.0199). Those lines may differ by that one unit and no more (a tiny rtol leaves only
# _close's one-unit rule); the table marks them ≈ and the chapter counts them.
LOSS_RTOL = 1e-12
_NUMBER = re.compile(r"[-+]?\d+(?:\.(\d*))?(?:e[-+]?\d+)?")


def _close(a: str, b: str, rtol: float) -> bool:
    """Same numbers in the same text, each within ``rtol`` or one unit of its last digit."""
    xs, ys = list(_NUMBER.finditer(a)), list(_NUMBER.finditer(b))
    if len(xs) != len(ys) or _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    for x, y in zip(xs, ys):
        # one unit of the last printed decimal, for fixed-point numbers like "+0.000000"
        ulp = 0.0 if "e" in x.group(0) else 10.0 ** -len(x.group(1) or "")
        if abs(float(x.group(0)) - float(y.group(0))) > max(rtol * abs(float(x.group(0))), ulp):
            return False
    return True


@dataclass
class Row:
    """One printed line: the notebook's and this build's, split into label and values.

    ``rtol`` is 0 (equal strings: equal at the printed precision) except for gradient
    lines, compared to :data:`GRAD_RTOL`.
    """

    cell: int
    label: str
    notebook: str
    build: str
    rtol: float = 0.0

    @property
    def exact(self) -> bool:
        return self.notebook == self.build

    @property
    def same(self) -> bool:
        return self.exact or (self.rtol > 0 and _close(self.notebook, self.build, self.rtol))


# "layer 2 (      Tanh): mean ..." -> "layer 2 (Tanh)"; "weight  (30, 100) | ..." ->
# "weight (30, 100)"; "  10000/ 200000: 2.0322" -> "step 10000"; "a std: 0.98" -> "a std"
_LABEL = re.compile(r"^\s*(layer \d+ \(\s*\w+\)|weight\s+\([\d, ]+\)|\d+/\s*\d+|train|val"
                    r"|[a-z]+(?: grad)? std)\s*:?\s*(.*)$")
_WORDS = re.compile(r",?\s*(?:\|\s*)?(?:mean|std|saturated:|grad:data ratio)\s+")


def _split(line: str) -> tuple[str, str]:
    """``(label, values)`` of one printed line; values keep the printed digits."""
    m = _LABEL.match(line)
    if m is None:
        return "", line.strip()
    label, rest = m.groups()
    label = re.sub(r"\(\s+", "(", re.sub(r"\s+", " ", label))
    if "/" in label:
        label = "step " + label.split("/")[0]
    values = ", ".join(v for v in _WORDS.split(rest) if v)
    return label, values


def compare(printed: dict[int, str]) -> list[Row]:
    """Line by line, the notebook's printout next to ``printed`` (same cells).

    A printout of a different number of lines is an error: it would mean the two
    print different things, not different numbers.
    """
    rows = []
    for cell, text in printed.items():
        if cell not in NOTEBOOK:
            raise KeyError(f"the notebook printed nothing in cell {cell}; "
                           f"cells with a printout: {sorted(NOTEBOOK)}")
        ours, theirs = text.splitlines(), NOTEBOOK[cell].splitlines()
        if len(ours) != len(theirs):
            raise ValueError(f"cell {cell}: the notebook printed {len(theirs)} lines, "
                             f"this build {len(ours)}")
        for a, b in zip(theirs, ours):
            if set(a) <= set("- "):  # the bonus cells' separator lines
                continue
            (label, nb), (_, build) = _split(a), _split(b)
            if not label and cell != 20:  # a bare number: say what it counts
                label = CELLS[cell]
            grad = cell in (16, 17) or "grad" in label  # backward-pass numbers
            rtol = GRAD_RTOL if grad else LOSS_RTOL if cell == 7 else 0.0
            rows.append(Row(cell, label, nb, build, rtol))
    return rows


def table(rows: list[Row], names_per_row: int = 5) -> str:
    """A Markdown table: cell: printout | the notebook printed | this build | same
    (✓ equal strings, ≈ within :data:`GRAD_RTOL` or, for cell 7, one unit of the last
    digit, ✗ different).

    Sampled names (no label) are grouped ``names_per_row`` to a row to keep it short.
    """
    out = ["| cell: printout | the notebook printed | this build | same |",
           "| --- | --- | --- | :---: |"]
    i = 0
    while i < len(rows):
        r = rows[i]
        group = [r]
        if not r.label:  # a sample: group consecutive unlabelled lines of one cell
            while (len(group) < names_per_row and i + len(group) < len(rows)
                   and not rows[i + len(group)].label
                   and rows[i + len(group)].cell == r.cell):
                group.append(rows[i + len(group)])
        nb = " ".join(g.notebook for g in group)
        build = " ".join(g.build for g in group)
        first = i - _first(rows, r.cell)
        label = r.label or f"names {first + 1}-{first + len(group)}"
        ok = ("✓" if all(g.exact for g in group) else "≈" if all(g.same for g in group)
              else "✗")
        out.append(f"| {r.cell}: {label} | `{nb}` | `{build}` | {ok} |")
        i += len(group)
    return "\n".join(out)


def _first(rows: list[Row], cell: int) -> int:
    return next(i for i, r in enumerate(rows) if r.cell == cell)


def max_rel_diff(rows: list[Row]) -> float:
    """Largest relative difference between a printed number and this build's (0 if all
    rows are exact); numbers printed as zero are left out."""
    worst = 0.0
    for r in rows:
        if r.exact:
            continue
        for x, y in zip(_NUMBER.finditer(r.notebook), _NUMBER.finditer(r.build)):
            a, b = float(x.group(0)), float(y.group(0))
            if a != 0:
                worst = max(worst, abs(a - b) / abs(a))
    return worst


def mismatches(rows: list[Row]) -> list[str]:
    """Every row that differs, as ``"cell N, label: notebook != build"``."""
    return [f"cell {r.cell}, {r.label or 'sample'}: {r.notebook!r} != {r.build!r}"
            for r in rows if not r.same]


# ---------------------------------------------------------------------------
# parameter counts of the video's progression

def _deep_with_bias(batchnorm: bool, n_layers: int = 6, n_embd: int = 10,
                    n_hidden: int = 100, block_size: int = 3, vocab_size: int = 27
                    ) -> Sequential:
    """The deep network with a bias in every Linear (the video's first version with
    BatchNorm kept them, before noticing BatchNorm subtracts them away)."""
    sizes = [n_embd * block_size] + [n_hidden] * (n_layers - 1) + [vocab_size]
    layers: list[Module] = [Embedding(vocab_size, n_embd), Flatten()]
    for i in range(n_layers):
        layers.append(Linear(sizes[i], sizes[i + 1], bias=True))
        if batchnorm:
            layers.append(BatchNorm1d(sizes[i + 1]))
        if i < n_layers - 1:
            layers.append(Tanh())
    return Sequential(layers)


def param_counts() -> dict[str, int]:
    """The parameter counts the video shows, in its order, computed from the models."""
    return {
        "MLP (C, W1, b1, W2, b2)": num_params(mlp("original")),
        # the video first adds bngain, bnbias (one BatchNorm of 200) and keeps b1
        "MLP + BatchNorm, b1 kept": num_params(mlp("batchnorm_b1")),
        "MLP + BatchNorm, b1 removed": num_params(mlp("batchnorm")),
        "deep, no BatchNorm": num_params(deep_mlp(batchnorm=False)),
        "deep + BatchNorm, biases kept": num_params(_deep_with_bias(True)),
        "deep + BatchNorm, biases removed": num_params(lecture_network()),
    }
