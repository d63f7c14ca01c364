"""How much faster is makemore.engine.fast than the plain loop, for the same math?

Runs the plain reference loop (:func:`makemore.train.train`) and the fast trainer
side by side in one process, alternating blocks of steps so that both see the
same machine load, and prints steps/s and their ratio:

- single: one deep BatchNorm network (``deep_mlp(batchnorm=True)``), fast vs plain;
- batch:  8 deep BatchNorm configurations (gains 0.5, 1, 5/3, 3 x lr 0.1, 0.2)
          trained at once, in model-steps/s vs the plain loop's steps/s;
- floor:  the step's matrix products alone (forward and backward, the same shapes and
          layouts, ``torch.bmm`` with 1 and 8 models): what the arithmetic allows here;
          for 8 models also with other data passing through the cache between layers,
          as in a real step (the products then wait on memory);
- plain MLP: the loss log's four MLPs, ``train.train`` one after the other vs
          ``backprop.train_plain_many`` stacking them (the plain loop to the bit).

Also times compilation (cold: ``--cold`` uses a fresh, temporary inductor
cache; warm: the same graphs again, from the on-disk cache). ``--full`` then
trains the deep BN net for the full 200,000 steps with both trainers and
compares their final train/val losses (they must agree to 1e-3).

    PYTHONPATH=code MAKEMORE_NAMES=... python benchmarks/train_speed.py [--steps N] [--full]

Ratios are the number to read: absolute steps/s depend on the machine and on
what else runs on it. CPU-time ratios are printed too; on a busy machine they
are the steadier ones.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

# --cold must take effect before torch reads its configuration
if "--cold" in sys.argv:
    _cache = tempfile.mkdtemp(prefix="inductor-cold-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _cache

import torch  # noqa: E402
from makemore import data, models, train  # noqa: E402
from makemore.engine import backprop, fast  # noqa: E402

GAINS = (0.5, 1.0, 5 / 3, 3.0)
LRS = (0.1, 0.2)


def deep_bn(gain: float = 5 / 3):
    g = models.new_generator()
    return models.deep_mlp(batchnorm=True, gain=gain, generator=g), g


def batch_of_8():
    built = [deep_bn(gain) for _ in LRS for gain in GAINS]
    lrs = [lr for lr in LRS for _ in GAINS]
    return [m for m, _ in built], [g for _, g in built], lrs


class Clock:
    """Wall and CPU seconds spent inside ``with clock:`` blocks, summed."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def compile_times(X, Y, ud_every: int) -> None:
    """First calls (compile) and a second compile after dropping the in-memory caches.
    Two steps: a call of one step that records update:data ratios, then a call of the
    other; both run the one compiled graph of the architecture, the loop."""
    steps = 2
    for label in ("first", "again (warm disk cache)"):
        torch._dynamo.reset()
        fast._COMPILED.clear()
        t = time.perf_counter()
        m, g = deep_bn()
        h = fast.train_fast(m, X, Y, generator=g, steps=steps, ud_every=ud_every)
        t1 = time.perf_counter() - t
        ms, gs, lrs = batch_of_8()
        t = time.perf_counter()
        fast.train_many(ms, X, Y, lrs=lrs, generators=gs, steps=steps, ud_every=ud_every)
        t8 = time.perf_counter() - t
        print(f"compile {label:24s}: single {t1:5.1f} s, batch of 8 {t8:5.1f} s ({h.trainer})")


def matmuls(n_models: int, sizes: tuple[int, ...] = (30, 100, 100, 100, 100, 100, 27),
            batch: int = 32, features_first: bool | None = None
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The operand pairs of one step's matrix products, per Linear layer the forward,
    the weight gradient and the input gradient, in the layout the trainer uses: row-major
    (``x @ W``, ``x^T @ dy``, ``dy @ W^T``: one model of the fast trainer, and
    ``makemore.engine.backprop``'s stacks) or features-first (``W^T @ x``, ``x @ dy^T``,
    ``W @ dy``: the fast trainer's stacks, see ``fast._compiled_step``; the default
    for ``n_models > 1``). ``sizes``: the Linear layers' widths, input first."""
    if features_first is None:
        features_first = n_models > 1
    pairs = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        W = torch.randn(n_models, fan_in, fan_out)
        if features_first:  # activations (features, batch)
            x, dy = torch.randn(n_models, fan_in, batch), torch.randn(n_models, fan_out, batch)
            pairs += [(W.transpose(1, 2), x), (x, dy.transpose(1, 2)), (W, dy)]
        else:
            x, dy = torch.randn(n_models, batch, fan_in), torch.randn(n_models, batch, fan_out)
            pairs += [(x, W), (x.transpose(1, 2), dy), (dy, W.transpose(1, 2))]
    return pairs


def products_cpu(pairs: list[tuple[torch.Tensor, torch.Tensor]], steps: int,
                 other: torch.Tensor | None = None) -> float:
    """CPU seconds of ``steps`` steps of the products ``pairs`` alone (``torch.bmm``),
    after a warm-up; with ``other``, that tensor is written after each layer's three
    products, and the time of those writes alone is subtracted."""
    def step():
        for i, (a, b) in enumerate(pairs):
            torch.bmm(a, b)
            if other is not None and i % 3 == 2:
                other.add_(1.0)
    for _ in range(50):  # warm up
        step()
    c = time.process_time()
    for _ in range(steps):
        step()
    cpu = time.process_time() - c
    if other is not None:  # minus the writes alone
        c = time.process_time()
        for _ in range(steps * len(pairs) // 3):
            other.add_(1.0)
        cpu -= time.process_time() - c
    return cpu


def floor(steps: int) -> dict[str, float]:
    """Model-steps/s (cpu) of the matrix products alone, 1 model and 8 models; and
    of the same products with 4 MB of other data written after each layer's three
    (the time of that write subtracted): in a real step the activations, gradients
    and updates between two products push their operands out of the core's cache."""
    out = {}
    other = torch.zeros(1 << 20)  # 4 MB
    for name, k in (("single", 1), ("batch", 8), ("batch, cache shared", 8)):
        shared = name.endswith("shared")
        out[name] = k * steps / products_cpu(matmuls(k), steps, other if shared else None)
    return out


def speed(X, Y, steps: int, block: int, ud_every: int) -> None:
    plain_m, plain_g = deep_bn()
    fast_m, fast_g = deep_bn()
    ms, gs, lrs = batch_of_8()
    clocks = {"plain": Clock(), "fast": Clock(), "batch": Clock()}
    done = 0
    while done < steps:  # alternate blocks so that all three see the same load
        n = min(block, steps - done)
        with clocks["plain"]:
            train.train(plain_m, X, Y, n, generator=plain_g, progress=False)
        with clocks["fast"]:
            fast.train_fast(fast_m, X, Y, generator=fast_g, steps=n, ud_every=ud_every)
        with clocks["batch"]:
            fast.train_many(ms, X, Y, lrs=lrs, generators=gs, steps=n, ud_every=ud_every)
        done += n
    fl = floor(steps)  # in the same run, on the same (loaded) machine
    per_step = {"plain": 1, "fast": 1, "batch": len(ms)}
    p = clocks["plain"]
    print(f"{'':22s} {'steps/s (wall)':>15s} {'ratio':>7s} {'steps/s (cpu)':>14s} {'ratio':>7s}"
          f" {'of floor':>9s}")
    for name, c in clocks.items():
        label = {"plain": "plain loop, deep BN", "fast": "fast, deep BN",
                 "batch": f"fast, batch of {len(ms)}"}[name]
        k = per_step[name]
        cpu = k * steps / c.cpu
        of = fl["single" if name != "batch" else "batch"]
        print(f"{label:22s} {k * steps / c.wall:15.0f} {k * p.wall / c.wall:7.2f}"
              f" {cpu:14.0f} {k * p.cpu / c.cpu:7.2f} {cpu / of:9.0%}")
    for name, label in (("single", "floor, matmuls, 1"), ("batch", "floor, matmuls, 8"),
                        ("batch, cache shared", "  ... cache shared")):
        print(f"{label:22s} {'':15s} {'':7s} {fl[name]:14.0f} {fl[name] * p.cpu / steps:7.2f}")
    print("(batch rows count model-steps: one step of each of the models; the floor rows:\n"
          " the step's matrix products alone, torch.bmm, same shapes and layouts; 'cache shared':\n"
          " the 8 models' products with 4 MB of other data written after each layer)")


def plain_mlp(X, Y, steps: int, block: int) -> None:
    """The loss log's four MLPs: the lecture's loop one after the other vs
    backprop.train_plain_many stacking them (the same bits, less Python)."""
    inits = ("original", "fix_softmax", "fix_tanh", "kaiming")

    def fresh():
        gens = [models.new_generator() for _ in inits]
        return [models.mlp(i, generator=g) for i, g in zip(inits, gens)], gens

    runs = {"lecture loop x4": fresh(), "stack of 4": fresh()}
    clocks = {k: Clock() for k in runs}
    done = 0
    while done < steps:
        n = min(block, steps - done)
        with clocks["lecture loop x4"]:
            for m, g in zip(*runs["lecture loop x4"]):
                train.train(m, X, Y, n, generator=g, progress=False)
        with clocks["stack of 4"]:
            ms, gs = runs["stack of 4"]
            backprop.train_plain_many(ms, X, Y, steps=n, generators=gs)
        done += n
    p = clocks["lecture loop x4"]
    k = len(inits)
    for name, c in clocks.items():
        print(f"{'MLP, ' + name:22s} {k * steps / c.wall:15.0f} {p.wall / c.wall:7.2f}"
              f" {k * steps / c.cpu:14.0f} {p.cpu / c.cpu:7.2f}")
    print("(MLP rows: model-steps/s of the loss log's four MLPs; the stack is bit-identical)")


def full(splits, steps: int) -> None:
    X, Y = splits.Xtr, splits.Ytr
    losses = {}
    for name in ("plain", "fast"):
        m, g = deep_bn()
        t = time.perf_counter()
        if name == "plain":
            lossi = train.train(m, X, Y, steps, generator=g, progress=False).lossi
        else:
            lossi = fast.train_fast(m, X, Y, generator=g, steps=steps).lossi
        secs = time.perf_counter() - t
        losses[name] = (train.evaluate(m, splits, ("train", "val")), lossi)
        ev = losses[name][0]
        print(f"{name:5s}: {steps} steps in {secs:6.1f} s ({steps / secs:5.0f} steps/s), "
              f"train {ev['train']:.6f} val {ev['val']:.6f}")
    (ep, lp), (ef, lf) = losses["plain"], losses["fast"]
    d = {k: abs(ep[k] - ef[k]) for k in ep}
    print(f"|plain - fast|: train {d['train']:.2e} val {d['val']:.2e}, "
          f"lossi max {(lp - lf).abs().max():.2e} -> {'OK' if max(d.values()) < 1e-3 else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="timing window, steps per trainer")
    ap.add_argument("--block", type=int, default=500, help="steps per alternating block")
    ap.add_argument("--full", action="store_true", help="also compare 200,000-step runs")
    ap.add_argument("--cold", action="store_true", help="compile with an empty inductor cache")
    ap.add_argument("--ud-every", type=int, default=100,
                    help="fast trainer records update:data ratios this often (the book: 100)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # batch 32 is too small to share between threads
    splits = data.load_splits()
    try:
        compile_times(splits.Xtr, splits.Ytr, args.ud_every)
        speed(splits.Xtr, splits.Ytr, args.steps, args.block, args.ud_every)
        plain_mlp(splits.Xtr, splits.Ytr, args.steps, args.block)
        if args.full:
            full(splits, train.STEPS)
    finally:
        if args.cold:
            shutil.rmtree(os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
