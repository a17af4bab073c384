"""An Elman recurrence written out step by step over a fixed number of time steps (what torch's dynamo
exporter writes for ``nn.RNN``): ``h_t = act(x'_t + W_hh h_{t-1} + b_hh)`` with ``x' = W_ih x + b_ih``
computed for the whole sequence and sliced per step. Read as one ``recurrent`` rnn stage, after checking
that every step uses the same ``W_hh``, ``b_hh`` and activation and that ``h_{-1}`` is zero.

Contents: ``step`` (step ``var`` of the sequence ``parts[0]``), ``pre`` (x'_t + W_hh h_{t-1} + b_hh before
the activation) and ``unrolled`` (h_t); the recurrence's record is kept per input sequence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ... import ir
from .values import Const, Content, Data, Zeros

RECURRENCE = ("step", "pre", "unrolled")


class UnrolledOps:
    """The unrolled-recurrence reading, mixed into the interpreter."""

    def _record(self, xp: Content) -> dict:
        for rec in self.unrolled:
            if rec["x"] is xp:
                return rec
        rec = {"x": xp, "W": None, "b": None, "first": None, "act": None, "steps": 0}
        self.unrolled.append(rec)
        return rec

    def _step(self, node, x: Data, axis: int, t: int) -> Content:
        """Step ``t`` of the sequence ``x`` (time axis ``axis``)."""
        return replace(x.content, source="step", var=t, parts=(x.content,))

    def _is_step_of(self, c: Content) -> bool:
        return c.source == "step" and c.affine is c.parts[0].affine and c.diag is c.parts[0].diag

    def _unrolled_add(self, node, ins):
        """``x'_t`` + (``W_hh h_{t-1} + b_hh``, or its constant value b_hh at t = 0)."""
        datas = [v for v in ins if isinstance(v, Data)]
        step = next((v for v in datas if isinstance(v.content, Content) and self._is_step_of(v.content)), None)
        other = next((v for v in ins if v is not step), None)
        if step is None or other is None:
            self.fail(node, "adds values of an unrolled recurrence that are not x'_t + W_hh h_(t-1) + b_hh")
        t, xp = step.content.var, step.content.parts[0]
        rec = self._record(xp)
        labels = step.labels
        if isinstance(other, (Const, Zeros)):  # first step: h_(-1) = 0, so W_hh h + b_hh folded to b_hh
            value = np.zeros(1) if isinstance(other, Zeros) else np.asarray(other.value, np.float64)
            if t != 0:
                self.fail(node, f"step {t} of an unrolled recurrence adds a constant instead of W_hh h_(t-1)")
            rows = value.reshape(-1, value.shape[-1]) if value.ndim else value.reshape(1, 1)
            if not np.all(rows == rows[:1]):
                self.fail(node, "the first step's constant differs between batch entries")
            rec["first"] = rows[0]
            if value.ndim > len(labels):
                labels = ("S",) * (value.ndim - len(labels)) + labels
        else:
            h = other.content if isinstance(other, Data) else None
            if (
                not isinstance(h, Content)
                or h.source != "unrolled"
                or h.affine is None
                or h.parts[0] is not xp
                or h.var != t - 1
            ):
                self.fail(node, f"step {t} of an unrolled recurrence does not add W_hh h_(t-1) + b_hh of step {t - 1}")
            W, b, _ = h.affine
            if rec["W"] is None:
                rec["W"], rec["b"] = W, b
            elif not (np.array_equal(W, rec["W"]) and np.array_equal(b, rec["b"])):
                self.fail(node, f"step {t} of an unrolled recurrence uses other recurrent weights than step 1")
            labels = other.labels if len(other.labels) > len(labels) else labels
        return Data(labels, Content("pre", var=t, parts=(xp,)))

    def _unrolled_activate(self, node, x: Data, act: str) -> Data:
        content = x.content
        if content.affine is not None or content.diag is not None or act not in ("tanh", "relu"):
            self.fail(node, f"{node.op_type} inside an unrolled recurrence (only tanh or relu of x'_t + W_hh h + b_hh)")
        rec = self._record(content.parts[0])
        if rec["act"] not in (None, act):
            self.fail(node, f"step {content.var} of an unrolled recurrence uses {act}, step 0 {rec['act']}")
        rec["act"], rec["steps"] = act, max(rec["steps"], content.var + 1)
        return Data(x.labels, Content("unrolled", var=content.var, parts=content.parts))

    def _settle(self, node, content: Content) -> Content:
        """A step value read by anything else than the recurrence: only the last step, as the stage's output."""
        if not isinstance(content, Content) or content.source not in RECURRENCE:
            return content
        steps = self._static("T")
        if content.source == "pre" or steps is None or content.var != steps - 1:
            where = "x'_t + W_hh h" if content.source == "pre" else f"time step {content.var}"
            self.fail(node, f"reads {where} of the sequence; only the last step can be selected")
        if content.source == "step":
            return replace(content, source="last", var=-1, parts=())
        rec = self._record(content.parts[0])
        return replace(content, source="last", var=-1, parts=(), stages=self._unrolled_stages(node, rec))

    def _unrolled_stages(self, node, rec) -> tuple:
        xp = rec["x"]
        if rec["W"] is None:
            self.fail(node, "a recurrence unrolled over one step cannot be told from a dense layer")
        W_hh, b_hh = rec["W"], rec["b"]
        if rec["first"] is not None and not np.allclose(rec["first"], b_hh, rtol=1e-6, atol=1e-7):
            self.fail(node, "the first step of the unrolled recurrence does not start from a zero state")
        before = replace(xp, affine=None, diag=None)
        stages = self._materialize(node, before)
        H = W_hh.shape[0]
        if xp.affine is not None:
            W_ih, b_ih, _ = xp.affine
        elif xp.diag is not None:
            W_ih, b_ih = np.diag(xp.diag[0]), xp.diag[1]
        else:
            W_ih, b_ih = np.eye(H), np.zeros(H)
        if W_ih.shape[0] != H:
            self.fail(node, f"the unrolled recurrence's input map gives {W_ih.shape[0]} values for {H} states")
        weight = np.hstack([W_ih, W_hh]).astype(np.float32)
        bias = (b_ih + b_hh).astype(np.float32)
        rnn = ir.Recurrent(
            "rnn", W_ih.shape[1], H, 0, ir.CSR.from_dense(weight, weight != 0), bias, rec["act"] or "tanh"
        )
        return (*stages, rnn)
