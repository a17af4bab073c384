"""Bad inputs a new user might give, each run through the CLI; counts how edgeprune answers.

Every case must end as exactly one ``edgeprune: error: ...`` line on stderr with a non-zero exit
and nothing left next to its output (no file, no hidden ``.tmp``/``.old``). The script prints, and
writes to ``results/hardening_bad_inputs.{md,json}``:

- bad inputs tried,
- one-line errors (the wanted answer),
- internal errors (exit 70, "internal error", a traceback, or any exception escaping ``main``),
- multi-line answers (a warning or a library's text before our line),
- silent acceptances (exit 0 on an input that must be refused),
- partial outputs (anything left behind by a failed command).

Run: ``PYTHONPATH=. python benchmarks/hardening/bad_inputs.py`` (about a minute on an idle
2-core machine; in-process, so torch is imported once). ``--no-write`` only prints.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from common import markdown_table, write_results

READ_ONLY_DIR = Path("/sys")  # a directory nobody (root included) can create files in


class Hang(BaseException):
    pass


def _hang(signum, frame):
    raise Hang


def run_main(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
    from edgeprune.cli import main

    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _hang)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # a warning a user would see counts as an extra line
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                code = main([str(a) for a in argv])
            except Hang:
                code = 98
                print(f"HANG: no answer within {timeout_s:g} s", file=err)
            except BaseException as e:  # noqa: BLE001 - escaping main is itself the finding
                code = 99
                print(f"ESCAPED {type(e).__name__}: {e}", file=err)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    return code, out.getvalue(), err.getvalue()


# -- fixtures --------------------------------------------------------------------------------------
def make_fixtures(root: Path) -> dict[str, Path]:
    from edgeprune import checkpoint, data
    from edgeprune.models import ModelConfig, SequenceClassifier
    from edgeprune.train import seed_everything, train

    f: dict[str, Path] = {}
    ds = data.load("digits")
    seed_everything(0)
    model = SequenceClassifier(ModelConfig("lstm", ds.features, (8,), ds.num_classes))
    train(model, ds, epochs=1, lr=1e-2, progress=False, max_train_samples=200)
    meta = {"dataset": "digits", "sequence_length": ds.steps, "training": {"lr": 0.01}}
    f["ckpt"] = checkpoint.save(model, root / "good.pt", meta)
    raw = f["ckpt"].read_bytes()

    flipped = bytearray(raw)
    mid = len(raw) // 2
    flipped[mid : mid + 64] = bytes(b ^ 0xFF for b in flipped[mid : mid + 64])
    (root / "flipped.pt").write_bytes(bytes(flipped))
    f["flipped"] = root / "flipped.pt"
    (root / "truncated.pt").write_bytes(raw[: len(raw) // 3])
    f["truncated"] = root / "truncated.pt"
    (root / "empty.pt").write_bytes(b"")
    f["empty"] = root / "empty.pt"
    (root / "garbage.pt").write_bytes(os.urandom(4096))
    f["garbage"] = root / "garbage.pt"
    (root / "plain.pkl").write_bytes(pickle.dumps({"state": [1, 2, 3]}))
    f["plain_pickle"] = root / "plain.pkl"
    torch.save(np.random.default_rng(0), root / "object.pt")
    f["object_pickle"] = root / "object.pt"
    torch.save({"state_dict": model.state_dict()}, root / "foreign.pt")
    f["foreign"] = root / "foreign.pt"

    def crafted(name: str, edit) -> Path:
        payload = torch.load(f["ckpt"], weights_only=True)
        payload.pop("sha256", None)  # posing as a version-1 file (no checksum): the structural checks must catch it
        payload["version"] = 1
        edit(payload)
        torch.save(payload, root / name)
        return root / name

    f["nan_weights"] = crafted("nan.pt", lambda p: p["state"]["layers.0.weight_hh"].view(-1)[:15].fill_(float("nan")))
    f["inf_bias"] = crafted("inf.pt", lambda p: p["state"]["head.bias"].fill_(float("inf")))
    f["huge_config"] = crafted("huge.pt", lambda p: p["config"].update(hidden_sizes=[10_000_000]))
    f["bad_cell"] = crafted("cell.pt", lambda p: p["config"].update(cell="transformer"))
    f["missing_key"] = crafted("missing.pt", lambda p: p["state"].pop("head.bias"))
    f["extra_key"] = crafted("extra.pt", lambda p: p["state"].update(extra=torch.zeros(3)))
    f["mask_shape"] = crafted(
        "mask_shape.pt", lambda p: p["masks"].update({"layers.0.weight_hh": torch.ones(3, 3).bool()})
    )
    f["mask_values"] = crafted(
        "mask_values.pt", lambda p: p["masks"].update({"layers.0.weight_hh": torch.full((32, 8), 0.5)})
    )
    f["mask_name"] = crafted("mask_name.pt", lambda p: p["masks"].update({"layers.0.bias_ih": torch.ones(32).bool()}))
    f["version"] = crafted("version.pt", lambda p: p.update(version=99))
    f["v1_renamed_weight"] = crafted(
        "renamed.pt", lambda p: p["state"].update({"layers.0.weight_hx": p["state"].pop("layers.0.weight_hh")})
    )
    f["meta_nan"] = crafted("meta_nan.pt", lambda p: p["meta"].update(accuracy=float("nan")))
    f["meta_list"] = crafted("meta_list.pt", lambda p: p.update(meta=[1, 2]))
    f["state_dtype"] = crafted(
        "state_dtype.pt", lambda p: p["state"].update({"head.bias": p["state"]["head.bias"].to(torch.int64)})
    )
    f["signed_tampered"] = root / "signed_tampered.pt"  # a valid v2 file whose weights were changed after signing
    payload = torch.load(f["ckpt"], weights_only=True)
    if "sha256" in payload:
        payload["state"]["head.bias"][0] += 1.0
    torch.save(payload, f["signed_tampered"])

    def npz(name: str, **arrays) -> Path:
        path = root / f"{name}.npz"
        np.savez(path, **arrays)
        return path

    rng = np.random.default_rng(0)
    X = rng.random((200, 8, 8), dtype=np.float32)
    f["npz_20class"] = npz("c20", X=X, y=np.arange(200) % 20)
    f["npz_5class"] = npz("c5", X=X, y=np.arange(200) % 5)
    f["npz_features"] = npz("feat", X=rng.random((200, 8, 3), dtype=np.float32), y=np.arange(200) % 10)
    f["npz_2d"] = npz("twod", X=X.reshape(200, -1), y=np.arange(200) % 10)
    Xn = X.copy()
    Xn[3, 2, 1] = np.nan
    f["npz_nan"] = npz("nanx", X=Xn, y=np.arange(200) % 10)
    f["npz_yfloat"] = npz("yfloat", X=X, y=(np.arange(200) % 10).astype(np.float32))
    f["npz_yneg"] = npz("yneg", X=X, y=np.arange(200) % 10 - 1)
    f["npz_len"] = npz("len", X=X, y=np.arange(150) % 10)
    f["npz_noy"] = npz("noy", X=X)
    f["npz_onlytest"] = npz("onlytest", X=X, y=np.arange(200) % 10, X_test=X[:10])
    f["npz_single"] = npz("single", X=X[:10], y=np.arange(10))
    f["npz_empty"] = npz("empty", X=X[:0], y=np.zeros(0, np.int64))
    f["npz_empty_test"] = npz("empty_test", X=X, y=np.arange(200) % 10, X_test=X[:0], y_test=np.zeros(0, np.int64))
    f["npz_test_features"] = npz("test_feat", X=X, y=np.arange(200) % 10, X_test=X[:10, :, :4], y_test=np.arange(10))
    f["npz_complex"] = npz("complex", X=X.astype(np.complex64), y=np.arange(200) % 10)
    f["npz_bool"] = npz("boolx", X=X > 0.5, y=np.arange(200) % 10)
    f["npz_object"] = root / "object.npz"
    np.savez(f["npz_object"], X=np.array([{"a": 1}] * 3, dtype=object), y=np.arange(3))
    (root / "text.npz").write_text("X,y\n1,2\n")
    f["npz_text"] = root / "text.npz"
    f["npz_truncated"] = root / "trunc.npz"
    f["npz_truncated"].write_bytes(f["npz_20class"].read_bytes()[:3000])
    f["npz_huge_label"] = npz("hugelabel", X=X, y=np.full(200, 2**40, np.int64))
    f["dir_npz"] = root / "adir.npz"
    f["dir_npz"].mkdir()

    # compile outputs: an IR directory and an ONNX file (used as foreign or damaged inputs)
    from edgeprune.compiler import compile_source, load_source, verification_inputs

    src = load_source(f["ckpt"])
    Xv, described = verification_inputs(src, "auto", 16)
    compile_source(src, ["ir"], root / "ir", X_verify=Xv, data_description=described)
    f["ir"] = root / "ir"
    f["onnx"] = None
    with contextlib.suppress(Exception):
        compile_source(src, ["onnx"], root / "onnxout", X_verify=Xv, data_description=described)
        f["onnx"] = root / "onnxout" / "model.onnx"

    def ir_copy(name: str, edit) -> Path:
        d = root / name
        shutil.copytree(f["ir"], d)
        edit(d)
        return d

    f["ir_bad_json"] = ir_copy("ir_bad_json", lambda d: (d / "model.json").write_text("{not json"))
    f["ir_no_weights"] = ir_copy("ir_no_weights", lambda d: (d / "weights.npz").unlink())
    f["ir_huge"] = ir_copy(
        "ir_huge",
        lambda d: (d / "model.json").write_text(
            (d / "model.json").read_text().replace('"input_size": 8', '"input_size": 8000000000', 1)
        ),
    )

    def nan_weights(d: Path) -> None:
        with np.load(d / "weights.npz") as z:
            arrays = {k: z[k] for k in z.files}
        arrays["head.bias"] = arrays["head.bias"] * np.nan
        np.savez(d / "weights.npz", **arrays)

    f["ir_nan"] = ir_copy("ir_nan", nan_weights)
    (root / "garbage.onnx").write_bytes(os.urandom(2048))
    f["onnx_garbage"] = root / "garbage.onnx"
    if f["onnx"] is not None:
        (root / "trunc.onnx").write_bytes(f["onnx"].read_bytes()[:700])
        f["onnx_truncated"] = root / "trunc.onnx"
    (root / "a_file").write_text("x")
    f["file"] = root / "a_file"
    (root / "existing_dir.pt").mkdir()
    f["existing_dir"] = root / "existing_dir.pt"
    return f


# -- cases -----------------------------------------------------------------------------------------
def cases(f: dict[str, Path], out: Path) -> list[tuple[str, list]]:
    """(description, argv); ``out`` is a fresh directory each case may write under."""
    quick = ["train", "--epochs", "1", "--max-train-samples", "64", "--hidden", "4", "--no-progress"]
    train = ["train", "--epochs", "1", "--max-train-samples", "64", "--no-progress"]
    ro = READ_ONLY_DIR / "edgeprune-bad-input"
    ck = f["ckpt"]
    prune = ["prune", ck, "--method", "magnitude", "--sparsity", "0.5", "--no-progress"]
    ft = [*prune, "--finetune-epochs", "1"]
    c: list[tuple[str, list]] = [
        ("train --hidden 10000000", [*train, "--hidden", "10000000", "-o", out / "m.pt"]),
        ("train --hidden 0", [*train, "--hidden", "0", "-o", out / "m.pt"]),
        ("train --hidden -5", [*train, "--hidden", "-5", "-o", out / "m.pt"]),
        ("train --hidden abc", [*train, "--hidden", "abc", "-o", out / "m.pt"]),
        ("train --hidden 64,", [*train, "--hidden", "64,", "-o", out / "m.pt"]),
        ("train --hidden 100000,100000", [*train, "--hidden", "100000,100000", "-o", out / "m.pt"]),
        ("train --layers 100000", [*train, "--hidden", "64", "--layers", "100000", "-o", out / "m.pt"]),
        ("train --lr nan", [*quick, "--lr", "nan", "-o", out / "m.pt"]),
        ("train --lr inf", [*quick, "--lr", "inf", "-o", out / "m.pt"]),
        ("train --lr -1", [*quick, "--lr", "-1", "-o", out / "m.pt"]),
        ("train --lr 0", [*quick, "--lr", "0", "-o", out / "m.pt"]),
        ("train --epochs 0", ["train", "--epochs", "0", "-o", out / "m.pt"]),
        ("train --epochs -3", ["train", "--epochs", "-3", "-o", out / "m.pt"]),
        ("train --batch-size 0", [*quick, "--batch-size", "0", "-o", out / "m.pt"]),
        ("train --max-train-samples 0", [*train, "--hidden", "4", "--max-train-samples", "0", "-o", out / "m.pt"]),
        ("train --max-train-samples -1", [*train, "--hidden", "4", "--max-train-samples", "-1", "-o", out / "m.pt"]),
        ("train --layers 0", [*quick, "--layers", "0", "-o", out / "m.pt"]),
        ("train --feedback with one layer", [*quick, "--feedback", "-o", out / "m.pt"]),
        ("train --threads 0", [*quick, "--threads", "0", "-o", out / "m.pt"]),
        ("train --data nope", [*quick, "--data", "nope", "-o", out / "m.pt"]),
        ("train --data missing.npz", [*quick, "--data", out / "missing.npz", "-o", out / "m.pt"]),
        ("train --data a directory named .npz", [*quick, "--data", f["dir_npz"], "-o", out / "m.pt"]),
        (
            "train --data fashion-mnist --data-dir /nonexistent",
            [*quick, "--data", "fashion-mnist", "--data-dir", "/nonexistent", "-o", out / "m.pt"],
        ),
        ("train -o under a file", [*quick, "-o", f["file"] / "m.pt"]),
        ("train -o into a read-only directory", [*quick, "-o", ro / "m.pt"]),
        ("train -o an existing directory", [*quick, "-o", f["existing_dir"]]),
        ("train -o ''", [*quick, "-o", ""]),
    ]
    for key in (
        "npz_2d",
        "npz_nan",
        "npz_yfloat",
        "npz_yneg",
        "npz_len",
        "npz_noy",
        "npz_onlytest",
        "npz_single",
        "npz_empty",
        "npz_empty_test",
        "npz_test_features",
        "npz_complex",
        "npz_bool",
        "npz_object",
        "npz_text",
        "npz_truncated",
        "npz_huge_label",
    ):
        c.append((f"train --data {f[key].name} ({key[4:]})", [*quick, "--data", f[key], "-o", out / "m.pt"]))
    for key in (
        "missing",
        "dir",
        "empty",
        "garbage",
        "truncated",
        "flipped",
        "plain_pickle",
        "object_pickle",
        "foreign",
        "nan_weights",
        "inf_bias",
        "huge_config",
        "bad_cell",
        "missing_key",
        "extra_key",
        "mask_shape",
        "mask_values",
        "mask_name",
        "version",
        "meta_nan",
        "meta_list",
        "state_dtype",
        "v1_renamed_weight",
        "signed_tampered",
    ):
        src = {"missing": out / "nope.pt", "dir": f["existing_dir"]}.get(key) or f[key]
        c.append((f"prune {key}", ["prune", src, "--method", "random", "--sparsity", "0.5", "-o", out / "p.pt"]))
    c += [
        (
            "prune an .npz as the checkpoint",
            ["prune", f["npz_5class"], "--method", "random", "--sparsity", "0.5", "-o", out / "p.pt"],
        ),
        (
            "prune garbage .onnx",
            ["prune", f["onnx_garbage"], "--method", "random", "--sparsity", "0.5", "-o", out / "p.pt"],
        ),
        ("prune --sparsity nan", [*prune[:4], "--sparsity", "nan", "-o", out / "p.pt"]),
        ("prune --sparsity 1.0", [*prune[:4], "--sparsity", "1.0", "-o", out / "p.pt"]),
        ("prune --lr nan", [*ft, "--lr", "nan", "-o", out / "p.pt"]),
        ("prune --finetune-epochs -1", [*prune, "--finetune-epochs", "-1", "-o", out / "p.pt"]),
        ("prune --batch-size 0", [*ft, "--batch-size", "0", "-o", out / "p.pt"]),
        ("prune --threads 0", [*prune, "--threads", "0", "-o", out / "p.pt"]),
        ("prune --data 20-class npz on a 10-class model", [*ft, "--data", f["npz_20class"], "-o", out / "p.pt"]),
        ("prune --data 5-class npz on a 10-class model", [*ft, "--data", f["npz_5class"], "-o", out / "p.pt"]),
        (
            "prune --data npz with 3 features on an 8-feature model",
            [*ft, "--data", f["npz_features"], "-o", out / "p.pt"],
        ),
        ("prune -o under a file", [*ft, "-o", f["file"] / "p.pt"]),
        ("prune -o into a read-only directory", [*ft, "-o", ro / "p.pt"]),
        ("prune -o an existing directory", [*ft, "-o", f["existing_dir"]]),
    ]
    for key in (
        "empty",
        "garbage",
        "plain_pickle",
        "object_pickle",
        "flipped",
        "nan_weights",
        "npz_5class",
        "onnx_garbage",
    ):
        c.append((f"inspect {key}", ["inspect", f[key]]))
    c.append(("inspect a directory", ["inspect", f["ir"]]))
    c.append(("inspect model.json", ["inspect", f["ir"] / "model.json"]))
    if f.get("onnx"):
        c.append(("inspect model.onnx", ["inspect", f["onnx"]]))
    co = ["compile", "--verify-samples", "8"]
    for key in (
        "flipped",
        "nan_weights",
        "inf_bias",
        "meta_nan",
        "truncated",
        "ir_bad_json",
        "ir_no_weights",
        "ir_huge",
        "ir_nan",
        "onnx_garbage",
        "onnx_truncated",
    ):
        if key in f:
            c.append((f"compile {key}", [*co, f[key], "-o", out / "c"]))
    c += [
        ("compile -o under a file", [*co, ck, "-o", f["file"] / "c"]),
        ("compile -o into a read-only directory", [*co, ck, "-o", ro / "c"]),
        ("compile -o an existing file", [*co, ck, "-o", f["file"]]),
        ("compile --target nope", [*co, ck, "--target", "nope", "-o", out / "c"]),
        ("compile --target ,", [*co, ck, "--target", ",", "-o", out / "c"]),
        ("compile --verify-samples 0", ["compile", ck, "--verify-samples", "0", "-o", out / "c"]),
        ("compile --verify-data nope", [*co, ck, "--verify-data", "nope", "-o", out / "c"]),
        (
            "compile --verify-data npz with other features",
            [*co, ck, "--verify-data", f["npz_features"], "-o", out / "c"],
        ),
        ("compile --kernel with --target ir", [*co, ck, "--kernel", "csr", "-o", out / "c"]),
        ("demo -o under a file", ["demo", "--no-progress", "-o", f["file"] / "d"]),
        ("demo -o into a read-only directory", ["demo", "--no-progress", "-o", ro / "d"]),
        ("bench a missing directory", ["bench", out / "nope", "--quick"]),
        (
            "bench --device ssh://-oProxyCommand=touch${IFS}X@127.0.0.1",
            [
                "bench",
                f["ir"],
                "--quick",
                "--device",
                "ssh://-oProxyCommand=touch${IFS}" + str(out / "x") + "@127.0.0.1",
            ],
        ),
        ("bench --device ssh://-oProxyCommand=x", ["bench", f["ir"], "--quick", "--device", "ssh://-oProxyCommand=x"]),
        ("bench --device ssh://host;reboot", ["bench", f["ir"], "--quick", "--device", "ssh://host;reboot"]),
        (
            "bench --json under a file",
            ["bench", f["ir"], "--quick", "--runtimes", "ir", "--no-native", "--json", f["file"] / "r.json"],
        ),
        (
            "bench --report into a read-only directory",
            ["bench", f["ir"], "--quick", "--runtimes", "ir", "--no-native", "--report", ro / "rep"],
        ),
        ("bench --threads 0", ["bench", f["ir"], "--quick", "--threads", "0"]),
        (
            "sweep -o under a file",
            [
                "sweep",
                ck,
                "--methods",
                "random",
                "--sparsities",
                "0.5",
                "--targets",
                "ir",
                "--cluster",
                "serial",
                "-o",
                f["file"] / "s",
            ],
        ),
        (
            "sweep --sparsities nan",
            ["sweep", ck, "--methods", "random", "--sparsities", "nan", "--targets", "ir", "-o", out / "s"],
        ),
    ]
    return c


def classify(code: int, stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    if code == 98:
        return "internal error (hang)"
    if code in (70, 99) or "internal error" in stderr or "Traceback" in stderr:
        return "internal error"
    if code == 0:
        return "silently accepted"
    if len(lines) == 1 and lines[0].startswith("edgeprune: error:"):
        return "one-line error"
    return "multi-line"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    parser.add_argument("--only", default=None, help="run the cases whose description contains this")
    parser.add_argument("--name", default="hardening_bad_inputs", help="results/<name>.{md,json}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case before it counts as a hang")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, counts = [], {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeprune-bad-") as tmp:
        root = Path(tmp)
        fixtures = make_fixtures(root / "fixtures")
        all_cases = cases(fixtures, root / "PLACEHOLDER")
        for i, (description, _) in enumerate(all_cases):
            if args.only and args.only not in description:
                continue
            out = root / f"case{i:03d}"
            out.mkdir()
            argv = cases(fixtures, out)[i][1]
            before = {p for p in fixtures["file"].parent.iterdir()}
            t0 = time.perf_counter()
            code, stdout, stderr = run_main(argv, args.timeout)
            seconds = time.perf_counter() - t0
            outcome = classify(code, stderr)
            left = sorted(p.name for p in out.iterdir()) + sorted(
                p.name for p in set(fixtures["file"].parent.iterdir()) - before
            )
            if left and outcome != "silently accepted":
                outcome += " + partial output"
            counts[outcome] = counts.get(outcome, 0) + 1
            first = next((l for l in stderr.splitlines() if l.strip()), "")
            rows.append(
                [description, code, outcome, f"{seconds:.1f}", first[:150].replace("|", "\\|"), ", ".join(left)[:60]]
            )
            print(f"{outcome:>18} rc={code:<3} {seconds:5.1f}s  {description}: {first[:200]}", flush=True)
            if outcome != "one-line error":
                print("    " + stderr.strip().replace("\n", "\n    "), flush=True)
    total = len(rows)
    summary = {
        "bad inputs tried": total,
        "one-line errors": counts.get("one-line error", 0),
        "internal errors": sum(v for k, v in counts.items() if k.startswith("internal")),
        "multi-line answers": sum(v for k, v in counts.items() if k.startswith("multi-line")),
        "silent acceptances": counts.get("silently accepted", 0),
        "partial outputs": sum(v for k, v in counts.items() if "partial" in k),
    }
    print()
    for k, v in summary.items():
        print(f"{k}: {v}")
    wall = time.perf_counter() - start
    print(f"wall time {wall:.0f} s, load average {os.getloadavg()[0]:.1f}")
    if not args.no_write and not args.only:
        md = (
            f"Bad inputs given to the CLI in-process (`edgeprune.cli.main`, {args.timeout:g} s per case before "
            f"it counts as a hang), load average {os.getloadavg()[0]:.1f} at the end, wall time {wall:.0f} s.\n\n"
            + "\n".join(f"- {k}: **{v}**" for k, v in summary.items())
            + "\n\n"
            + markdown_table(["input", "exit", "outcome", "s", "stderr (first line)", "left behind"], rows)
        )
        write_results(
            args.name,
            {
                "summary": summary,
                "load_average": os.getloadavg()[0],
                "cases": [dict(zip(["input", "exit", "outcome", "seconds", "stderr", "left"], r)) for r in rows],
            },
            md,
        )
    return 0 if summary["bad inputs tried"] == summary["one-line errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
