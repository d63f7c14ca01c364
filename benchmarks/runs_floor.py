"""How far is ``make runs`` from what this machine's arithmetic allows?

For every job that ``make runs`` trains (the book's runs grouped as
:func:`makemore.runs.pretrain.plan` groups and orders them), measured side by side in
one process, alternating blocks of steps so that both see the same machine load:

- the job's own trainer (``makemore.engine.fast``, ``makemore.engine.backprop``'s plain loop,
  or ``makemore.train.train`` itself for a run with Adam or update:data ratios at every step)
  on its own models, learning rates and update:data records, in model-steps/s;
- its floor: the step's matrix products alone (forward, weight gradient, input
  gradient of every Linear layer; the same shapes, layouts and ``torch.bmm`` as
  the trainer's), in model-steps/s;
- the end-of-job evaluation (losses of the three splits, BatchNorm calibration),
  timed on the job's first model and counted once per model.

From these rates it projects each job's time at full length and schedules the jobs
on the cores as ``pretrain`` does (in its order, each on the first free core): the
projected ``make runs``, and the same schedule at the floor. Compilation is not in
either: it is printed as measured here (a warm inductor cache loads the graphs; a
cold one, ``--cold``, compiles them as a fresh clone does).

    PYTHONPATH=code MAKEMORE_NAMES=... python benchmarks/runs_floor.py [--seconds S] [--cold]

The ratio is the number to read; seconds depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

# first: with --cold, train_speed points torch at a fresh inductor cache before torch loads
from train_speed import matmuls, products_cpu  # isort: skip  (this folder)

# isort: split
import torch  # noqa: E402
from makemore import data, models, train  # noqa: E402
from makemore.engine import backprop, fast  # noqa: E402
from makemore.nn import Linear  # noqa: E402
from makemore.runs import RUNS, jobs, pretrain, registry  # noqa: E402


def trainer(specs: list[jobs.RunSpec], X: torch.Tensor, Y: torch.Tensor):
    """``run(n)``: ``n`` more steps of the job's models with its own trainer, as
    :func:`makemore.runs.jobs.train_job` calls it; and the models."""
    gens = [models.new_generator(s.seed) for s in specs]
    ms = [s.build(g) for s, g in zip(specs, gens)]
    s0 = specs[0]

    def run(n: int):
        if s0.trainer == "fast":
            return fast.train_many(ms, X, Y, steps=n, lrs=[s.lr for s in specs],
                                   batch_size=s0.batch_size, decay_step=s0.decay_step,
                                   generators=gens, ud_every=s0.ud_every)
        if s0.loop:
            return [train.train(m, X, Y, n, batch_size=s.batch_size, lr=s.lr,
                                decay_step=s.decay_step, generator=g, record_ud=s.ud_every == 1,
                                optimizer=s.optimizer, progress=False)
                    for s, m, g in zip(specs, ms, gens)]
        return backprop.train_plain_many(ms, X, Y, steps=n, lr=s0.lr, batch_size=s0.batch_size,
                                         decay_step=s0.decay_step, generators=gens)
    return run, ms


def products(specs: list[jobs.RunSpec]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The operands of one step's products of the job's models, in its trainer's layout:
    the fast trainer carries a stack features-first, one model and the plain loop's
    stacks row-major."""
    model = specs[0].build()
    # every Linear layer, those inside residual blocks too, in the order they run
    layers = [inner for layer in model.layers for inner in getattr(layer, "layers", [layer])]
    linears = [layer for layer in layers if isinstance(layer, Linear)]
    sizes = (linears[0].weight.shape[0], *(lin.weight.shape[1] for lin in linears))
    M = len(specs)
    return matmuls(M, sizes, batch=specs[0].batch_size,
                   features_first=specs[0].trainer == "fast" and M > 1)


def schedule(seconds: list[float], cores: int) -> float:
    """Wall time of jobs started in this order, each on the first free core."""
    free = [0.0] * cores
    for s in seconds:
        k = free.index(min(free))
        free[k] += s
    return max(free)


def measure(specs: list[jobs.RunSpec], splits: data.Splits, seconds: float, block: int) -> dict:
    """The job's trainer and its products, side by side, in blocks of ``block`` steps
    until the trainer has run ``seconds`` of CPU time: their model-steps/s of CPU time,
    the job's evaluation and its compilation, in seconds."""
    X, Y = splits.Xtr, splits.Ytr
    run, ms = trainer(specs, X, Y)
    t = time.perf_counter()
    run(2)  # compiles (or loads) the job's graph
    compile_s = time.perf_counter() - t
    pairs = products(specs)
    cpu_train = cpu_floor = 0.0
    steps = 0
    while cpu_train < seconds:  # alternate, so that both see the same load
        c = time.process_time()
        hist = run(block)
        cpu_train += time.process_time() - c
        cpu_floor += products_cpu(pairs, block)
        steps += block
    c = time.process_time()
    # the job's own end: evaluation of the three splits (and BatchNorm's calibration)
    jobs._record(specs[0], ms[0], hist[0], splits)
    eval_s = (time.process_time() - c) * len(specs)
    M = len(specs)
    return {"compile": compile_s, "rate": M * steps / cpu_train, "floor": M * steps / cpu_floor,
            "eval": eval_s}


def full_length(specs: list[jobs.RunSpec], rate: float) -> float:
    """Seconds the job's ``len(specs) x steps`` model-steps take at ``rate`` model-steps/s."""
    return len(specs) * specs[0].steps / rate


def describe(specs: list[jobs.RunSpec]) -> str:
    """A job in a few words: "7 deep nets, BN", "4 MLPs, original .. kaiming"."""
    s0 = specs[0]
    M = len(specs)
    if s0.builder == "mlp":  # the loss log's rows, by init
        names = specs[0].name if M == 1 else f"{specs[0].name} .. {specs[-1].name}"
        return f"{M} MLP{'s' if M > 1 else ''}, {names}"
    return f"{M} deep nets, {'BN' if s0.batchnorm else 'no BN'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="timing window: CPU seconds of each job's trainer")
    ap.add_argument("--block", type=int, default=500, help="steps per alternating block")
    ap.add_argument("--cores", type=int, default=2, help="processes make runs trains on")
    ap.add_argument("--cold", action="store_true", help="compile with an empty inductor cache")
    args = ap.parse_args()
    if args.seconds <= 0 or args.block < 1 or args.cores < 1:
        ap.error("--seconds must be above 0, --block and --cores at least 1")
    torch.set_num_threads(1)  # as each of pretrain's workers
    splits = data.load_splits()
    try:
        plan = pretrain.plan(list(RUNS.values()))
        rows = [(specs, measure(specs, splits, args.seconds, args.block)) for specs in plan]
    finally:
        if args.cold:
            shutil.rmtree(os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)
    print(f"{'job':36s} {'trainer':>8s} {'model-steps/s':>13s} {'floor':>7s} {'of floor':>8s}"
          f" {'train s':>8s} {'eval s':>7s} {'floor s':>8s} {'compile s':>9s}")
    train = [full_length(specs, r["rate"]) for specs, r in rows]
    at_floor = [full_length(specs, r["floor"]) for specs, r in rows]
    for k, ((specs, r), t, f) in enumerate(zip(rows, train, at_floor), 1):
        print(f"{k} {describe(specs):34s} {specs[0].trainer:>8s} {r['rate']:13.0f}"
              f" {r['floor']:7.0f} {r['rate'] / r['floor']:8.0%} {t:8.0f}"
              f" {r['eval']:7.1f} {f:8.0f} {r['compile']:9.1f}")
    job_s = [t + r["eval"] for t, (_, r) in zip(train, rows)]  # training + evaluation
    projected, floor = schedule(job_s, args.cores), schedule(at_floor, args.cores)
    cpu = sum(job_s)
    print(f"make runs on {args.cores} cores, the jobs in pretrain's order, each on the first "
          f"free core:")
    print(f"  projected from these rates (training + evaluation): {projected:6.0f} s"
          f"  ({cpu:.0f} s of CPU: {cpu / args.cores:.0f} s on {args.cores} cores at best)")
    print(f"  at the floor (the products alone):                  {floor:6.0f} s"
          f"  ratio {projected / floor:.2f}")
    print("  compilation is in neither: a cold cache adds the 'compile s' above, on the same cores")
    print(f"(rates in model-steps/s of CPU time, one thread; each job's trainer timed for "
          f"{args.seconds:g} s of CPU, in blocks of {args.block} steps)")
    # the budget of the chapter "Beyond BatchNorm" (issue 29): a cold make runs with its
    # runs at most 25 % longer than without them, compilation included
    beyond = set(registry.BEYOND_RUNS)
    cold = [s + r["compile"] for s, (_, r) in zip(job_s, rows)]
    mine = [any(s.name in beyond for s in specs) for specs, _ in rows]
    if any(m != all(s.name in beyond for s in specs) for m, (specs, _) in zip(mine, rows)):
        raise SystemExit("a job mixes the chapter's runs with others: the budget cannot split it")
    without = schedule([c for c, m in zip(cold, mine) if not m], args.cores)
    with_all = schedule(cold, args.cores)
    print(f"a cold make runs (compilation included, as measured here) on {args.cores} cores: "
          f"{without:.0f} s without the {len(beyond)} runs of 'Beyond BatchNorm', "
          f"{with_all:.0f} s with them: {with_all / without - 1:+.1%} (budget: +25%)")


if __name__ == "__main__":
    main()
