"""``from_torch(module, example_input)``: a user's module captured with torch.export, each stage kind mapped,
compared with the module itself (torch) on inputs of other batch and time sizes than the example, and
compiled to every target against the module's own outputs; unsupported modules refused in one line."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import backends
from edgeprune.errors import ModelError
from edgeprune.models import from_torch

FEATURES = 3


class CausalConvLSTM(nn.Module):
    """normalize (buffers) -> causal conv (F.pad) + relu -> 2-layer LSTM -> last step -> Linear."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, -0.2, 0.1]))
        self.register_buffer("std", torch.tensor([2.0, 0.5, 1.5]))
        self.conv = nn.Conv1d(FEATURES, 6, 3, dilation=2)
        self.rnn = nn.LSTM(6, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = torch.relu(self.conv(F.pad(x.transpose(1, 2), (4, 0)))).transpose(1, 2)
        return self.fc(self.rnn(x)[0][:, -1])


class ChoppedConvGRUPerStep(nn.Module):
    """conv padded on both sides with the extra steps cut -> time-major GRU -> per-step Linear written as a
    reshape of [T, N, H] to [T*N, H] and back (output every step)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(FEATURES, 5, 3, padding=2)
        self.rnn = nn.GRU(5, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
        y, _ = self.rnn(x.transpose(0, 1))
        return self.fc(y.reshape(-1, 8)).view(y.shape[0], y.shape[1], 2).transpose(0, 1)


class GRUMeanPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0].mean(dim=1))


class LSTMMaxPoolSoftmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(FEATURES, 8, batch_first=True, bias=False)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return torch.softmax(self.fc(torch.amax(self.rnn(x)[0], dim=1)), dim=-1)


class RNNLayerNormPerStep(nn.Module):
    """scaling by a constant -> tanh RNN -> LayerNorm -> Linear + sigmoid at every step (regression)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(FEATURES, 8, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y, _ = self.rnn(x * 0.5 + 1.0)
        return torch.sigmoid(self.fc(self.norm(y)))


class ReluRNNFinalState(nn.Module):
    """2-layer relu RNN read through h_n[-1]; tanh on the state (an identity dense stage carries it)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(FEATURES, 8, num_layers=2, nonlinearity="relu", batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        _, h = self.rnn(x)
        return self.fc(torch.tanh(h[-1]))


class MatmulHead(nn.Module):
    """A Linear front-end and a head written as ``x @ W.T + b`` with parameters."""

    def __init__(self):
        super().__init__()
        self.front = nn.Linear(FEATURES, 6)
        self.rnn = nn.LSTM(6, 8, batch_first=True)
        self.w = nn.Parameter(torch.randn(3, 8))
        self.b = nn.Parameter(torch.randn(3))

    def forward(self, x):
        y, (h, _) = self.rnn(torch.tanh(self.front(x)))
        return h.squeeze(0) @ self.w.t() + self.b


CASES = {
    "conv_lstm": (CausalConvLSTM, {"normalize", "conv", "lstm", "dense"}, "last"),
    "chopped_conv_gru_every": (ChoppedConvGRUPerStep, {"conv", "gru", "dense"}, "every"),
    "gru_mean_pool": (GRUMeanPool, {"gru", "pool", "dense"}, "last"),
    "lstm_max_pool_softmax": (LSTMMaxPoolSoftmax, {"lstm", "pool", "dense"}, "last"),
    "rnn_layernorm_every": (RNNLayerNormPerStep, {"normalize", "rnn", "layernorm", "dense"}, "every"),
    "relu_rnn_final_state": (ReluRNNFinalState, {"rnn", "dense"}, "last"),
    "matmul_head": (MatmulHead, {"dense", "lstm"}, "last"),
}


def _module(name):
    torch.manual_seed(0)
    return CASES[name][0]().eval()


def _torch(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_stage_kind_is_adopted_exactly(name):
    module = _module(name)
    model = from_torch(module, torch.randn(4, 9, FEATURES))
    _, kinds, output = CASES[name]
    assert {s.kind for s in model.config.stages} == kinds and model.config.output == output
    for n, t in [(1, 1), (2, 5), (6, 17)]:  # other batch and time sizes than the example
        X = np.random.default_rng(n).standard_normal((n, t, FEATURES)).astype(np.float32)
        with torch.no_grad():
            ours = model(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(ours, _torch(module, X), rtol=0, atol=2e-6)


@pytest.mark.parametrize(
    "name", ["conv_lstm", "chopped_conv_gru_every", "lstm_max_pool_softmax", "rnn_layernorm_every"]
)
def test_captured_modules_compile_to_every_target_against_torch(name, tmp_path):
    from ..corpus import compile_module_against_torch

    targets = [t for t in ("ir", "onnx", "c", "tflite") if not backends.get(t).unavailable()]
    assert {"ir", "onnx", "c"} <= set(targets)
    report = compile_module_against_torch(_module(name), tmp_path / "out", targets)
    assert report.passed and {r.artifact.split("/")[0] for r in report.results} == set(targets)
    for r in report.results:
        assert r.max_abs_error <= 1e-5, r.describe()


def test_exact_zeros_become_masks_and_can_be_kept():
    module = _module("gru_mean_pool")
    with torch.no_grad():
        module.rnn.weight_ih_l0.mul_(torch.rand_like(module.rnn.weight_ih_l0) > 0.7)
    x = torch.randn(2, 5, FEATURES)
    masks = from_torch(module, x).masks()
    assert torch.equal(masks["layers.0.weight_ih"], module.rnn.weight_ih_l0 != 0)
    assert from_torch(module, x, zeros_are_pruned=False).masks() == {}


def test_example_input_as_keyword_and_old_form_still_work():
    module = _module("gru_mean_pool")
    assert from_torch(module, example_input=torch.randn(2, 4, FEATURES)).config.text() == "gru:8,pool:mean,dense:3"
    rnn, head = nn.GRU(FEATURES, 8, batch_first=True), nn.Linear(8, 2)
    assert from_torch(rnn, head).config.text() == "gru:8,dense:2"


class _Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.act = nn.GELU()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.act(self.rnn(x)[0][:, -1]))


class _Bidirectional(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(FEATURES, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, FEATURES)
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x + self.fc1(x))[0][:, -1])


class _MiddleStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, 2])


class _CellState(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[1][1][0])


class _CenteredConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(FEATURES, 4, 3, padding=1)
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(self.conv(x.transpose(1, 2)).transpose(1, 2))[0][:, -1])


@pytest.mark.parametrize(
    "module,message",
    [
        (_Gelu, r"^_Gelu: aten.gelu in module 'act' \(GELU\): has no mapping to an edgeprune stage; not adopted$"),
        (_Bidirectional, r"aten.lstm in module 'rnn' \(LSTM\): bidirectional \(only forward"),
        (_Residual, r"aten.add in _Residual.forward: combines two data tensors"),
        (_MiddleStep, r"aten.select in _MiddleStep.forward: selects time step 2 of 6; only the last step"),
        (_CellState, r"reads the LSTM cell state c_n"),
        (_CenteredConv, r"aten.conv1d in module 'conv' \(Conv1d\): left pad 1 and right pad 1"),
    ],
)
def test_unsupported_modules_are_refused_in_one_line(module, message):
    torch.manual_seed(0)
    with pytest.raises(ModelError, match=message) as e:
        from_torch(module(), torch.randn(3, 6, FEATURES))
    assert "\n" not in str(e.value)


class _LiteralLastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, 5])  # the last step only when T is 6


class _FirstSixSteps(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, :6].mean(dim=1))  # a pool over all steps only when T is 6


def test_a_forward_tied_to_the_examples_length_is_refused():
    """torch.export fixes the capture's sizes: a literal step index is refused by name, and a forward that
    computes something else at another length is caught by the comparison at T + 3."""
    torch.manual_seed(0)
    x = torch.randn(3, 6, FEATURES)
    with pytest.raises(
        ModelError, match=r"selects time step 5 of 6; only the last step can be selected \(as index -1\)"
    ):
        from_torch(_LiteralLastStep(), x)
    with pytest.raises(ModelError, match=r"_FirstSixSteps: the adopted chain .* differs .* on \[3, 9, 3\] inputs"):
        from_torch(_FirstSixSteps(), x)


def test_a_module_that_computes_something_else_on_other_inputs_is_refused():
    """The capture is checked by running both on the example: a forward that branches on shapes (torch.export
    specialises it on the capture sample) is refused when the example takes the other branch."""

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(FEATURES, 8, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            y = self.fc(self.rnn(x)[0][:, -1])
            return y if x.shape[0] > 1 else y * 2  # a batch of 1 is captured as 2 (the sample is repeated)

    with pytest.raises(ModelError, match=r"DataDependent: the adopted chain .* differs from its forward"):
        from_torch(DataDependent(), torch.randn(1, 5, FEATURES))
