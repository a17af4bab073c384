"""Run an edgeprune ``.tflite`` file in ``tflite-runtime``, in another Python (started by ``runtime_worker.py``).

tflite-runtime (the last release, 2.14, is what many Linux boards still run) is built against numpy 1
and fails to import under numpy 2, so it lives in its own venv and this script runs there: it imports
nothing from edgeprune. Request: one JSON argument ``{"model", "resolver", "kind", "state", "initial_state", "every"}``;
the input array arrives on stdin and the output leaves on stdout, both as ``.npy`` bytes.
``--version`` prints the package version (the probe).
"""

import io
import json
import sys


def main() -> int:
    import numpy as np
    from tflite_runtime import __version__
    from tflite_runtime.interpreter import Interpreter, OpResolverType

    if sys.argv[1:] == ["--version"]:
        print(__version__)
        return 0
    req = json.loads(sys.argv[1])
    X = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False).astype(np.float32)
    it = Interpreter(
        model_path=req["model"], num_threads=1, experimental_op_resolver_type=OpResolverType[req["resolver"]]
    )
    inputs = {d["name"]: d for d in it.get_input_details()}
    for d in inputs.values():
        it.resize_tensor_input(d["index"], [len(X)] + list(d["shape"][1:]))
    it.allocate_tensors()
    inputs = {d["name"]: d["index"] for d in it.get_input_details()}
    outputs = {d["name"]: d["index"] for d in it.get_output_details()}
    if req["kind"] == "step":  # stream: every state is an input and comes back as <name>_next
        widths = {d["name"]: int(d["shape"][-1]) for d in it.get_input_details()}
        state = {n: np.zeros((len(X), widths[n]), np.float32) for n in req["state"]}
        for n, v in req.get("initial_state", {}).items():  # a stage's own initial state (file metadata)
            state[n][:] = np.asarray(v, np.float32)
        outs = []
        for t in range(X.shape[1]):
            it.set_tensor(inputs["x"], np.ascontiguousarray(X[:, t]))
            for n, v in state.items():
                it.set_tensor(inputs[n], v)
            it.invoke()
            state = {n: it.get_tensor(outputs[n + "_next"]) for n in state}
            outs.append(it.get_tensor(outputs["logits"]).copy())
        Y = np.stack(outs, axis=1) if req["every"] else outs[-1]
    else:
        it.set_tensor(inputs["x"], np.ascontiguousarray(X))
        it.invoke()
        Y = it.get_tensor(outputs["logits"])
    buf = io.BytesIO()
    np.save(buf, np.asarray(Y, np.float32), allow_pickle=False)
    sys.stdout.buffer.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
