"""makemore.engine.fast must train exactly like the plain loop of makemore.train.

The eager path runs the same ops as the plain loop and agrees to the bit; the
compiled path may round differently (fused kernels sum in another order), so it
is held to 1e-5 relative. Tests that compile are marked slow (each new
architecture costs 10-60 s of compilation on a cold cache).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from makemore import models, train
from makemore.engine import backprop, fast, functional
from makemore.nn import BatchNorm1d, Embedding, Flatten, Linear, Sequential, Tanh

STEPS = 200  # two calls of fast.LOOP steps, or records and loops with ud_every
RTOL = 1e-5


def bn_variants(g: torch.Generator) -> Sequential:
    """The BatchNorm flavours the lecture's models leave out: torch's (biased
    variance, running_var), and a running std with eps > 0 and another momentum."""
    model = Sequential([
        Embedding(27, 10, generator=g), Flatten(),
        Linear(30, 50, bias=False, generator=g), BatchNorm1d(50), Tanh(),
        # no bias before a BatchNorm: its gradient is zero, its value pure rounding noise
        Linear(50, 40, bias=False, generator=g),
        BatchNorm1d(40, eps=1e-3, momentum=0.3, track_std=True),
        Tanh(), Linear(40, 27, generator=g)])
    for p in model.parameters():
        p.requires_grad_(True)
    return model


BUILDERS = {
    **{init: (lambda init: lambda g: models.mlp(init, generator=g))(init)  # noqa: B023
       for init in models.MLP_INITS},
    "deep_bn": lambda g: models.deep_mlp(batchnorm=True, generator=g),
    "deep_nobn": lambda g: models.deep_mlp(batchnorm=False, generator=g),
    "bn_variants": bn_variants,
    # chapter "Beyond BatchNorm": LayerNorm, residual blocks, both
    "deep_ln": lambda g: models.deep_mlp(**DEEP["deep_ln"], generator=g),
    "deep_res": lambda g: models.deep_mlp(**DEEP["deep_res"], generator=g),
    "deep_ln_res": lambda g: models.deep_mlp(**DEEP["deep_ln_res"], generator=g),
}
DEEP = {"deep_bn": dict(batchnorm=True), "deep_nobn": dict(batchnorm=False),
        "deep_ln": dict(batchnorm=False, layernorm=True, gain=1.0),
        "deep_res": dict(batchnorm=False, residual=True, n_layers=8),
        "deep_ln_res": dict(batchnorm=False, layernorm=True, residual=True, gain=1.0)}


def build(name: str, **kw):
    g = models.new_generator()
    if name in DEEP:
        return models.deep_mlp(generator=g, **(DEEP[name] | kw)), g
    return BUILDERS[name](g), g


def plain_run(name: str, splits, steps: int, record_ud: bool = False, lr: float = 0.1):
    model, g = build(name)
    hist = train.train(model, splits.Xtr, splits.Ytr, steps, lr=lr, generator=g,
                       record_ud=record_ud, progress=False)
    return model, g, hist.lossi, hist.ud


def fast_run(name: str, splits, steps: int, compile: bool, **kw):
    model, g = build(name)
    hist = fast.train_fast(model, splits.Xtr, splits.Ytr, generator=g, steps=steps,
                           compile=compile, **kw)
    return model, g, hist


def assert_same_model(a: Sequential, b: Sequential, rtol: float) -> None:
    """Parameters and BatchNorm buffers agree (relative to each tensor's scale)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        scale = sa[k].abs().max().clamp_min(1e-6)
        assert ((sa[k] - sb[k]).abs().max() / scale).item() <= rtol, k


def assert_close_lossi(got: torch.Tensor, want: torch.Tensor, rtol: float) -> None:
    assert got.shape == want.shape and got.dtype == torch.float32
    rel = ((got - want).abs() / want.abs()).max().item()
    assert rel <= rtol, f"lossi differs by {rel:.2e} relative"


def test_chunked_draws_consume_the_generator_like_single_draws():
    """One (CHUNK, 32) draw == CHUNK draws of (32,), and leaves the same state."""
    n = 182_625
    g1, g2 = models.new_generator(), models.new_generator()
    block = torch.randint(0, n, (fast.CHUNK, 32), generator=g1)
    rows = torch.stack([torch.randint(0, n, (32,), generator=g2) for _ in range(fast.CHUNK)])
    assert torch.equal(block, rows)
    assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_eager_matches_plain_loop(name, splits):
    steps = 60
    plain, g_plain, lossi, _ = plain_run(name, splits, steps)
    model, g, hist = fast_run(name, splits, steps, compile=False)
    assert hist.trainer == "eager"
    assert_close_lossi(hist.lossi, lossi, RTOL)
    assert_same_model(model, plain, RTOL)
    # the same minibatches: the generators end in the same state
    assert torch.equal(g.get_state(), g_plain.get_state())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_features_first_is_the_same_math(name, splits):
    """The layout of compiled stacks, activations (features, batch), gives the row-major
    forward's logits, running statistics and gradients, up to rounding."""
    model, _ = build(name)
    plan, buffers = functional.layer_plan(model), functional.bn_buffers(model)
    x, y = splits.Xtr[:32], splits.Ytr[:32]

    def loss(params, features_first):
        logits, new = functional.functional_forward(plan, params, buffers, x, features_first)
        return F.cross_entropy(logits, y), (logits, new)

    grad = torch.func.grad(loss, has_aux=True)
    params = [p.detach() for p in model.parameters()]
    want_g, (want, want_buf) = grad(params, False)
    got_g, (got, got_buf) = grad(params, True)
    assert got.shape == want.shape == (32, 27)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_buf + got_g, want_buf + want_g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_eager_update_data_ratios_and_tail(splits):
    """ud at steps 0, 4, 8 are the plain loop's rows; 10 steps leave a short last
    call; the learning-rate decay at step 5 falls inside a call. The plain loop takes
    std(lr * grad), the fast trainer std(new - old data): the same but for the rounding
    of p + update, largest for the BatchNorm gains (near 1, tiny spread and updates;
    measured 2.2e-4); the 2-D weights that the chapters plot agree to 1e-4 (3.4e-5)."""
    model, g = build("deep_bn")
    hist = fast.train_fast(model, splits.Xtr, splits.Ytr, generator=g, steps=10,
                           decay_step=5, ud_every=4, compile=False)
    plain, gp = build("deep_bn")
    ref = train.train(plain, splits.Xtr, splits.Ytr, 10, decay_step=5, generator=gp,
                      record_ud=True, progress=False)
    assert hist.ud_steps.tolist() == [0, 4, 8] and hist.ud_steps.dtype == torch.int64
    assert hist.ud.shape == (3, len(model.parameters()))
    want = ref.ud[[0, 4, 8]]
    torch.testing.assert_close(hist.ud, want, rtol=0, atol=1e-3)
    weights = [j for j, p in enumerate(model.parameters()) if p.ndim == 2]
    torch.testing.assert_close(hist.ud[:, weights], want[:, weights], rtol=0, atol=1e-4)
    assert_close_lossi(hist.lossi, ref.lossi, RTOL)
    assert_same_model(model, plain, RTOL)


def test_calls_record_ud_at_every_multiple_and_cover_every_step(monkeypatch):
    monkeypatch.setattr(fast, "LOOP", 8)
    # ud every 20 steps: a call of 1 that records, then loops of 8, 8 and 3
    calls = list(fast._calls(0, 40, 20))
    assert calls == [(0, 1, True), (1, 8, False), (9, 8, False), (17, 3, False),
                     (20, 1, True), (21, 8, False), (29, 8, False), (37, 3, False)]
    # a chunk that starts mid-run: offsets from its start, records at absolute multiples
    calls = list(fast._calls(150, 70, 100))
    assert calls[0] == (0, 8, False) and (50, 1, True) in calls
    # never records ud: 30 steps end with a loop of 6
    assert list(fast._calls(0, 30, 0)) == [(0, 8, False), (8, 8, False), (16, 8, False),
                                           (24, 6, False)]
    for start, n, every in [(0, 200, 100), (150, 70, 100), (0, 30, 0), (3, 97, 5), (0, 5, 1)]:
        covered = [start + i + j for i, k, _ in fast._calls(start, n, every) for j in range(k)]
        assert covered == list(range(start, start + n))


def torch_bn(g: torch.Generator) -> Sequential:
    """torch's BatchNorm (biased variance, running_var), differentiated by hand."""
    model = Sequential([Embedding(27, 10, generator=g), Flatten(),
                        Linear(30, 50, bias=False, generator=g), BatchNorm1d(50), Tanh(),
                        Linear(50, 27, generator=g)])
    for p in model.parameters():
        p.requires_grad_(True)
    return model


@pytest.mark.parametrize("name", ["original", "kaiming", "batchnorm", "batchnorm_b1", "deep_bn",
                                  "torch_bn", "bn_variants"])
def test_train_plain_is_the_plain_loop_to_the_bit(name, splits):
    # Every step runs the same code; a difference in any op shows at the first step it
    # runs, so 120 steps with the decay at 60 cover every path (300 took 2.5x longer).
    steps = 120
    def fresh():
        g = models.new_generator()
        return {**BUILDERS, "torch_bn": torch_bn}[name](g), g
    model, g = fresh()
    # by hand, except bn_variants' running std with eps > 0: autograd's, as the fallback
    assert backprop.supports(model) == (name != "bn_variants")
    done = []
    hist = backprop.train_plain(model, splits.Xtr, splits.Ytr, steps=steps, lr=0.2, decay_step=60,
                            generator=g, progress=done.append)
    ref_model, gr = fresh()
    ref = train.train(ref_model, splits.Xtr, splits.Ytr, steps, lr=0.2, decay_step=60,
                      generator=gr, progress=False)
    assert hist.trainer == "plain" and hist.seconds > 0
    assert torch.equal(hist.lossi, ref.lossi)
    assert hist.ud.shape == (0, len(model.parameters())) and hist.ud_steps.shape == (0,)
    assert_same_model(model, ref_model, 0.0)
    assert torch.equal(g.get_state(), gr.get_state())
    assert done[0] == 0 and done[-1] == steps  # a first and the final progress call


def test_train_plain_many_is_each_plain_loop_to_the_bit(splits):
    """The four loss-log MLPs trained as one stack (bmm, one kernel per op for all)
    end exactly where four runs of the lecture's loop end."""
    inits = ["original", "fix_softmax", "fix_tanh", "kaiming"]
    steps = 120  # with a learning-rate decay at step 60
    built = [build(init) for init in inits]
    done = []
    hists = backprop.train_plain_many([m for m, _ in built], splits.Xtr, splits.Ytr, steps=steps,
                                  lr=0.2, decay_step=60, generators=[g for _, g in built],
                                  progress=done.append)
    for init, (model, g), hist in zip(inits, built, hists, strict=False):
        ref_model, gr = build(init)
        ref = train.train(ref_model, splits.Xtr, splits.Ytr, steps, lr=0.2, decay_step=60,
                          generator=gr, progress=False)
        assert torch.equal(hist.lossi, ref.lossi), init
        assert_same_model(model, ref_model, 0.0)
        assert torch.equal(g.get_state(), gr.get_state())
    assert done[0] == 0 and done[-1] == steps


def test_train_plain_many_stacks_batchnorm_nets_to_the_bit(splits):
    """BatchNorm's backward by hand (autograd's op-by-op chain): two BatchNorm MLPs
    and two deep BatchNorm nets, stacked, end where the lecture's loop ends."""
    steps = 60  # with a learning-rate decay at step 30
    for name, seeds in (("batchnorm", (1, 2)), ("deep_bn", (3, 4))):
        def fresh(seed, name=name):
            g = torch.Generator().manual_seed(seed)
            return (models.mlp("batchnorm", generator=g) if name == "batchnorm"  # noqa: B023
                    else models.deep_mlp(batchnorm=True, generator=g)), g
        built = [fresh(s) for s in seeds]
        hists = backprop.train_plain_many([m for m, _ in built], splits.Xtr, splits.Ytr,
                                          steps=steps, lr=0.2, decay_step=30,
                                          generators=[g for _, g in built])
        for seed, (model, _), hist in zip(seeds, built, hists, strict=False):
            ref_model, gr = fresh(seed)
            ref = train.train(ref_model, splits.Xtr, splits.Ytr, steps, lr=0.2, decay_step=30,
                              generator=gr, progress=False)
            assert torch.equal(hist.lossi, ref.lossi), name
            assert_same_model(model, ref_model, 0.0)  # the running statistics too


@pytest.mark.parametrize("name", ["deep_ln", "deep_res", "deep_ln_res"])
def test_layernorm_and_residual_backward_by_hand_to_the_bit(name, splits):
    """LayerNorm's backward by hand (BatchNorm's chain over the features) and the residual
    block's (the gradient of x + f(x) reaches x twice and sums): two nets of chapter
    "Beyond BatchNorm", stacked, end where the lecture's loop ends, running statistics none."""
    steps = 40  # with a learning-rate decay at step 20
    built = [build(name) for _ in range(2)]
    built[1][1].manual_seed(7)  # the second net's minibatches from another stream
    assert backprop.supports(built[0][0])
    hists = backprop.train_plain_many([m for m, _ in built], splits.Xtr, splits.Ytr,
                                      steps=steps, lr=0.2, decay_step=20,
                                      generators=[g for _, g in built])
    for k, ((model, _), hist) in enumerate(zip(built, hists, strict=False)):
        ref_model, gr = build(name)
        if k:
            gr.manual_seed(7)
        ref = train.train(ref_model, splits.Xtr, splits.Ytr, steps, lr=0.2, decay_step=20,
                          generator=gr, progress=False)
        assert torch.equal(hist.lossi, ref.lossi), (name, k)
        assert_same_model(model, ref_model, 0.0)


def test_train_plain_many_refuses_what_it_cannot_stack(splits):
    (a, ga), (b, gb) = build("kaiming"), build("batchnorm")
    with pytest.raises(ValueError, match="one architecture"):
        backprop.train_plain_many([a, b], splits.Xtr, splits.Ytr, steps=4, generators=[ga, gb])
    odd = models.mlp("batchnorm", generator=models.new_generator())
    odd.layers[3].eps = 1e-5  # divides by sqrt(std**2 + eps): autograd's, one model at a time
    assert not backprop.supports(odd)
    with pytest.raises(ValueError, match="one by one"):
        backprop.train_plain_many([odd, b], splits.Xtr, splits.Ytr, steps=4, generators=[ga, gb])
    with pytest.raises(ValueError, match="generators"):
        backprop.train_plain_many([a], splits.Xtr, splits.Ytr, steps=4, generators=[ga, gb])
    wide = models.mlp("kaiming", n_hidden=50, generator=models.new_generator())
    with pytest.raises(ValueError, match="one architecture"):
        backprop.train_plain_many([a, wide], splits.Xtr, splits.Ytr, steps=4, generators=[ga, gb])


def test_no_ud_and_no_steps(splits):
    model, g = build("kaiming")
    hist = fast.train_fast(model, splits.Xtr, splits.Ytr, generator=g, steps=0, compile=False)
    n = len(model.parameters())
    assert hist.lossi.shape == (0,) and hist.ud.shape == (0, n) and hist.ud_steps.shape == (0,)


def test_eager_vmap_matches_solo_runs(splits):
    gains, lrs = (0.5, 5 / 3, 3.0), (0.1, 0.2, 0.05)
    built = [build("deep_bn", gain=gain) for gain in gains]
    hists = fast.train_many([m for m, _ in built], splits.Xtr, splits.Ytr, steps=20, lrs=lrs,
                            generators=[g for _, g in built], compile=False)
    for (m, _), h, gain, lr in zip(built, hists, gains, lrs, strict=False):
        solo, g = build("deep_bn", gain=gain)
        hs = fast.train_fast(solo, splits.Xtr, splits.Ytr, generator=g, steps=20, lr=lr,
                             compile=False)
        assert_close_lossi(h.lossi, hs.lossi, 1e-6)
        assert_same_model(m, solo, 1e-6)


def test_determinism_eager(splits):
    a, _, ha = fast_run("batchnorm", splits, 40, compile=False)
    b, _, hb = fast_run("batchnorm", splits, 40, compile=False)
    assert torch.equal(ha.lossi, hb.lossi)
    assert_same_model(a, b, 0.0)


def test_fallback_when_compilation_fails(splits, monkeypatch, capsys):
    def broken(*args, **kw):
        def step(*a):
            raise RuntimeError("no C compiler\nsecond line")
        return step
    monkeypatch.setattr(fast, "_compiled_step", broken)
    monkeypatch.setattr(fast, "_compile_failed", False)
    model, _, hist = fast_run("kaiming", splits, 8, compile=True)
    _, _, eager = fast_run("kaiming", splits, 8, compile=False)
    assert hist.trainer == "eager"
    assert torch.equal(hist.lossi, eager.lossi)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no C compiler" in err[0]
    # no second attempt, no second notice
    assert fast_run("kaiming", splits, 4, compile=True)[2].trainer == "eager"
    assert capsys.readouterr().err == ""


def test_env_var_turns_compilation_off(splits, monkeypatch):
    monkeypatch.setenv("MAKEMORE_COMPILE", "0")
    assert fast_run("kaiming", splits, 4, compile=None)[2].trainer == "eager"
    assert fast._want_compile(True)  # an explicit argument wins


def test_same_architecture_and_mixed_batches(splits):
    a, _ = build("deep_bn", gain=1.0)
    b, _ = build("deep_bn", gain=3.0)
    assert functional.same_architecture(a, b)
    assert not functional.same_architecture(a, build("deep_nobn")[0])
    assert not functional.same_architecture(a, build("deep_bn", n_hidden=50)[0])
    assert not functional.same_architecture(build("kaiming")[0], build("batchnorm")[0])
    with pytest.raises(ValueError, match="one architecture"):
        fast.train_many([a, build("deep_nobn")[0]], splits.Xtr, splits.Ytr, steps=4,
                        generators=[models.new_generator()] * 2, compile=False)


def test_unknown_layer_is_refused(splits):
    class Scaled(Tanh):  # a subclass may change the math: not silently trained
        pass
    model = Sequential([Linear(3, 27), Scaled()])
    with pytest.raises(TypeError, match="Scaled"):
        fast.train_fast(model, splits.Xtr.float(), splits.Ytr, generator=models.new_generator(),
                        steps=4, compile=False)


# ---------------------------------------------------------------------------------------
# compiled: each architecture compiles once per process (and is cached on disk)

@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDERS))
def test_compiled_matches_plain_loop(name, splits):
    # "original" starts with a loss of ~27 and amplifies a rounding difference about
    # tenfold every 20 steps (chaos, not a bug): compare its first 20 steps only
    steps = 20 if name == "original" else STEPS
    plain, g_plain, lossi, _ = plain_run(name, splits, steps)
    model, g, hist = fast_run(name, splits, steps, compile=True)
    assert hist.trainer == "compiled"
    # fused kernels round a little differently again: ~1e-5 for "original"'s logits of ~28
    assert_close_lossi(hist.lossi, lossi, 2 * RTOL)
    assert_same_model(model, plain, 10 * RTOL)
    assert torch.equal(g.get_state(), g_plain.get_state())


@pytest.mark.slow
def test_compiled_ud_eager_equal_and_deterministic(splits):
    """compile=True vs compile=False, and two compiled runs, with ud records."""
    a, _, ha = fast_run("deep_bn", splits, STEPS, compile=True, ud_every=20)
    b, _, hb = fast_run("deep_bn", splits, STEPS, compile=True, ud_every=20)
    c, _, hc = fast_run("deep_bn", splits, STEPS, compile=False, ud_every=20)
    assert (ha.trainer, hc.trainer) == ("compiled", "eager")
    assert torch.equal(ha.lossi, hb.lossi) and torch.equal(ha.ud, hb.ud)
    assert_same_model(a, b, 0.0)
    assert_close_lossi(ha.lossi, hc.lossi, RTOL)
    assert torch.equal(ha.ud_steps, hc.ud_steps)
    torch.testing.assert_close(ha.ud, hc.ud, rtol=0, atol=1e-4)
    assert_same_model(a, c, 10 * RTOL)


@pytest.mark.slow
def test_loop_graph_is_loaded_from_the_disk_cache(splits, monkeypatch):
    """The compiled loop (a torch.while_loop) is kept in inductor's on-disk cache: after
    the process forgets every compiled graph, training again loads it instead of
    compiling it, and trains the same bits."""
    from torch._dynamo.utils import counters

    def run():
        torch._dynamo.reset()  # as a new process: no compiled graph in memory
        monkeypatch.setattr(fast, "_COMPILED", {})
        model, _, hist = fast_run("deep_nobn", splits, STEPS, compile=True)
        assert hist.trainer == "compiled"
        return model, hist

    a, ha = run()  # compiles, or loads what an earlier process compiled
    counters.clear()
    b, hb = run()
    assert counters["inductor"]["fxgraph_cache_bypass"] == 0
    assert counters["inductor"]["fxgraph_cache_hit"] >= 1
    assert torch.equal(ha.lossi, hb.lossi)
    assert_same_model(a, b, 0.0)


@pytest.mark.slow
def test_compiled_vmap_matches_solo_runs(splits):
    gains, lrs = (0.5, 1.0, 5 / 3, 3.0), (0.1, 0.2, 0.1, 0.2)
    built = [build("deep_bn", gain=gain) for gain in gains]
    hists = fast.train_many([m for m, _ in built], splits.Xtr, splits.Ytr, steps=STEPS,
                            lrs=lrs, generators=[g for _, g in built], compile=True)
    for (m, _), h, gain, lr in zip(built, hists, gains, lrs, strict=False):
        solo, g = build("deep_bn", gain=gain)
        hs = fast.train_fast(solo, splits.Xtr, splits.Ytr, generator=g, steps=STEPS, lr=lr,
                             compile=True)
        assert h.trainer == hs.trainer == "compiled"
        # a stack once returned every loss as inf (-ffast-math on an AVX2 CPU)
        assert torch.isfinite(h.lossi).all() and torch.isfinite(hs.lossi).all()
        assert_close_lossi(h.lossi, hs.lossi, RTOL)
        assert_same_model(m, solo, 10 * RTOL)


@pytest.mark.slow
def test_fallback_without_a_c_compiler(splits, monkeypatch, capsys):
    """A real failure: inductor finds no working C++ compiler (and no cached kernels)."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setattr(fast, "_compile_failed", False)
    monkeypatch.setattr(fast, "_COMPILED", {})
    g = models.new_generator()
    model = models.mlp("kaiming", n_hidden=13, generator=g)  # a size compiled nowhere else
    hist = fast.train_fast(model, splits.Xtr, splits.Ytr, generator=g, steps=8)
    assert hist.trainer == "eager"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compiler" in err[0]


@pytest.mark.slow
def test_compiled_divergence_stays_non_finite(splits):
    """Compiled (fast._compiled_step), a run driven to overflow shows it in its losses and
    weights at the same step as the eager step (the plain loop's math), which is how the
    experiments tell a diverged run."""
    first_bad, finite_weights = [], []
    for compile in (False, True):
        g = models.new_generator()
        model = models.deep_mlp(batchnorm=False, gain=5 / 3, generator=g)
        hist = fast.train_fast(model, splits.Xtr, splits.Ytr, generator=g, steps=40, lr=1e38,
                               compile=compile)
        assert hist.trainer == ("compiled" if compile else "eager")
        bad = (~torch.isfinite(hist.lossi)).nonzero()
        first_bad.append(int(bad[0]) if len(bad) else None)
        finite_weights.append(all(torch.isfinite(p).all() for p in model.parameters()))
    assert first_bad[0] is not None and first_bad == [first_bad[0]] * 2
    assert finite_weights == [False, False]
