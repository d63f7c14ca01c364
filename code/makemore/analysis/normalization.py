"""What a normalization layer does outside training: BatchNorm's running statistics and
their pitfalls, and LayerNorm, which has none.

BatchNorm computes one function while it trains (each feature normalized by the
statistics of the batch) and another when it is evaluated (by running averages of
those statistics). The functions here measure the seams between the two on a trained
network: a training-mode pass that moves the running averages
(:func:`train_mode_drift`), the loss of a split evaluated in training mode
(:func:`train_mode_loss`), how well running averages with another momentum estimate
the statistics of the whole training set (:func:`momentum_estimates`), and whether a
normalization layer can be folded into the Linear layer before it
(:func:`affine_fit`), and what the batch size does to all of it
(:func:`batch_size_numbers`). Every function leaves the model as it found it.
Introduced in the chapter "Beyond BatchNorm".
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..nn import BatchNorm1d, LayerNorm, Linear, Sequential
from ..train import EVAL_ROWS, calibrate, split_loss


@contextlib.contextmanager
def restored(model: Sequential) -> Iterator[Sequential]:
    """Run a block on ``model`` and put back its parameters, running statistics and
    mode afterwards, whatever the block did to them."""
    state, mode = model.state_dict(), model.training
    try:
        yield model
    finally:
        model.load_state_dict(state)
        model.train(mode)


def batchnorms(model: Sequential) -> list[BatchNorm1d]:
    """The model's BatchNorm layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, BatchNorm1d)]


def layernorm_parity(dim: int = 100, batch: int = 32, seed: int = 0) -> dict[str, float]:
    """:class:`makemore.nn.LayerNorm` against ``torch.nn.LayerNorm`` in float64, with the
    same random ``gamma`` and ``beta``, on one random batch: the largest absolute
    difference of the outputs (``forward``) and of the gradients of a random linear
    function of them with respect to the input and to ``gamma`` and ``beta``."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)
    ours = LayerNorm(dim)
    ours.gamma, ours.beta = randn(dim).requires_grad_(), randn(dim).requires_grad_()
    ref = torch.nn.LayerNorm(dim).double()
    with torch.no_grad():
        ref.weight.copy_(ours.gamma)
        ref.bias.copy_(ours.beta)
    x, w = randn(batch, dim) * 3 + 1, randn(batch, dim)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), ref(x2)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()

    def diff(a, b):
        return (a - b).abs().max().item()
    return {"forward": diff(y1, y2), "grad-x": diff(x1.grad, x2.grad),
            "grad-gamma": diff(ours.gamma.grad, ref.weight.grad),
            "grad-beta": diff(ours.beta.grad, ref.bias.grad)}


@torch.no_grad()
def train_mode_pass(model: Sequential, X: torch.Tensor, batch_size: int = 32) -> None:
    """Forward passes over ``X`` in training mode, ``batch_size`` rows at a time, with no
    gradient and no update: what a loop that forgot ``model.eval()`` does to the model
    (each pass moves every BatchNorm's running statistics towards the batch's)."""
    model.train()
    for x in X.split(batch_size):
        if len(x) > 1:  # a last batch of one has no variance to take
            model(x)


def train_mode_drift(model: Sequential, splits, batch_size: int = 32) -> dict[str, float]:
    """What one training-mode pass over the validation split does to the running
    statistics, and to the validation loss evaluated afterwards.

    Keys: ``val-before`` and ``val-after`` (eval-mode validation loss), ``shift``: the
    largest move of a running mean, in units of that feature's running standard
    deviation, over all BatchNorm layers, and ``shift-mean`` its mean over the features."""
    with restored(model):
        before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in batchnorms(model)]
        val_before = split_loss(model, splits.Xdev, splits.Ydev)
        train_mode_pass(model, splits.Xdev, batch_size)
        val_after = split_loss(model, splits.Xdev, splits.Ydev)
        shifts = torch.cat([(bn.running_mean - m).abs() / v.sqrt()
                            for bn, (m, v) in zip(batchnorms(model), before, strict=False)])
    return {"val-before": val_before, "val-after": val_after,
            "shift": shifts.max().item(), "shift-mean": shifts.mean().item()}


@torch.no_grad()
def train_mode_loss(model: Sequential, X: torch.Tensor, Y: torch.Tensor,
                    batch_size: int = 32) -> float:
    """The loss of a split with the model in training mode: each batch of ``batch_size``
    rows normalized by its own statistics (a last, smaller batch too, if it has two rows
    or more), the mean over all rows; the running statistics are put back."""
    with restored(model):
        model.train()
        total, n = 0.0, 0
        for x, y in zip(X.split(batch_size), Y.split(batch_size), strict=False):
            if len(x) < 2:
                continue
            total += F.cross_entropy(model(x), y, reduction="sum").item()
            n += len(x)
    return total / n


def momentum_estimates(model: Sequential, splits, momenta: tuple[float, ...],
                       steps: int, batch_size: int = 32, seed: int = 0
                       ) -> tuple[dict[float, dict[str, float]], float]:
    """With the trained weights frozen, estimate the running statistics anew with each
    momentum: reset them (mean 0, variance 1, as at initialization), run ``steps``
    training-mode passes over random training minibatches (the same batches for every
    momentum), and evaluate.

    Returns, for each momentum, ``val`` (eval-mode validation loss), ``gap`` (it minus
    the validation loss with the calibrated statistics, :func:`makemore.train.calibrate`)
    and ``error``: the mean over the first BatchNorm's features of ``|running mean -
    calibrated mean| / calibrated std``; and the calibrated validation loss."""
    with restored(model):
        calibrate(model, splits.Xtr)
        val_cal = split_loss(model, splits.Xdev, splits.Ydev)
        first = batchnorms(model)[0]
        cal_mean, cal_std = first.running_mean.clone(), first.running_var.sqrt()
    gen = torch.Generator().manual_seed(seed)
    X = splits.Xtr[torch.randint(0, len(splits.Xtr), (steps * batch_size,), generator=gen)]
    out: dict[float, dict[str, float]] = {}
    momenta_before = [bn.momentum for bn in batchnorms(model)]
    try:
        for m in momenta:
            with restored(model):
                for bn in batchnorms(model):
                    bn.momentum = m
                    bn.running_mean = torch.zeros_like(bn.running_mean)
                    bn.running_var = torch.ones_like(bn.running_var)
                train_mode_pass(model, X, batch_size)
                val = split_loss(model, splits.Xdev, splits.Ydev)
                error = ((first.running_mean - cal_mean).abs() / cal_std).mean().item()
            out[m] = {"val": val, "gap": val - val_cal, "error": error}
    finally:
        for bn, m in zip(batchnorms(model), momenta_before, strict=False):
            bn.momentum = m
    return out, val_cal


@torch.no_grad()
def affine_fit(model: Sequential, norm_index: int, X: torch.Tensor) -> dict[str, float]:
    """Can the normalization layer ``model.layers[norm_index]`` be folded into the Linear
    layer before it? Fold or not, the pair would be one affine map of the Linear's
    input; this fits the best one (least squares, float64, with a bias) to the pair's
    eval-mode outputs on the rows ``X`` and reports how much it misses.

    Keys: ``rel-error`` (root-mean-square miss over the outputs' standard deviation: ~0
    where a fold is exact, as for BatchNorm) and, for the layer's divisor per example
    (LayerNorm's ``sqrt(var + eps)`` of each row; a BatchNorm's is one per feature, the
    same for every example), ``div-min`` and ``div-max`` over the rows of ``X``."""
    linear = model.layers[norm_index - 1]
    if not isinstance(linear, Linear):
        raise ValueError(f"layer {norm_index - 1} is a {type(linear).__name__}, not a Linear")
    with restored(model):
        model.eval()
        inputs = []
        for x in X.split(EVAL_ROWS):  # the Linear's input and the normalization's output
            model(x)
            inputs.append((model.layers[norm_index - 2].out, model.layers[norm_index].out))
        x = torch.cat([i for i, _ in inputs]).double()
        y = torch.cat([o for _, o in inputs]).double()
        z = x @ linear.weight.detach().double()  # what the normalization sees
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    A = torch.linalg.lstsq(design, y).solution
    miss = (design @ A - y).pow(2).mean().sqrt() / y.std()
    div = (z.var(1, unbiased=False) + getattr(model.layers[norm_index], "eps", 0)).sqrt()
    return {"rel-error": miss.item(), "div-min": div.min().item(), "div-max": div.max().item()}


@torch.no_grad()
def mode_gap(model: Sequential, X: torch.Tensor) -> float:
    """The largest difference between the logits of the batch ``X`` in training mode and
    in evaluation mode: 0 for a network whose layers treat each example alone."""
    with restored(model):
        model.train()
        a = model(X)
        model.eval()
        return (a - model(X)).abs().max().item()


@torch.no_grad()
def alone_gap(model: Sequential, X: torch.Tensor) -> float:
    """The largest difference, in training mode, between the logits of each row of ``X``
    passed alone (a batch of one) and passed with the others (NaN where a layer cannot
    take the statistics of a single example)."""
    with restored(model), warnings.catch_warnings():
        # a BatchNorm with the unbiased variance warns that n - 1 = 0: its NaN is the answer
        warnings.simplefilter("ignore", UserWarning)
        model.train()
        together = model(X)
        alone = torch.cat([model(x) for x in X.split(1)])
        return (together - alone).abs().max().item()



def final_numbers(trained: dict) -> dict[str, float]:
    """The losses of trained runs (``{slug: run}``) for the prose: ``<slug>-train``,
    ``<slug>-val``, ``<slug>-gap`` (val minus train) and, for a BatchNorm network,
    ``<slug>-cal-val`` (after the calibration pass)."""
    out: dict[str, float] = {}
    for slug, run in trained.items():
        out |= {f"{slug}-train": run.train_loss, f"{slug}-val": run.val_loss,
                f"{slug}-gap": run.val_loss - run.train_loss}
        if run.calibrated:
            out[f"{slug}-cal-val"] = run.calibrated["val"]
    return out


@torch.no_grad()
def batch_mean_noise(model: Sequential, X: torch.Tensor, batch_size: int,
                     batches: int = 500, seed: int = 0) -> float:
    """How far one batch's statistics stray from the whole split's: the means of the
    first BatchNorm's input over ``batches`` random batches of ``batch_size`` rows of
    ``X``, their standard deviation over the batches per feature, in units of the
    feature's standard deviation over all of ``X``, averaged over the features. For
    independent rows it is about ``1 / sqrt(batch_size)``."""
    i = next(i for i, layer in enumerate(model.layers) if isinstance(layer, BatchNorm1d))
    h = X
    for layer in model.layers[:i]:  # Embedding, Flatten, Linear: the same in either mode
        h = layer(h)
    gen = torch.Generator().manual_seed(seed)
    ix = torch.randint(0, len(X), (batches, batch_size), generator=gen)
    means = h[ix].mean(1)  # (batches, features)
    return (means.std(0) / h.std(0)).mean().item()


def batch_size_numbers(trained: dict, splits) -> dict[tuple[bool, int], dict[str, float]]:
    """The batch-size study's numbers for each trained run ``(batchnorm, batch size): run``:
    ``examples`` (seen in training: steps x batch size), ``train`` and ``val`` (evaluation
    mode, running statistics) and ``gap`` (val minus train); for a BatchNorm network also
    ``cal-val`` and ``cal-gap`` (after the calibration pass, and the running statistics'
    validation loss minus it), ``mode-gap`` (the validation loss in training mode on
    batches of the run's own size, minus evaluation mode) and ``noise``
    (:func:`batch_mean_noise` at that batch size, on the training split)."""
    out: dict[tuple[bool, int], dict[str, float]] = {}
    for (bn, b), run in trained.items():
        row = {"examples": run.spec.steps * b, "train": run.train_loss, "val": run.val_loss,
               "gap": run.val_loss - run.train_loss}
        if bn:
            row |= {"cal-val": run.calibrated["val"],
                    "cal-gap": run.val_loss - run.calibrated["val"],
                    "mode-gap": train_mode_loss(run.model, splits.Xdev, splits.Ydev, b)
                    - run.val_loss,
                    "noise": batch_mean_noise(run.model, splits.Xtr, b)}
        out[bn, b] = row
    return out


def batch_size_findings(numbers: dict[tuple[bool, int], dict[str, float]], n_train: int
                        ) -> tuple[dict[str, float], dict[str, bool]]:
    """What the chapter says about the batch-size study (:func:`batch_size_numbers`), as
    values for its prose (``"bn-8-val"``, ``"nobn-128-gap"``, ``"bn-minus-nobn-8"``,
    ``"noise-ideal-8"``, ``"train-share"``: the share of the ``n_train`` training examples
    a BatchNorm run of the smallest batch saw) and as the claims it makes about them,
    each checked (``{claim: holds}``)."""
    sizes = sorted({b for _, b in numbers})
    bn = {b: numbers[True, b] for b in sizes}
    values = {f"{'bn' if is_bn else 'nobn'}-{b}-{k}": v
              for (is_bn, b), row in numbers.items() for k, v in row.items()}
    diffs = [bn[b]["val"] - numbers[False, b]["val"] for b in sizes]
    values |= {f"bn-minus-nobn-{b}": d for b, d in zip(sizes, diffs, strict=True)}
    values |= {f"noise-ideal-{b}": b ** -0.5 for b in sizes}
    values["train-share"] = bn[sizes[0]]["examples"] / n_train

    def along(key: str, is_bn: bool) -> list[float]:  # the values at growing batch sizes
        return [numbers[is_bn, b][key] for b in sizes]

    def increasing(xs: list[float]) -> bool:
        return all(a < b for a, b in zip(xs, xs[1:]))

    claims = {
        # the batch means' spread is the textbook's sigma / sqrt(B), within 5 %
        "noise is 1/sqrt(B)": all(abs(bn[b]["noise"] * b ** 0.5 - 1) < 0.05 for b in sizes),
        # same steps: the larger the batch, the lower the validation loss, the wider the gap
        "val falls with the batch": all(increasing(along("val", x)[::-1]) for x in (False, True)),
        "gap widens with the batch": all(increasing(along("gap", x)) for x in (False, True)),
        "BatchNorm's handicap shrinks": increasing(diffs[::-1]) and diffs[0] > 0.05,
        "BatchNorm's gap below zero at the smallest batch": bn[sizes[0]]["gap"] < 0,
        "running statistics furthest off at the smallest batch":
            bn[sizes[0]]["cal-gap"] > bn[sizes[-1]]["cal-gap"],
        "training mode lower at the smallest batch only": bn[sizes[0]]["mode-gap"] < 0
        and all(bn[b]["mode-gap"] > 0 for b in sizes[1:]),
    }
    return values, claims
