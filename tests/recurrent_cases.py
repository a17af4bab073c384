"""Recurrent ONNX cases for the importer and every target: ONNX's own conformance cases for LSTM, GRU and
RNN (collected from the installed onnx package, offline; weight inputs folded into initializers, the last
output kept) and our own cases, built with onnx.helper, for the attributes the conformance set does not
cover (clip, input_forget, every activation with its alpha/beta, linear_before_reset with clip).

Used by tests/frontend/test_onnx_conformance.py, tests/frontend/test_onnx_cell_variants.py and
benchmarks/ir_v2/recurrent_variants.py. Each case gives an .onnx file, X as [batch, time, features] and
the expected output: the conformance case's own, or onnxruntime running our file (onnx.reference
ignores clip, input_forget and the activations of LSTM and GRU: its ops take them as unused arguments).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

# The conformance cases no forward streaming model can run: refused in one line naming the direction.
REFUSED = {
    "test_gru_reverse": "direction=reverse",
    "test_gru_bidirectional": "direction=bidirectional",
    "test_lstm_reverse": "direction=reverse",
    "test_lstm_bidirectional": "direction=bidirectional",
    "test_simple_rnn_reverse": "direction=reverse",
    "test_simple_rnn_bidirectional": "direction=bidirectional",
}
FORWARD = [
    "test_gru_batchwise",
    "test_gru_defaults",
    "test_gru_seq_length",
    "test_gru_with_initial_bias",
    "test_lstm_batchwise",
    "test_lstm_defaults",
    "test_lstm_with_initial_bias",
    "test_lstm_with_peepholes",
    "test_rnn_seq_length",
    "test_simple_rnn_batchwise",
    "test_simple_rnn_defaults",
    "test_simple_rnn_with_initial_bias",
]

ACTIVATIONS = "Relu Tanh Sigmoid Affine LeakyRelu ThresholdedRelu ScaledTanh HardSigmoid Elu Softsign Softplus".split()
# Our own cases: op, hidden size, attributes, whether B / P are given. Alphas and betas are chosen so
# that both branches of the piecewise activations are taken on the inputs below.
OWN: dict[str, tuple[str, int, dict, bool, bool]] = {
    "lstm_clip": ("LSTM", 4, {"clip": 0.6}, True, False),
    "lstm_input_forget": ("LSTM", 4, {"input_forget": 1}, True, False),
    "lstm_peepholes_clip_input_forget": ("LSTM", 4, {"clip": 0.8, "input_forget": 1}, True, True),
    "lstm_acts_hardsigmoid_leakyrelu_affine": (
        "LSTM",
        4,
        {
            "activations": ["HardSigmoid", "LeakyRelu", "Affine"],
            "activation_alpha": [0.3, 0.05, 0.8],
            "activation_beta": [0.45, 0.1],
        },
        True,
        False,
    ),
    "lstm_acts_sigmoid_elu_scaledtanh": (
        "LSTM",
        4,
        {"activations": ["Sigmoid", "Elu", "ScaledTanh"], "activation_alpha": [0.9, 1.2], "activation_beta": [0.6]},
        True,
        True,
    ),
    "lstm_acts_softsign_thresholdedrelu_softplus": (
        "LSTM",
        4,
        {"activations": ["Softsign", "ThresholdedRelu", "Softplus"], "activation_alpha": [0.2]},
        True,
        False,
    ),
    "lstm_acts_tanh_relu_softsign": ("LSTM", 4, {"activations": ["Tanh", "Relu", "Softsign"]}, False, False),
    "gru_lbr0_clip": ("GRU", 5, {"clip": 0.7}, True, False),
    "gru_lbr1_clip": ("GRU", 5, {"clip": 0.7, "linear_before_reset": 1}, True, False),
    # LeakyRelu as the gates' activation lets z exceed 1 and the state grow (to ~34 here): ir and onnx only
    "gru_acts_leakyrelu_elu_default_alphas": ("GRU", 5, {"activations": ["LeakyRelu", "Elu"]}, True, False),
    "gru_acts_hardsigmoid_elu_default_alphas": ("GRU", 5, {"activations": ["HardSigmoid", "Elu"]}, True, False),
    "gru_lbr1_acts_hardsigmoid_softsign": (
        "GRU",
        5,
        {"activations": ["HardSigmoid", "Softsign"], "linear_before_reset": 1},
        True,
        False,
    ),
    "rnn_clip": ("RNN", 4, {"clip": 0.5}, True, False),
    **{
        f"rnn_{a.lower()}": (
            "RNN",
            4,
            {
                "activations": [a],
                **({"activation_alpha": [0.7], "activation_beta": [0.2]} if a == "Affine" else {}),
                **({"activation_alpha": [1.3], "activation_beta": [0.8]} if a == "ScaledTanh" else {}),
                **({"activation_alpha": [0.3]} if a == "ThresholdedRelu" else {}),
            },
            True,
            False,
        )
        for a in ACTIVATIONS
    },
}
# Inputs and outputs beyond X -> Y_h: nonzero constant initial states (rows equal across the batch: one state
# every stream starts from).
OWN_IO: dict[str, dict] = {
    "lstm_initial_h_c": {"initial": ("h", "c")},
    "lstm_peepholes_initial_h": {"initial": ("h",)},
    "gru_lbr0_initial_h": {"initial": ("h",)},
    "gru_lbr1_initial_h": {"initial": ("h",)},
    "rnn_initial_h": {"initial": ("h",)},
    # Y_c, the LSTM's last cell state, as the model output
    "lstm_y_c": {"output": "Y_c"},
    "lstm_peepholes_clip_y_c_initial_c": {"initial": ("c",), "output": "Y_c"},
    # sequence_lens as a graph input (int32 [batch]): the data's per-sample lengths; Y_h and Y (every step)
    "lstm_sequence_lens_input": {"lengths": True},
    "gru_lbr0_sequence_lens_input_y": {"lengths": True, "output": "Y"},
    "rnn_sequence_lens_input_initial_h": {"lengths": True, "initial": ("h",)},
}
OWN.update(
    {
        "lstm_initial_h_c": ("LSTM", 4, {}, True, False),
        "lstm_peepholes_initial_h": ("LSTM", 4, {}, True, True),
        "gru_lbr0_initial_h": ("GRU", 5, {}, True, False),
        "gru_lbr1_initial_h": ("GRU", 5, {"linear_before_reset": 1}, True, False),
        "rnn_initial_h": ("RNN", 4, {}, False, False),
        "lstm_y_c": ("LSTM", 4, {}, True, False),
        "lstm_peepholes_clip_y_c_initial_c": ("LSTM", 4, {"clip": 0.9}, True, True),
        "lstm_sequence_lens_input": ("LSTM", 4, {}, True, True),
        "gru_lbr0_sequence_lens_input_y": ("GRU", 5, {}, True, False),
        "rnn_sequence_lens_input_initial_h": ("RNN", 4, {}, True, False),
    }
)
# A representative subset compiled to C and TFLite too (C builds are the slow part): every activation
# appears in one of the LSTM cases, plus peepholes + clip + input_forget, GRU lbr=0 with clip and with
# default alphas, an RNN clip. Every case runs through ir and onnx.
NATIVE_SUBSET = [
    "lstm_peepholes_clip_input_forget",
    "lstm_acts_hardsigmoid_leakyrelu_affine",
    "lstm_acts_sigmoid_elu_scaledtanh",
    "lstm_acts_softsign_thresholdedrelu_softplus",
    "lstm_acts_tanh_relu_softsign",
    "gru_lbr0_clip",
    "gru_acts_hardsigmoid_elu_default_alphas",
    "rnn_clip",
    "lstm_initial_h_c",
    "gru_lbr0_initial_h",
    "gru_lbr1_initial_h",
    "rnn_initial_h",
    "lstm_y_c",
    "lstm_peepholes_clip_y_c_initial_c",
    "lstm_sequence_lens_input",
    "gru_lbr0_sequence_lens_input_y",
]


def _all_conformance() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unrelated cases' numpy overflow warnings
        return collect_testcases()


def conformance_cases() -> dict:
    return {
        c.name: c
        for c in _all_conformance()
        if c.model.graph.node and c.model.graph.node[0].op_type in ("LSTM", "GRU", "RNN")
    }


def fold_model(case, path: Path) -> None:
    """The case's model with every input but the first turned into an initializer, only its last output kept."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    inputs = case.data_sets[0][0]
    for vi, value in list(zip(graph.input, inputs, strict=False))[1:]:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
    del graph.input[1:]
    del graph.output[:-1]
    onnx.save(model, str(path))


def fold(case, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The folded file; the case's X as [batch, time, features] and its expected last output as [batch, H]."""
    from onnx import helper

    fold_model(case, path)
    inputs, expected = case.data_sets[0]
    node = case.model.graph.node[0]
    layout = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "layout"), 0)
    X = np.asarray(inputs[0], np.float32)
    X = X if layout == 1 else X.transpose(1, 0, 2)
    want = np.asarray(expected[-1], np.float32)
    return np.ascontiguousarray(X), want.reshape(X.shape[0], -1)


def build_own(name: str, path: Path, seed: int = 0, batch: int = 3, steps: int = 6, features: int = 3):
    """Write our case ``name`` (Y_h, or Y_c per OWN_IO, of one forward op, time-major input [T, N, F]) and return
    (X [N, T, F], onnxruntime's output [N, H])."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    op, H, attrs, with_b, with_p = OWN[name]
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(seed)
    tensors = {
        "W": rng.normal(0, 0.6, (1, gates * H, features)),
        "R": rng.normal(0, 0.5, (1, gates * H, H)),
    }
    if with_b:
        tensors["B"] = rng.normal(0, 0.4, (1, 2 * gates * H))
    if with_p:
        tensors["P"] = rng.normal(0, 0.5, (1, 3 * H))
    io = OWN_IO.get(name, {})
    for k in io.get("initial", ()):  # one state for every stream: the same row for each sample
        tensors[f"initial_{k}"] = np.tile(rng.normal(0, 0.8, (1, 1, H)), (1, batch, 1))
    opt = ["initial_h" if "initial_h" in tensors else "", "initial_c" if "initial_c" in tensors else ""]
    opt += ["P"] if with_p else []
    opt = ["lens" if io.get("lengths") else "", *opt]
    while opt and not opt[-1]:
        opt.pop()
    inputs = ["X", "W", "R", "B" if with_b else ""] + opt
    out = output_of(name)
    outputs = {"Y": ["Y"], "Y_h": ["", "Y_h"], "Y_c": ["", "", "Y_c"]}[out]
    node = helper.make_node(op, inputs, outputs, hidden_size=H, **attrs)
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [steps, batch, features])]
    if io.get("lengths"):
        graph_inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [batch]))
    graph = helper.make_graph(
        [node],
        name,
        graph_inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [steps, 1, batch, H] if out == "Y" else [1, batch, H])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    X = rng.normal(0, 1.5, (steps, batch, features)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"X": X, **({"lens": np.full(batch, steps, np.int32)} if io.get("lengths") else {})}
    (y,) = sess.run([out], feeds)  # the full length for every sequence (run_with_lengths: per sample)
    return np.ascontiguousarray(X.transpose(1, 0, 2)), arrange(out, y)


def rewrite_batch_first(path: Path) -> None:
    """Our case at ``path`` (build_own's default sizes, output Y_h) made ``layout=1``: input [N, T, F], Y_h
    [N, 1, H] — a file only onnx.reference can run."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    hidden = next(a.i for a in model.graph.node[0].attribute if a.name == "hidden_size")
    model.graph.node[0].attribute.append(helper.make_attribute("layout", 1))
    model.graph.input[0].CopyFrom(helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 6, 3]))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [3, 1, hidden]))
    onnx.save(model, str(path))


def arrange(out: str, y: np.ndarray) -> np.ndarray:
    """An op output as edgeprune's: Y [T, 1, N, H] -> [N, T, H]; Y_h / Y_c [1, N, H] -> [N, H]."""
    return np.ascontiguousarray(y[:, 0].transpose(1, 0, 2)) if out == "Y" else y[0]


def run_with_lengths(path: Path, name: str, X: np.ndarray, lengths: np.ndarray, runtime: str = "onnxruntime"):
    """Our case's file run by onnxruntime or onnx.reference on X [N, T, F] with sequence_lens = ``lengths``."""
    feeds = {"X": np.ascontiguousarray(X.transpose(1, 0, 2)), "lens": np.asarray(lengths, np.int32)}
    if runtime == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (y,) = sess.run([output_of(name)], feeds)
    else:
        from onnx.reference import ReferenceEvaluator

        (y,) = ReferenceEvaluator(str(path)).run([output_of(name)], feeds)
    return arrange(output_of(name), y)


def output_of(name: str) -> str:
    """The op output our case ``name`` keeps as the model output: Y_h, or Y_c."""
    return OWN_IO.get(name, {}).get("output", "Y_h")


def onnx_reference_honours(name: str) -> bool:
    """Whether onnx.reference computes our case's attributes (it ignores clip, input_forget and the LSTM/GRU
    activations; its RNN knows Tanh and Affine)."""
    op, _, attrs, _, _ = OWN[name]
    rest = set(attrs) - {"linear_before_reset"}
    if op == "RNN" and "clip" not in attrs:
        return set(attrs.get("activations", ["Tanh"])) <= {"Tanh", "Affine"}
    return not rest
