"""Which sparse / int8 FULLY_CONNECTED encodings LiteRT (XNNPACK on, builtin, builtin_ref) and
TFLite Micro really compute correctly - measured, not assumed.

Each case is one FULLY_CONNECTED layer [rows x cols] at 90% sparsity (1x4 / 1x16 blocks where the
format needs them), run on random inputs and compared with numpy on the weights the file stores.
A wrong kernel does not raise: it returns numbers, so every cell is a measured error.

    python benchmarks/exports/tflite_kernels.py            # writes results/tflite_kernels.{md,json}
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import markdown_table, write_results  # noqa: E402

from edgeprune import ir  # noqa: E402
from edgeprune.backends import tflite as T  # noqa: E402
from edgeprune.backends.tflite import flatbuffer as TF  # noqa: E402
from edgeprune.backends.tflite import graphs as TG
from edgeprune.backends.tflite import weights as TW

ROWS, COLS, BATCH = 64, 320, 3
RESOLVERS = ("xnnpack", "builtin", "builtin_ref")


def masked(rng, block: int) -> np.ndarray:
    W = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    keep = np.repeat(rng.random((ROWS, COLS // block)) >= 0.9, block, axis=1)
    return W * keep


def int8_rows(W):
    scales = np.abs(W).max(axis=1) / 127
    scales[scales == 0] = 1
    return np.clip(np.rint(W / scales[:, None]), -127, 127).astype(np.int8), scales.astype(np.float32)


def hybrid_model(W, encoding: str, version: int) -> tuple[bytes, np.ndarray]:
    """Float input, int8 weights (per-row scales); ``encoding`` dense / csr / block1x16."""
    m = ir.CSR.from_dense(W)
    if encoding == "dense":
        weight = T.encode_weight("weight", m, (COLS,), "int8", "dense")
    elif encoding == "block1x16":
        weight = T.encode_weight("weight", m, (COLS,), "int8", "sparse")
        assert weight.encoding == "block1x16" and weight.nnz == weight.values.size
    else:  # int8 CSR: a format the kernels do not support (see the results)
        q, scales = int8_rows(W)
        qm = ir.CSR.from_dense(q.astype(np.float32), W != 0)
        weight = TW.Weight(
            "weight",
            ROWS,
            TW._Layout((COLS,)),
            "int8",
            "csr",
            qm.data.astype(np.int8),
            qm.nnz,
            qm.indptr.astype(np.int64),
            qm.indices.astype(np.int64),
            scales,
        )
    weight = TG._VersionedWeight(**vars(weight), forced_version=version)
    dense_q = np.zeros((ROWS, weight.layout.cols), np.float32)
    q, scales = int8_rows(W)
    dense_q[:, :COLS] = q * scales[:, None]
    return _single_fc(weight), dense_q[:, :COLS]


def _single_fc(weight) -> bytes:
    g = TF.Graph(dynamic_batch=True)
    w = TG._Writer(g)
    x = g.activation("x", [1, COLS])
    y = w.fully_connected(x, TG._Prepared(weight, np.zeros(ROWS, np.float32)), "y")
    return g.finish({"x": x}, {"y": y}, {"format": T.FORMAT, "kind": "linear", "batch": "dynamic"}, "probe")


def full_int8_model(W, encoding: str, version: int, x_scale: float, y_scale: float) -> tuple[bytes, np.ndarray]:
    """Int8 input and output (fully quantized FC), int8 weights with one scale."""
    S = TF.schema()
    scale = float(np.abs(W).max() / 127)
    q = np.clip(np.rint(W / scale), -127, 127).astype(np.int8)
    g = TF.Graph(dynamic_batch=True)

    def quant(s, zp=0):
        p = S.QuantizationParametersT()
        p.scale, p.zeroPoint = [float(s)], [int(zp)]
        return p

    x = g.tensor("x", [1, COLS], np.int8, batched=True, quantization=quant(x_scale))
    if encoding == "dense":
        filt = g.tensor("weight", [ROWS, COLS], np.int8, data=q, quantization=quant(scale))
    else:
        blocks = TW._blocked(ir.CSR.from_dense(q.astype(np.float32)), TW._Layout((COLS,), 16), 16)
        segments, block_cols, values = blocks[0], blocks[1], blocks[3]
        sp = S.SparsityParametersT()
        w = TG._Writer(g)
        sp.traversalOrder, sp.blockMap = [0, 1, 2], [1]
        sp.dimMetadata = [w._dim_dense(ROWS), w._dim_csr(segments, block_cols), w._dim_dense(16)]
        filt = g.tensor(
            "weight", [ROWS, COLS], np.int8, data=values.ravel().astype(np.int8), sparsity=sp, quantization=quant(scale)
        )
    bias = g.tensor("bias", [ROWS], np.int32, data=np.zeros(ROWS, np.int32), quantization=quant(x_scale * scale))
    y = g.tensor("y", [1, ROWS], np.int8, batched=True, quantization=quant(y_scale))
    g.op("FULLY_CONNECTED", [x, filt, bias], [y], S.FullyConnectedOptionsT(), version)
    return g.finish({"x": x}, {"y": y}, {"format": T.FORMAT, "kind": "linear", "batch": "dynamic"}, "probe"), q.astype(
        np.float32
    ) * scale


def run_litert(data: bytes, X: np.ndarray, resolver: str) -> tuple[np.ndarray | None, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.tflite"
        path.write_bytes(data)
        try:
            runner = T.LiteRTRunner(path, resolver)
            it = runner.interpreter
            inp = it.get_input_details()[0]
            it.resize_tensor_input(inp["index"], list(X.shape))
            it.allocate_tensors()
            it.set_tensor(inp["index"], X.astype(inp["dtype"]))
            it.invoke()
            y = it.get_tensor(it.get_output_details()[0]["index"])
            error = ""
        except Exception as e:  # a refused model is a result here
            return None, str(e).strip().splitlines()[0][:80], ""
    delegated = ""
    if resolver == "xnnpack":
        delegated = "XNNPACK" if any(runner.delegated_weights().values()) else "builtin kernel"
    return y, error, delegated


def run_micro(data: bytes, X: np.ndarray) -> tuple[np.ndarray | None, str]:
    from tflite_micro.python.tflite_micro import runtime

    try:
        it = runtime.Interpreter.from_bytes(data)
        outs = []
        for row in X:
            it.set_input(row[None].astype(np.float32), 0)
            it.invoke()
            outs.append(np.array(it.get_output(0))[0])
        return np.stack(outs), ""
    except Exception as e:
        return None, str(e).strip().splitlines()[0][:80]


def verdict(y, expected, tolerance, error="", delegated="") -> str:
    if y is None:
        return f"refused: {error}"
    err = float(np.max(np.abs(y.astype(np.float64) - expected))) if np.all(np.isfinite(y)) else float("nan")
    rel = err / float(np.max(np.abs(expected)))
    word = "ok" if rel <= tolerance else "**WRONG**"
    return f"{word} ({rel:.0e})" + (f", {delegated}" if delegated else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, COLS)).astype(np.float32)
    rows = []

    def add(name, dtype, version, data, expected, tolerance, inputs=X, dequant=None, micro=False):
        cells = []
        for resolver in RESOLVERS:
            y, error, delegated = run_litert(data, inputs, resolver)
            cells.append(
                verdict(None if y is None else (dequant(y) if dequant else y), expected, tolerance, error, delegated)
            )
        if micro:
            y, error = run_micro(data, inputs)
            cells.append(verdict(y, expected, tolerance, error))
        else:
            cells.append("")
        rows.append([name, dtype, version, *cells])

    for encoding, block in (("dense", 1), ("csr", 1), ("block1x4", 4)):
        W = masked(rng, block)
        mode = "dense" if encoding == "dense" else "sparse"
        m = ir.CSR.from_dense(W)
        for version in (1, 8):
            data = T.build_linear_model(m, "f32", mode, fc_version=version)
            assert T.read_metadata(data)["weights"]["weight"]["encoding"] == encoding
            add(encoding, "f32", version, data, X @ W.T, 1e-5, micro=True)
    for encoding in ("dense", "csr", "block1x16"):
        W = masked(rng, 16 if encoding == "block1x16" else 1)
        for version in (1, 8, 9) if encoding == "dense" else (1, 8):
            data, Wq = hybrid_model(W, encoding, version)
            add(encoding, "int8 weights, f32 activations", version, data, X @ Wq.T, 3e-2)
    x_scale = float(np.abs(X).max() / 127)
    Xq = np.clip(np.rint(X / x_scale), -127, 127).astype(np.int8)
    for encoding in ("dense", "block1x16"):
        W = masked(rng, 16)
        expected_float = (Xq.astype(np.float32) * x_scale) @ W.T
        y_scale = float(np.abs(expected_float).max() / 127)
        for version in (1, 8):
            data, Wq = full_int8_model(W, encoding, version, x_scale, y_scale)
            expected = (Xq.astype(np.float32) * x_scale) @ Wq.T
            two_steps = 2.0 * y_scale / np.abs(expected).max()
            add(
                encoding,
                "int8 activations (full int8)",
                version,
                data,
                expected,
                two_steps,
                inputs=Xq,
                dequant=lambda y: y.astype(np.float32) * y_scale,  # noqa: B023 - called within this iteration
            )

    from importlib.metadata import version as pkg_version

    columns = [
        "weights",
        "dtype",
        "FC version",
        "LiteRT xnnpack",
        "LiteRT builtin",
        "LiteRT builtin_ref",
        "TFLite Micro",
    ]
    md = (
        f"One FULLY_CONNECTED [{ROWS} x {COLS}], 90% sparse, batch {BATCH}; error = max |y - numpy| / max |numpy| "
        f"on the weights the file stores (int8: dequantized; full int8: within 2 output steps). "
        f"ai-edge-litert {pkg_version('ai-edge-litert')}, tflite-micro {pkg_version('tflite-micro')}. "
        "With XNNPACK on, who ran the node: XNNPACK or the builtin kernel (XNNPACK declined it).\n\n"
        + markdown_table(columns, rows)
    )
    json_path, md_path = write_results("tflite_kernels", {"rows": [dict(zip(columns, r)) for r in rows]}, md)
    print(md)
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
