"""The training loop against the lecture's loop typed out, determinism, calibration
and sampling."""
import pytest
import torch
import torch.nn.functional as F
from makemore import models, train
from makemore.nn import BatchNorm1d
from makemore.sample import sample


def lecture_loop(splits, steps):
    """The lecture's Kaiming-MLP cells, verbatim in spirit: raw tensors, no classes."""
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g) * (5 / 3) / 30**0.5
    b1 = torch.randn(200, generator=g) * 0.01
    W2 = torch.randn((200, 27), generator=g) * 0.01
    b2 = torch.randn(27, generator=g) * 0
    parameters = [C, W1, b1, W2, b2]
    for p in parameters:
        p.requires_grad = True
    lossi = []
    for i in range(steps):
        ix = torch.randint(0, splits.Xtr.shape[0], (32,), generator=g)
        Xb, Yb = splits.Xtr[ix], splits.Ytr[ix]
        emb = C[Xb]
        h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
        loss = F.cross_entropy(h @ W2 + b2, Yb)
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 100000 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        lossi.append(loss.log10().item())
    return lossi


def test_train_is_the_lectures_loop(splits):
    g = models.new_generator()
    m = models.mlp("kaiming", generator=g)
    ours = train.train(m, splits.Xtr, splits.Ytr, steps=300, generator=g, progress=False).lossi
    assert ours.dtype == torch.float32
    assert ours.tolist() == lecture_loop(splits, 300)  # bit for bit


def test_learning_rate_schedule():
    assert train.learning_rate(0) == 0.1
    assert train.learning_rate(99_999) == 0.1
    assert train.learning_rate(100_000) == pytest.approx(0.01)
    assert train.learning_rate(149_999, decay_step=150_000) == 0.1


def run(seed, splits, steps=60):
    g = models.new_generator(seed)
    m = models.deep_mlp(batchnorm=True, generator=g)
    h = train.train(m, splits.Xtr, splits.Ytr, steps=steps, generator=g, record_ud=True,
                    progress=False)
    return m, h


def test_same_seed_same_trajectory_and_samples(splits):
    (m1, h1), (m2, h2) = run(1, splits), run(1, splits)
    assert torch.equal(h1.lossi, h2.lossi) and torch.equal(h1.ud, h2.ud)
    assert h1.ud.shape == (60, len(m1.parameters())) and h1.ud.dtype == torch.float32
    assert torch.equal(h1.ud_steps, torch.arange(60)) and h1.trainer == "plain"
    assert sample(m1, 5, vocab=splits.vocab) == sample(m2, 5, vocab=splits.vocab)
    _, h3 = run(2, splits)
    assert not torch.equal(h3.lossi, h1.lossi)


def test_training_lowers_the_loss(splits):
    g = models.new_generator(0)
    m = models.deep_mlp(batchnorm=True, generator=g)
    h = train.train(m, splits.Xtr, splits.Ytr, steps=500, generator=g, progress=False)
    first = h.lossi[:50].mean().item()
    last = h.lossi[-50:].mean().item()
    assert 10**last < 10**first - 0.4


def test_history_without_ud_and_progress_callback(splits, monkeypatch):
    monkeypatch.setattr(train, "PROGRESS_EVERY", 10)
    g = models.new_generator()
    m = models.mlp("kaiming", generator=g)
    seen = []
    h = train.train(m, splits.Xtr, splits.Ytr, steps=25, generator=g, progress=seen.append)
    assert seen == [10, 20, 25]  # every PROGRESS_EVERY steps, and at the end
    assert h.lossi.shape == (25,) and h.ud.shape == (0, len(m.parameters()))
    assert h.ud_steps.shape == (0,) and h.seconds > 0


def test_calibrate_sets_full_set_statistics(splits):
    m, _ = run(0, splits, steps=50)
    X = splits.Xtr[:5000]
    params = [p.clone() for p in m.parameters()]
    train.calibrate(m, X)
    # recompute the first BatchNorm's input by hand: Embedding -> Flatten -> Linear
    pre = m.layers[0].weight[X].view(len(X), -1) @ m.layers[2].weight
    bn = m.layers[3]
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, pre.var(0), atol=1e-4)
    assert bn.momentum == 0.1 and m.training  # restored
    assert all(torch.equal(a, b) for a, b in zip(params, m.parameters()))


@pytest.mark.parametrize("init", ["deep_bn", "batchnorm"])
def test_calibrate_equals_one_training_mode_pass(splits, init):
    """Layer by layer in blocks gives every BatchNorm the statistics of the lecture's
    calibration: one forward pass of all the rows in training mode, momentum 1."""
    def trained():  # the same net twice: same seed, same 40 steps
        g = models.new_generator(5)
        m = (models.deep_mlp(batchnorm=True, generator=g) if init == "deep_bn"
             else models.mlp(init, generator=g))
        train.train(m, splits.Xtr, splits.Ytr, steps=40, generator=g, progress=False)
        return m

    X = splits.Xtr[:3 * train.EVAL_ROWS + 77]
    m, ref = trained(), trained()
    bns = [layer for layer in ref.layers if isinstance(layer, BatchNorm1d)]
    for bn in bns:
        bn.momentum = 1.0
    with torch.no_grad():
        ref(X)  # training mode
    train.calibrate(m, X)
    mine = [layer for layer in m.layers if isinstance(layer, BatchNorm1d)]
    assert len(mine) == len(bns) > 0
    for a, b in zip(mine, bns):
        for k, want in b.buffers().items():
            torch.testing.assert_close(a.buffers()[k], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("build", [
    lambda: models.mlp("kaiming"),
    lambda: models.mlp("batchnorm"),
    lambda: models.deep_mlp(batchnorm=True),
    lambda: models.deep_mlp(batchnorm=False),
], ids=["mlp", "bn_mlp", "deep_bn", "deep"])
def test_split_loss_in_blocks_is_one_pass_to_the_bit(splits, build):
    """split_loss runs the forward EVAL_ROWS rows at a time; in evaluation mode that
    must give the one-pass logits exactly (here with a short last block)."""
    m = build()
    train.train(m, splits.Xtr, splits.Ytr, steps=30, generator=models.new_generator(3),
                progress=False)  # running statistics and weights away from their init
    n = 3 * train.EVAL_ROWS + 123
    X, Y = splits.Xtr[:n], splits.Ytr[:n]
    with torch.no_grad():
        m.eval()
        want = F.cross_entropy(m(X), Y).item()
        m.train()
    assert train.split_loss(m, X, Y) == want and m.training


def test_evaluate_returns_each_split(splits):
    m = models.mlp("kaiming")
    losses = train.evaluate(m, splits)
    assert set(losses) == {"train", "val", "test"}
    assert all(3.0 < v < 3.6 for v in losses.values())


def test_sample_format(splits):
    m = models.mlp("kaiming")
    names = sample(m, 10, vocab=splits.vocab)
    assert len(names) == 10
    # an untrained net may never say '.': max_len stops it
    assert all((n.endswith(".") or len(n) == 50) and set(n.rstrip(".")) <= set(
        "abcdefghijklmnopqrstuvwxyz") for n in names)
    assert m.training  # restored after sampling in eval mode
