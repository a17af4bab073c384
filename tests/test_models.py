import pytest
import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.models import ModelConfig, from_torch

from .conftest import CONFIG_CASES, make_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_matches_torch_modules(cell, inputs):
    """Our layers compute exactly what torch's nn.LSTM/GRU/RNN compute with the same weights."""
    torch.manual_seed(0)
    ref = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](5, 12, num_layers=2, batch_first=True)
    head = nn.Linear(12, 4)
    ours = from_torch(ref, head).eval()
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        out, _ = ref(x)
        expected = head(out[:, -1])
        got = ours(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell,hidden,feedback", CONFIG_CASES)
def test_stepwise_equals_layerwise_without_feedback(cell, hidden, feedback, inputs):
    model = make_model(cell, hidden, feedback)
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        stepwise = model.head(model._stepwise(x))
        default = model(x, all_steps=True)
    torch.testing.assert_close(stepwise, default, rtol=0, atol=1e-6)


def test_feedback_changes_the_output(inputs):
    model = make_model("lstm", (12, 9), True)
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        with_fb = model(x)
        model.layers[0].weight_fb.zero_()
        without = model(x)
    assert not torch.allclose(with_fb, without)


def test_masks_zero_the_forward_and_the_gradient(inputs):
    model = make_model("gru", (12,))
    mask = torch.rand_like(model.layers[0].weight_hh) > 0.5
    model.set_masks({"layers.0.weight_hh": mask})
    assert torch.all(model.layers[0].weight_hh[~mask] == 0)
    model.train()
    model(torch.from_numpy(inputs)).sum().backward()
    grad = model.layers[0].weight_hh.grad
    assert torch.all(grad[~mask] == 0) and torch.any(grad[mask] != 0)


def test_from_torch_finds_modules_in_a_container():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 8, batch_first=True, bias=False)
            self.fc = nn.Linear(8, 2)

    net = Net()
    model = from_torch(net)
    assert model.config.cell == "gru" and model.layers[0].bias_ih is None  # bias-free stays bias-free
    x = torch.randn(4, 6, 3)
    with torch.no_grad():
        expected = net.fc(net.rnn(x)[0][:, -1])
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


def test_from_torch_adopts_a_relu_rnn_exactly():
    rnn, head = nn.RNN(3, 8, nonlinearity="relu", batch_first=True), nn.Linear(8, 2)
    model = from_torch(rnn, head)
    assert model.layers[0].activation == "relu"
    x = torch.randn(4, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), head(rnn(x)[0][:, -1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "module, message",
    [
        (nn.LSTM(3, 8, bidirectional=True), "bidirectional"),
        (nn.LSTM(3, 8, proj_size=4), "proj_size"),
    ],
)
def test_from_torch_refuses_what_it_cannot_compile(module, message):
    with pytest.raises(ModelError, match=message):
        from_torch(module, nn.Linear(8, 2))


def test_config_validation():
    with pytest.raises(ModelError, match="feedback needs at least 2 layers"):
        ModelConfig("lstm", 4, (8,), 2, feedback=True)
    with pytest.raises(ModelError, match="unknown cell"):
        ModelConfig("transformer", 4, (8,), 2)


def test_wrong_input_shape_is_a_clear_error():
    model = make_model()
    with pytest.raises(ModelError, match=r"expected input \[N, T, 5\]"):
        model(torch.zeros(2, 3, 4))


class _ConvFront(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 3, 3, padding=2)
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
        return self.fc(self.rnn(x)[0][:, -1])


class _MeanPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0].mean(dim=1))


@pytest.mark.parametrize("wrapper", [_ConvFront, _MeanPool])
def test_from_torch_adopts_the_whole_wrapper(wrapper):
    """Before: the one LSTM/GRU and Linear were adopted and the rest silently dropped (max |err| 0.16); then
    such wrappers were refused. Now their forward is captured (torch.export): the conv / pool is a stage."""
    torch.manual_seed(0)
    module = wrapper().eval()
    model = from_torch(module)  # no example: a [3, 7, 3] sample, the width read from the first layer
    assert {"conv", "pool"} & {s.kind for s in model.config.stages}
    x = torch.randn(5, 11, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=0, atol=1e-5)


def test_from_torch_keeps_a_users_zeroed_weights_as_pruned():
    """Before: an LSTM with 80% zeroed weights compiled as 0% sparse."""
    from edgeprune import frontend

    rnn, head = nn.LSTM(3, 8, batch_first=True), nn.Linear(8, 2)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(torch.rand_like(rnn.weight_hh_l0) > 0.8)
    model = from_torch(rnn, head)
    masks = model.masks()
    assert set(masks) == {"layers.0.weight_hh"}
    assert torch.equal(masks["layers.0.weight_hh"], rnn.weight_hh_l0 != 0)
    assert frontend.lower(model).layers[0].weight.nnz < 4 * 8 * (3 + 8) * 0.5
    assert from_torch(rnn, head, zeros_are_pruned=False).masks() == {}
