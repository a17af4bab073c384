"""The cost model behind `--kernel auto`: every runtime kernel timed alone, and a fit per profile.

For each storage format and dtype, tiles of the shapes a model produces (16 to 256 rows, 28 to 256
columns, densities 3%..100%; ELL on row-regular masks, block formats on exact block masks, CSR/SELL
on random masks) are encoded with the backend's own encoders, embedded in a C program, and each
kernel call is timed:

* ``x86-avx2``: the host build (-O2 -ffp-contract=fast -march=native), wall-clock ns per call,
  minimum over many repetitions (robust to a loaded machine, still only indicative there);
* ``generic``: the plain-C kernels (-DEP_NO_SIMD) on the same host, as a proxy for 64-bit cores
  without the runtime's SIMD paths (aarch64 here is only emulated);
* ``cortex-m4``: instructions per call on QEMU's mps2-an386 board (-icount shift=0: one emulated
  instruction per virtual ns), i.e. emulated instruction counts, not cycles.

``time = per_stored * stored weights + per_row * rows + per_call`` is fitted by non-negative least
squares; the printed table is what ``edgeprune/backends/c/costs.py`` holds. For hosts, dense
matrices of whole LSTM-256/1024 layers (1.2/17 MB, more than a core's L2) give the extra time of
streaming weights from further away (``STREAM_NS_PER_BYTE``). The per-stored coefficient of the
Cortex-M4 fit is the "instructions per nonzero in the mat-vec inner loop" of the issue.

    python benchmarks/c/kernels.py                       # all profiles (several minutes)
    python benchmarks/c/kernels.py --profiles cortex-m4 --merge  # re-measure one, keep the others
    python benchmarks/c/kernels.py --profiles x86-avx2 --dtypes int8 --merge  # one profile's int8 only
    python benchmarks/c/kernels.py --callgrind           # + instruction counts of the host kernels
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, machine, markdown_table, write_results  # noqa: E402

from edgeprune.backends.c import costs, formats  # noqa: E402
from edgeprune.backends.c.toolchain import M4_FLAGS, MPS2_AN386, SEMIHOSTING_FLAGS, WARNINGS  # noqa: E402
from edgeprune.bench.toolchains import native_dir  # noqa: E402
from edgeprune.runtime import source_dir  # noqa: E402

# rows 16..256 (gate blocks of small and large layers), 28 (inputs) to 256 (a byte-index chunk) columns:
# enough distinct row counts that the per-row and per-call terms are told apart; 1024 rows: a tile
# merged over the four gate blocks of an LSTM-256 (tiling._layouts)
SHAPES = ((16, 28), (64, 28), (64, 256), (128, 100), (256, 28), (256, 256), (1024, 28), (1024, 256))
DENSITIES = (0.03, 0.1, 0.3, 1.0)
MASKS = {
    "dense": "random",
    "csr": "random",
    "sell": "random",
    "sell16": "random",
    "ell": "regular",
    "ell16": "regular",
    "bsr8x1": "block8x1",
    "bsr8x1w": "block8x1",
    "bsr4x1": "block4x1",
    "bsr1x4": "block1x4",
}


def pattern(rng, rows, cols, density, kind):
    if kind == "regular":
        k = max(1, round(density * cols))
        p = np.zeros((rows, cols), bool)
        np.put_along_axis(p, np.argsort(rng.random((rows, cols)), axis=1)[:, :k], True, axis=1)
        return p
    if kind.startswith("block"):
        br, bc = {"block8x1": (8, 1), "block4x1": (4, 1), "block1x4": (1, 4)}[kind]
        grid = rng.random((-(-rows // br), -(-cols // bc))) < density
        if not grid.any():
            grid[0, 0] = True
        return np.kron(grid, np.ones((br, bc), bool))[:rows, :cols]
    p = rng.random((rows, cols)) < density
    p[0, 0] = True
    return p


def tile_cases(fmt: str, dtype: str, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    cases = []
    wide = ((256, 284), (1024, 284))  # an LSTM-256's gate block, or all four, over all of z
    shapes = ((64, 300), (256, 1024)) if fmt == "ell16" else wide if fmt in ("sell16", "bsr8x1w") else SHAPES
    for rows, cols in shapes:
        for density in (1.0,) if fmt == "dense" else DENSITIES:
            p = pattern(rng, rows, cols, density, MASKS[fmt])
            values = rng.normal(size=(rows, cols)).astype(np.float32) * p
            if dtype == "int8":
                values = np.clip(np.rint(values * 40), -127, 127).astype(np.int8)
            enc = formats.encode(fmt, values, p)
            cases.append(
                {
                    "rows": rows,
                    "cols": cols,
                    "density": density,
                    "nnz": int(p.sum()),
                    "tiles": [(0, 0, rows, cols, enc)],
                }
            )
    return cases


def matrix_case(H: int, dtype: str) -> dict:
    """A whole dense LSTM gate matrix over 28 inputs, in the tiles a model would use."""
    rows, cols = 4 * H, 28 + H
    rng = np.random.default_rng(H)
    values = rng.normal(size=(rows, cols)).astype(np.float32)
    if dtype == "int8":
        values = np.clip(np.rint(values * 40), -127, 127).astype(np.int8)
    full = np.ones((rows, cols), bool)
    tiles = [
        (
            g * H,
            c0,
            H,
            c1 - c0,
            formats.encode("dense", values[g * H : (g + 1) * H, c0:c1], full[g * H : (g + 1) * H, c0:c1]),
        )
        for g in range(4)
        for c0, c1 in ((0, 28), (28, cols))
    ]
    return {"rows": rows, "cols": cols, "density": 1.0, "nnz": rows * cols, "tiles": tiles, "matrix": H}


def _c_array(name, a):
    ctype = formats.CTYPES[a.dtype]
    items = [repr(float(v)) + "f" for v in a] if a.dtype == np.float32 else [str(int(v)) for v in a]
    return f"static const {ctype} {name}[{max(1, len(items))}] = {{{','.join(items) or '0'}}};\n"


def program(cases: list[dict], dtype: str, reps: int, board: bool) -> str:
    rows = max(c["rows"] for c in cases)
    cols = max(c["cols"] for c in cases) + 4
    out = [
        "#define _POSIX_C_SOURCE 199309L\n#include <stdio.h>\n#include <stdint.h>\n#include <time.h>\n"
        '#include "edgeprune_rt.h"\n'
    ]
    out.append(f"static float y[{rows}], z[{cols}], scales[{rows}];\nstatic int8_t zq[{cols}];\n")
    if board:
        # board.c's SysTick counter: 25 MHz, 40 ns a tick (with -icount shift=0, 40 instructions)
        out.append('#include "ep_board.h"\nstatic double now_ns(void) { return (double)ep_board_cycles() * 40.0; }\n')
    else:
        out.append(
            "static double now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);\n"
            "    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec; }\n"
        )
    bodies = []
    for k, case in enumerate(cases):
        calls = []
        for j, (r0, c0, trows, tcols, enc) in enumerate(case["tiles"]):
            names = []
            for name, a in enc.arrays.items():
                out.append(_c_array(f"k{k}_{j}_{name}", a))
                names.append(f"k{k}_{j}_{name}")
            tail = (
                f"{trows}, {tcols}"
                if enc.format == "dense"
                else ", ".join([str(enc.kernel_rows(trows))] + [str(v) for v in enc.params.values()])
            )
            if dtype == "f32":
                calls.append(f"ep_{enc.format}_f32(y + {r0}, {', '.join(names)}, z + {c0}, {tail});")
            else:
                calls.append(
                    f"ep_{enc.format}_i8(y + {r0}, scales + {r0}, 0.01f, {', '.join(names)}, zq + {c0}, {tail});"
                )
        bodies.append(f"static void case{k}(void) {{ " + " ".join(calls) + " }")
    out.append("\n".join(bodies) + "\n")
    table = ", ".join(f"case{k}" for k in range(len(cases)))
    out.append(f"static void (*const cases[{len(cases)}])(void) = {{{table}}};\n")
    inner = 4 if board else 16
    out.append(f"""int main(int argc, char **argv)
{{
    int k, r, i;
    (void)argc;
    (void)argv;
    {"ep_board_init(); /* starts SysTick */" if board else ""}
    for (i = 0; i < {cols}; ++i) {{
        z[i] = (float)(i % 7) * 0.1f - 0.3f;
        zq[i] = (int8_t)(i % 7 - 3);
    }}
    for (i = 0; i < {rows}; ++i)
        scales[i] = 0.01f;
    for (k = 0; k < {len(cases)}; ++k) {{
        double best = 1e300;
        cases[k]();
        for (r = 0; r < {reps}; ++r) {{
            const double t0 = now_ns();
            for (i = 0; i < {inner}; ++i)
                cases[k]();
            {{
                const double t = (now_ns() - t0) / {inner}.0;
                best = t < best ? t : best;
            }}
        }}
        printf("%d %.2f %g\\n", k, best, (double)y[0]);
    }}
    return 0;
}}
""")
    return "".join(out)


def callgrind_counts(work: Path, calls: int, n: int) -> list[float]:
    """Instructions per call of each case function, from a callgrind run of ./bench (inclusive counts)."""
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=cg.out", "./bench"],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=3600,
    )
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", "cg.out"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s.*\bcase(\d+)\b", line)
        if m and int(m.group(2)) not in counts:
            counts[int(m.group(2))] = int(m.group(1).replace(",", "")) / calls
    return [counts[k] for k in range(n)]


def measure(profile: str, cases: list[dict], dtype: str, work: Path, reps: int, callgrind: bool = False) -> list[float]:
    rt = source_dir("c")
    work.mkdir(parents=True, exist_ok=True)
    board = profile == "cortex-m4"
    if callgrind:
        reps = 1  # instruction counts do not vary: one timed round (16 calls) after the warm-up call
    (work / "bench.c").write_text(program(cases, dtype, 1 if board else reps, board))
    if board:
        boards = rt / "boards" / "mps2-an386"
        cmd = [
            "arm-none-eabi-gcc",
            *WARNINGS,
            "-Wno-missing-prototypes",
            "-O2",
            "-ffp-contract=fast",
            *M4_FLAGS,
            "-I",
            str(rt),
            "-I",
            str(native_dir()),
            "bench.c",
            str(rt / "edgeprune_rt.c"),
            str(boards / "startup.c"),
            str(boards / "board.c"),
            "-T",
            str(boards / "link.ld"),
            *SEMIHOSTING_FLAGS,
            "-nostartfiles",
            "-lm",
            "-o",
            "bench",
        ]
        run = [*MPS2_AN386, "-icount", "shift=0", "-kernel", "bench"]
    else:
        flags = ["-march=native"] if profile == "x86-avx2" else ["-DEP_NO_SIMD"]
        if (
            profile == "x86-avx2"
        ):  # the gather a host build here takes (the backend's probe), so the fit is of that code
            flags += costs.host_gather_flags(["cc"], flags)[0]
        cmd = [
            "cc",
            "-std=c99",
            "-O2",
            "-ffp-contract=fast",
            *flags,
            "-I",
            str(rt),
            "bench.c",
            str(rt / "edgeprune_rt.c"),
            "-lm",
            "-o",
            "bench",
        ]
        run = ["./bench"]
    subprocess.run(cmd, cwd=work, check=True, capture_output=True)
    if callgrind and not board:
        return callgrind_counts(work, 1 + reps * 16, len(cases))
    out = subprocess.run(run, cwd=work, check=True, capture_output=True, text=True, timeout=3600).stdout
    return [float(line.split()[1]) for line in out.splitlines() if line.strip()]


def fit(samples: list[tuple[int, int, float]]) -> tuple[float, float, float]:
    from scipy.optimize import nnls

    A = np.array([[s, r, 1.0] for s, r, _ in samples])
    t = np.array([x for _, _, x in samples])
    w = 1.0 / np.maximum(t, 1.0)  # relative error: small tiles count as much as big ones
    coef, _ = nnls(A * w[:, None], t * w)
    return tuple(float(c) for c in coef)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="x86-avx2,generic,cortex-m4")
    ap.add_argument("--dtypes", default="f32,int8")
    ap.add_argument("--reps", type=int, default=300, help="timing repetitions per kernel (host; min is kept)")
    ap.add_argument("--name", default="c_kernels")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other profiles of an earlier results file (re-measure one profile alone)",
    )
    ap.add_argument(
        "--callgrind",
        action="store_true",
        help="host profiles: also count instructions per call under callgrind and fit them the same way "
        "(a load-independent cross-check of the wall-clock fit)",
    )
    args = ap.parse_args()
    profiles = [p for p in args.profiles.split(",") if p]
    if "cortex-m4" in profiles and not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        print("cortex-m4: toolchain or QEMU missing, skipped")
        profiles.remove("cortex-m4")
    results = {}
    work = Path(tempfile.mkdtemp(prefix="edgeprune-kernels-"))
    try:
        for profile in profiles:
            unit = costs.UNITS[profile]
            results[profile] = {}
            for dtype in args.dtypes.split(","):
                fits = {}
                for fmt in formats.FORMATS:
                    if dtype == "int8" and fmt in formats.F32_ONLY:
                        continue
                    cases = tile_cases(fmt, dtype)
                    times = measure(profile, cases, dtype, work / f"{profile}-{dtype}-{fmt}", args.reps)
                    samples = [
                        (c["tiles"][0][4].stored, c["tiles"][0][4].kernel_rows(c["rows"]), t)
                        for c, t in zip(cases, times)
                    ]
                    coef = fit(samples)
                    fits[fmt] = {
                        "per_stored": round(coef[0], 4),
                        "per_row": round(coef[1], 3),
                        "per_call": round(coef[2], 1),
                        "samples": [
                            {
                                "rows": c["rows"],
                                "cols": c["cols"],
                                "density": c["density"],
                                "nnz": c["nnz"],
                                "stored": s,
                                "bytes": c["tiles"][0][4].bytes,
                                "time": t,
                            }
                            for c, (s, _, t) in zip(cases, samples)
                        ],
                    }
                    if args.callgrind and profile != "cortex-m4":
                        counts = measure(profile, cases, dtype, work / f"{profile}-{dtype}-{fmt}-cg", 1, callgrind=True)
                        icoef = fit([(s, r, n) for (s, r, _), n in zip(samples, counts)])
                        fits[fmt]["callgrind"] = {
                            "per_stored": round(icoef[0], 3),
                            "per_row": round(icoef[1], 2),
                            "per_call": round(icoef[2], 1),
                            "instructions": counts,
                        }
                    worst = max(abs(coef[0] * s + coef[1] * r + coef[2] - t) / t for s, r, t in samples)
                    print(
                        profile,
                        dtype,
                        fmt,
                        fits[fmt]["per_stored"],
                        fits[fmt]["per_row"],
                        fits[fmt]["per_call"],
                        f"worst fit error {worst:.0%}",
                        flush=True,
                    )
                if profile != "cortex-m4":
                    stream = []
                    for H in (256, 1024):
                        case = matrix_case(H, dtype)
                        [t] = measure(
                            profile, [case], dtype, work / f"{profile}-{dtype}-matrix{H}", max(20, args.reps // 10)
                        )
                        per = fits["dense"]
                        hot = sum(
                            per["per_stored"] * enc.stored + per["per_row"] * rows + per["per_call"]
                            for _, _, rows, _, enc in case["tiles"]
                        )
                        nbytes = sum(enc.bytes for *_, enc in case["tiles"])
                        stream.append(
                            {
                                "H": H,
                                "time": t,
                                "hot_estimate": hot,
                                "bytes": nbytes,
                                "per_byte": max(0.0, (t - hot) / nbytes),
                            }
                        )
                        print(
                            profile,
                            dtype,
                            f"dense LSTM-{H} gate matrix: {t:.0f} {unit} (fit on small tiles {hot:.0f})",
                            flush=True,
                        )
                    fits["stream"] = stream
                results[profile][dtype] = fits
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nPROFILES for costs.py:")
    for profile, by_dtype in results.items():
        print(f'    "{profile}": {{')
        for dtype, fits in by_dtype.items():
            items = ", ".join(
                f'"{f}": ({v["per_stored"]}, {v["per_row"]}, {v["per_call"]})' for f, v in fits.items() if f != "stream"
            )
            print(f'        "{dtype}": {{{items}}},')
        print("    },")
    command = " ".join(sys.argv[1:]) or "(defaults)"
    measured = {f"{p} {d}": command for p, by_dtype in results.items() for d in by_dtype}
    cpu = machine()["cpu"]  # a merged file holds figures of several runs, maybe several machines
    measured_on = {key: cpu for key in measured}
    previous = RESULTS / f"{args.name}.json"
    if args.merge and previous.exists():  # keep the profiles and dtypes this run did not measure
        old = json.loads(previous.read_text())
        results = {p: {**old["profiles"].get(p, {}), **results.get(p, {})} for p in {**old["profiles"], **results}}
        measured = {
            **old.get(
                "measured_by", {p: old.get("command", "?").split("kernels.py", 1)[-1].strip() for p in old["profiles"]}
            ),
            **measured,
        }
        measured_on = {**old.get("measured_on", {}), **measured_on}
    write_results(
        args.name,
        {"args": vars(args), "profiles": results, "measured_by": measured, "measured_on": measured_on},
        markdown(results, measured, measured_on),
    )


def markdown(results: dict, measured: dict, measured_on: dict) -> str:
    md = []
    for profile, by_dtype in results.items():
        unit = costs.UNITS[profile]
        for dtype, fits in by_dtype.items():
            rows = []
            for fmt, v in fits.items():
                if fmt == "stream":
                    continue
                samples = v["samples"]
                worst = max(
                    abs(v["per_stored"] * x["stored"] + v["per_row"] * x["rows"] + v["per_call"] - x["time"])
                    / x["time"]
                    for x in samples
                )
                per_nnz = [
                    x["time"] / x["nnz"] for x in samples if (x["rows"], x["cols"], x["density"]) == (256, 256, 0.1)
                ]
                cg = v.get("callgrind")
                rows.append(
                    [
                        fmt,
                        f"{v['per_stored']:.4f}",
                        f"{v['per_row']:.3f}",
                        f"{v['per_call']:.1f}",
                        f"{per_nnz[0]:.3f}" if per_nnz else "-",
                        f"{worst:.0%}",
                        f"{cg['per_stored']:.3f} / {cg['per_row']:.2f} / {cg['per_call']:.0f}" if cg else "-",
                    ]
                )
            md.append(
                f"### {profile}, {dtype} ({unit} per kernel call; measured by `kernels.py "
                f"{measured.get(f'{profile} {dtype}', measured.get(profile, '?'))}`"
                + (f" on {measured_on[f'{profile} {dtype}']}" if f"{profile} {dtype}" in measured_on else "")
                + ")\n\n"
                + markdown_table(
                    [
                        "format",
                        "per stored weight",
                        "per row",
                        "per call",
                        "per nonzero, 256x256 at 10%",
                        "worst fit error",
                        "callgrind instructions: per stored / row / call",
                    ],
                    rows,
                )
            )
            if "stream" in fits:
                md.append(
                    "Whole dense LSTM gate matrices (more than the L2 cache holds): "
                    + "; ".join(
                        f"H={s['H']}: {s['time']:,.0f} {unit} vs {s['hot_estimate']:,.0f} from the small-tile fit "
                        f"(+{s['per_byte']:.4f} {unit}/byte)"
                        for s in fits["stream"]
                    )
                )
    return "\n\n".join(md)


if __name__ == "__main__":
    main()
