"""The recurrent ops (LSTM, GRU, RNN) and the Scan of a feedback model: their attributes, their
place in the chain, and their weights mapped into the IR's fused gate matrix (orders from ir.cells)."""

from __future__ import annotations

import numpy as np

from ... import ir
from ...errors import IRError
from .values import (
    Const,
    Content,
    Data,
    ImportedLayer,
    Refused,
    Unknown,
    Zeros,
    initializer_const,
    is_zero,
)

RECURRENT = {op: spec.name for op, spec in ir.cells.ONNX_OPS.items()}  # ONNX op type -> cell
KNOWN_ATTRIBUTES = {
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
    "input_forget",
    "linear_before_reset",
}


class RecurrentOps:
    """Handlers of the recurrent ops and Scan, mixed into the interpreter."""

    def _recurrent(self, node, ins) -> None:
        from onnx import helper

        cell = RECURRENT[node.op_type]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        if "activations" in attrs:
            attrs["activations"] = [a.decode() if isinstance(a, bytes) else a for a in attrs["activations"]]
        problems = [f"attribute {k} is not part of {node.op_type}" for k in attrs if k not in KNOWN_ATTRIBUTES]
        if attrs.get("direction", "forward") != "forward":
            problems.append(f"direction={attrs['direction']} (only forward: streaming runs one direction)")
        layout = attrs.get("layout", 0)
        if layout not in (0, 1):
            problems.append(f"layout={layout}")
        if problems:
            self.fail(node, "unsupported " + "; ".join(problems))
        X, W, R = ins[0], ins[1], ins[2]
        B = ins[3] if len(ins) > 3 else None
        seq_lens = ins[4] if len(ins) > 4 else None
        init_h = ins[5] if len(ins) > 5 else None
        init_c = ins[6] if len(ins) > 6 and cell == "lstm" else None
        peephole = ins[7] if len(ins) > 7 and cell == "lstm" else None
        activation, variant = self._variant(node, cell, attrs, peephole)
        if seq_lens is not None:
            self._check_sequence_lens(node, seq_lens, X, layout)
        for name, v in (("W", W), ("R", R), ("B", B)):
            if v is not None and not isinstance(v, Const):
                self.fail(node, f"{name} must be a constant (an initializer)")
        if self.scan is not None:
            return self._recurrent_step(node, cell, attrs, layout, X, W, R, B, init_h, init_c, activation, variant)
        for name, v in (("initial_h", init_h), ("initial_c", init_c)):
            if v is not None and not is_zero(v):
                self.fail(node, f"{name} must be zero (a state given as input or a nonzero constant is not supported)")
            if isinstance(v, Const) and v.value.ndim == 3:  # a constant state [dirs, batch, H] fixes the batch size
                batch = int(v.value.shape[1 if layout == 0 else 0])
                if self.fixed_batch not in (None, batch):
                    self.fail(node, f"{name} has batch {batch}, another constant state has {self.fixed_batch}")
                self.fixed_batch = batch
        if not isinstance(X, Data) or not isinstance(X.content, Content) or X.content.source not in ("input", "seq"):
            self.fail(node, "its input X is not a sequence computed from the model input step by step")
        if len(X.labels) != 3:
            self.fail(node, f"input X has axes {X.labels}, expected 3 (time, batch, features)")
        time_pos, batch_pos = (0, 1) if layout == 0 else (1, 0)
        for pos, meaning in ((time_pos, "T"), (batch_pos, "N"), (2, "C")):
            self._bind(node, X.labels[pos], meaning)
        X = self._norm(X)
        if X.labels != (("T", "N", "C") if layout == 0 else ("N", "T", "C")):
            self.fail(
                node,
                f"input X has axes {X.labels}, expected "
                f"{'[time, batch, features]' if layout == 0 else '[batch, time, features]'}",
            )
        stages = self._materialize(node, X.content)
        layer = self._layer_weights(node, cell, W, R, B, attrs.get("hidden_size"))
        layer.activation, layer.variant = activation, variant
        given = self._size(X.content)
        if given is not None and layer.input_size != given:
            self.fail(node, f"reads {layer.input_size} features but its input X has {given}")
        stages = (*stages, layer.stage())
        self.recurrent_ops += 1
        seq = ("T", "S", "N", "C") if layout == 0 else ("N", "T", "S", "C")
        last = ("S", "N", "C") if layout == 0 else ("N", "S", "C")
        outs = [Data(seq, Content("seq", stages=stages)), Data(last, Content("last", stages=stages))]
        if cell == "lstm":
            outs.append(Refused("reads the LSTM cell state Y_c; only the hidden state can feed the next op"))
        self._set(node, outs)

    def _recurrent_step(self, node, cell, attrs, layout, X, W, R, B, init_h, init_c, activation, variant) -> None:
        """A recurrent op inside a Scan body: one time step, states carried by the Scan's loop variables."""
        k = len(self.layers)
        time_pos = 0 if layout == 0 else 1
        if (
            not isinstance(X, Data)
            or not isinstance(X.content, Content)
            or len(X.labels) != 3
            or X.labels[time_pos] != "S"
            or "C" != X.labels[2]
        ):
            self.fail(node, "inside a Scan, X must be one time step [1, batch, features]")
        parts = X.content.parts if X.content.source == "cols" else (X.content,)
        main = [p for p in parts if p.source in ("input", "new")]
        feedback = [p for p in parts if p.source == "prev"]
        if len(main) != 1 or len(feedback) > 1 or len(main) + len(feedback) != len(parts):
            self.fail(node, "X must be the layer's input, optionally with one state of the previous step (feedback)")
        if main[0].source != ("input" if k == 0 else "new") or (k and main[0].layer != k - 1):
            self.fail(node, "recurrent ops must form one chain: input -> layer 0 -> layer 1 -> ... -> head")
        state_labels = ("S", "N", "C") if layout == 0 else ("N", "S", "C")
        for name, v, kind in (("initial_h", init_h, "h"), ("initial_c", init_c, "c")):
            if name == "initial_c" and cell != "lstm":
                continue
            if (
                not isinstance(v, Data)
                or not isinstance(v.content, Content)
                or v.content.source != "prev"
                or v.labels != state_labels
            ):
                self.fail(node, f"inside a Scan, {name} must be a loop variable (else the state restarts every step)")
            if v.content.var in self.scan["bind"]:
                self.fail(node, f"Scan loop variable {v.content.var} is the state of two layers")
            self.scan["bind"][v.content.var] = (k, kind)
        fb_size = self.scan["sizes"][feedback[0].var] if feedback else 0
        width = W.value.shape[-1] if W.value.ndim == 3 else 0
        if fb_size is None or fb_size >= width:
            self.fail(node, "cannot tell the feedback columns of W apart (give the Scan's state inputs static sizes)")
        columns, start = {}, 0
        for p in parts:
            size = fb_size if p.source == "prev" else width - fb_size
            columns[p.source == "prev"] = np.arange(start, start + size)
            start += size
        layer = self._layer_weights(node, cell, W, R, B, attrs.get("hidden_size"), columns[False], columns.get(True))
        layer.activation, layer.variant = activation, variant
        if k and layer.input_size != self.layers[-1].hidden_size:
            self.fail(
                node, f"reads {layer.input_size} features but the previous layer gives {self.layers[-1].hidden_size}"
            )
        self.layers.append(layer)
        self.scan["feedback"][k] = feedback[0].var if feedback else None
        seq = ("S", "S", "N", "C") if layout == 0 else ("N", "S", "S", "C")
        outs = [Data(seq, Content("new", k)), Data(state_labels, Content("new", k))]
        if cell == "lstm":
            outs.append(Data(state_labels, Content("cell", k)))
        self._set(node, outs)

    def _variant(self, node, cell, attrs, peephole) -> tuple[str, dict]:
        """The op's attributes beyond torch's cell -> (the RNN activation field, ir.Recurrent's variant fields)."""
        try:
            acts = ir.cells.parse_activations(
                cell, attrs.get("activations"), attrs.get("activation_alpha"), attrs.get("activation_beta")
            )
        except IRError as e:
            self.fail(node, f"unsupported {e}")
        activation, variant = "tanh", {}
        if cell == "rnn" and acts == (ir.Act("relu"),):
            activation = "relu"  # torch's nn.RNN(nonlinearity='relu'): the IR's own field
        elif acts != ir.cells.default_activations(cell):
            variant["activations"] = acts
        if "clip" in attrs:
            clip = float(attrs["clip"])
            if not (np.isfinite(clip) and clip > 0):
                self.fail(node, f"clip={attrs['clip']} must be a positive number")
            variant["clip"] = clip
        if attrs.get("input_forget", 0):
            variant["input_forget"] = True
        if cell == "gru" and not attrs.get("linear_before_reset", 0):
            variant["linear_before_reset"] = False  # ONNX's default, Keras reset_after=False
        if peephole is not None:
            if not isinstance(peephole, Const):
                self.fail(node, "peephole weights P must be a constant (an initializer)")
            if peephole.value.any():
                p = peephole.value
                if p.ndim != 2 or p.shape[0] != 1 or p.dtype != np.float32:
                    self.fail(node, f"P has shape {list(p.shape)} ({p.dtype}), expected float32 [1, 3*hidden_size]")
                variant["peephole"] = p.reshape(-1).astype(np.float32)
        return activation, variant

    def _check_sequence_lens(self, node, seq_lens, X, layout) -> None:
        """A constant sequence_lens equal to the input's static length for every sample runs every sequence in
        full: nothing to do. Per-sample lengths belong to the data, not to a streaming model (verify takes them)."""
        T = self._static_time(X, layout)
        if not isinstance(seq_lens, Const):
            self.fail(
                node,
                "sequence_lens as a model input is not supported (a streaming model runs each sequence to its "
                "end; give per-sample lengths to verify/evaluate instead)",
            )
        lens = np.asarray(seq_lens.value).reshape(-1)
        if T is None or lens.size == 0 or not np.all(lens == T):
            self.fail(
                node,
                f"sequence_lens={lens.tolist()} other than the full length of a static time axis is not supported "
                "(per-sample lengths belong to the data: give them to verify/evaluate instead)",
            )

    def _static_time(self, X, layout) -> int | None:
        if not isinstance(X, Data) or len(X.labels) != 3:
            return None
        label = X.labels[0 if layout == 0 else 1]
        return self.dims.get(label) if label.startswith("x") else self._static("T")

    def _op_Scan(self, node, ins):
        from onnx import helper

        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        body, n_scan = a["body"], int(a["num_scan_inputs"])
        n_state = len(ins) - n_scan
        if n_scan != 1 or self.scan is not None or self.recurrent_ops:
            self.fail(node, "only one Scan over the model input, holding every recurrent layer, is supported")
        if any(a.get("scan_input_directions", [0])):
            self.fail(node, "reverse scanning is not supported")
        x = ins[n_state]
        if (
            not isinstance(x, Data)
            or x.content.source != "input"
            or x.content.diag is not None
            or any(not isinstance(v, (Zeros, Const)) or not is_zero(v) for v in ins[:n_state])
        ):
            self.fail(node, "the Scan must run over the model input from zero states")
        axis = int(a.get("scan_input_axes", [0])[0]) % 3
        rest = [l for i, l in enumerate(x.labels) if i != axis]
        for label, meaning in ((x.labels[axis], "T"), (rest[0], "N"), (rest[1], "C")):
            self._bind(node, label, meaning)
        outer = self.values
        self.values = dict(outer)
        for t in body.initializer:
            self.values[t.name] = initializer_const(t, self.file)
        sizes = {}
        for j, vi in enumerate(body.input[:n_state]):
            dims = vi.type.tensor_type.shape.dim
            labels = ("N", "C") if len(dims) == 2 else ("S", "N", "C")
            sizes[j] = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
            self.values[vi.name] = Data(labels, Content("prev", var=j))
        self.values[body.input[n_state].name] = Data(("N", "C"), Content("input"))
        self.scan = {"bind": {}, "feedback": {}, "sizes": sizes}
        state_outputs = [o.name for o in body.output[:n_state]]
        needed = self._needed_nodes(body.node, state_outputs)
        for k, inner in enumerate(body.node):
            if k in needed:
                self._node(inner)
        results = [self.values.get(name) for name in state_outputs]
        scan, self.scan, self.values = self.scan, None, outer
        if self.unsupported:
            return [Unknown()] * len(node.output)
        bind = scan["bind"]
        for j, v in enumerate(results):
            kind = "h" if isinstance(v, Data) and v.content.source == "new" else "c"
            if (
                not isinstance(v, Data)
                or v.content.source not in ("new", "cell")
                or v.labels[-1] != "C"
                or bind.get(j) != (v.content.layer, kind)
            ):
                self.fail(node, f"Scan state {j} does not carry one layer's state from step to step")
        for k, j in scan["feedback"].items():
            if j is None:
                continue
            if bind.get(j) != (k + 1, "h"):
                self.fail(node, f"the feedback into layer {k} must be layer {k + 1}'s state from the previous step")
            self.layers[k].feedback_size = self.layers[k + 1].hidden_size  # its W columns were split already
        # With feedback every layer depends on the one above it: only the top layer's state is a chain's output.
        stages = tuple(layer.stage() for layer in self.layers)
        self.recurrent_ops += len(self.layers)
        finals = []
        for j in range(n_state):
            k, kind = bind[j]
            labels = results[j].labels
            finals.append(
                Data(labels, Content("last", stages=stages))
                if kind == "h" and k == len(self.layers) - 1
                else Refused("reads the LSTM cell state; only the hidden state can feed the head")
                if kind != "h"
                else Refused(f"reads recurrent layer {k}, not the top one (the head reads the top layer)")
            )
        return finals + [Refused("per-step Scan outputs are not supported")] * (len(node.output) - n_state)

    def _layer_weights(
        self,
        node,
        cell,
        W: Const,
        R: Const,
        B: Const | None,
        hidden,
        input_cols: np.ndarray | None = None,
        feedback_cols: np.ndarray | None = None,
    ) -> ImportedLayer:
        spec = ir.cell_spec(cell)
        G = len(spec.onnx_gates)
        w, r = W.value, R.value
        if w.ndim != 3 or r.ndim != 3 or w.shape[0] != 1 or r.shape[0] != 1:
            self.fail(node, f"W {list(w.shape)} and R {list(r.shape)} must be [1, gates*H, ...] (one direction)")
        H = r.shape[2]
        if hidden is not None and hidden != H:
            self.fail(node, f"hidden_size={hidden} but R has {H} columns")
        if w.shape[1] != G * H or r.shape[1] != G * H:
            self.fail(node, f"W {list(w.shape)} and R {list(r.shape)} must have {G}*hidden_size = {G * H} rows")
        if w.dtype != np.float32 or r.dtype != np.float32:
            self.fail(node, f"weights are {w.dtype}; only float32 is supported")
        # An omitted B (torch's bias=False, ONNX's optional input) is no bias, not a zero [2*G*H] vector.
        b = np.zeros((1, 2 * G * H), np.float32) if B is None else B.value
        if b.shape != (1, 2 * G * H):
            self.fail(node, f"B has shape {list(b.shape)}, expected [1, {2 * G * H}]")
        w, r, b = w[0], r[0], b.reshape(-1).astype(np.float32)
        wk = W.pattern[0] if W.pattern is not None else w != 0
        rk = R.pattern[0] if R.pattern is not None else r != 0
        x_cols = np.arange(w.shape[1]) if input_cols is None else input_cols
        f_cols = np.arange(0) if feedback_cols is None else feedback_cols
        wx, wxk, wf, wfk = w[:, x_cols], wk[:, x_cols], w[:, f_cols], wk[:, f_cols]
        wb, rb = b[: G * H], b[G * H :]
        I, F = len(x_cols), len(f_cols)

        def block(m, q):
            return m[q * H : (q + 1) * H]

        def row(q, x=True, h=True):
            """IR rows over [x | h | feedback] from ONNX gate block q (input side: x and feedback)."""
            vals = [
                block(wx, q) if x else np.zeros((H, I), np.float32),
                block(r, q) if h else np.zeros((H, H), np.float32),
                block(wf, q) if x else np.zeros((H, F), np.float32),
            ]
            keep = [
                block(wxk, q) if x else np.zeros((H, I), bool),
                block(rk, q) if h else np.zeros((H, H), bool),
                block(wfk, q) if x else np.zeros((H, F), bool),
            ]
            return np.hstack(vals), np.hstack(keep)

        # Each IR row block is ONNX gate block q read from both sides (bias Wb + Rb), or from one side
        # only (GRU n_x: input, bias Wb; n_h: state, bias Rb); the orders come from ir.cells.
        rows = []
        for ir_row in spec.ir_rows:
            gate, side = spec.ir_row_source(ir_row)
            q = spec.onnx_gates.index(gate)
            if side is None:
                rows.append((*row(q), block(wb, q) + block(rb, q)))
            elif side == "input":
                rows.append((*row(q, h=False), block(wb, q)))
            else:
                rows.append((*row(q, x=False), block(rb, q)))
        values = np.vstack([v for v, _, _ in rows])
        keep = np.vstack([kp for _, kp, _ in rows])
        bias = None if B is None else np.concatenate([bb for _, _, bb in rows]).astype(np.float32)
        return ImportedLayer(cell, I, H, ir.CSR.from_dense(values, keep), bias)
