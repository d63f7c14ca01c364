"""makemore.analysis.params: parameters by name, their gradients, symmetry between units."""
import pytest
import torch
import torch.nn.functional as F
from makemore.analysis import params
from makemore.models import deep_mlp
from makemore.nn import BatchNorm1d, Linear, Sequential, Tanh


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def backward(model, seed=1):
    gen = g(seed)
    X = torch.randint(0, 27, (32, 3), generator=gen)
    Y = torch.randint(0, 27, (32,), generator=gen)
    for p in model.parameters():
        p.grad = None
    F.cross_entropy(model(X), Y).backward()


def test_names_follow_the_layers_and_parameters():
    model = deep_mlp(batchnorm=True, generator=g())
    named = params.named_parameters(model)
    assert len(named) == len(model.parameters())
    assert all(a is b for (_, a), b in zip(named, model.parameters(), strict=True))
    names = [n for n, _ in named]
    assert names[:3] == ["layer 0 Embedding.weight", "layer 2 Linear.weight",
                         "layer 3 BatchNorm1d.gamma"]  # Linear without bias before BatchNorm
    assert names[-2:] == [f"layer {len(model.layers) - 1} BatchNorm1d.gamma",
                          f"layer {len(model.layers) - 1} BatchNorm1d.beta"]


def test_all_zero_network_has_only_the_output_bias_alive():
    model = params.fill(deep_mlp(batchnorm=False, generator=g()), 0.0)
    backward(model)
    assert params.live_parameters(model) == [f"layer {len(model.layers) - 1} Linear.bias"]
    table = params.gradient_table(model).data
    assert table.count("\n") == 2 + len(model.parameters()) - 1
    assert "0 of 270 " in table  # the embedding table C: 27 x 10 entries, all zero
    assert "27 of 27 " in table  # the output bias: all alive
    with pytest.raises(ValueError, match="no gradient"):
        params.gradient_table(deep_mlp(batchnorm=False, generator=g()))


def test_unit_spread_is_zero_for_equal_units():
    model = params.fill(deep_mlp(batchnorm=False, generator=g()), 0.1)
    assert params.unit_spread(model) == 0.0
    assert params.unit_spread(deep_mlp(batchnorm=False, generator=g())) > 0.01
    with pytest.raises(ValueError, match="no hidden"):
        params.unit_spread(Sequential([Linear(3, 2), Tanh(), BatchNorm1d(2)]))
