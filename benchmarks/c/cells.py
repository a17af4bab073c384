"""Issue 17: the fixed cost of a step, the cell update, before and after its SIMD rewrite, in one run.

Two parts, each one C program built with the host flags (``-O2 -ffp-contract=fast -march=native``), the
variants interleaved round by round (the fastest and the median of the rounds reported, so that other
load on the machine hits every variant alike):

* ``ep_lstm`` / ``ep_gru`` / ``ep_rnn`` at H = 32, 64, 256, 1024: the runtime header of ``--before`` (a
  git revision; default: the commit before the rewrite) against this tree's header as models build it (8
  units a vector) and with ``-DEP_CELL_AVX512`` (16, where the compiler targets AVX-512F+DQ);
* the whole ``model_step`` of an H=256 LSTM (28 inputs, 10 classes) pruned 98% with block-expander-8x1
  and with magnitude masks, and of a dense H=64 one: the same generated ``model.c`` compiled against
  each header (with the build's own gather flag), linked into one program.

    python benchmarks/c/cells.py            # ~1 min on a quiet machine
    python benchmarks/c/cells.py --quick    # fewer rounds
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, build_c, markdown_table, write_results  # noqa: E402

from edgeprune.backends.c.costs import host_gather_flags  # noqa: E402
from edgeprune.backends.c.toolchain import M4_FLAGS, MPS2_AN386, SEMIHOSTING_FLAGS  # noqa: E402
from edgeprune.bench.toolchains import native_dir  # noqa: E402
from edgeprune.runtime import source_dir  # noqa: E402

BEFORE = "ad17d18"  # main before issue 17's SIMD cells
HIDDEN = (32, 64, 256, 1024)
CELLS = ("lstm", "gru", "rnn")
CFLAGS = ["-O2", "-ffp-contract=fast", "-march=native"]
MODELS = ((256, "block-expander-8x1", 0.98), (256, "magnitude", 0.98), (64, "magnitude", 0.0))

# one translation unit per variant: PFX_<cell>_<H>(h, c, pre) with the hidden size a constant, as a model calls it
CELL_TU = r"""
#include "edgeprune_rt.h"
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define DEF(H) \
    void CAT(PFX, _lstm_##H)(float *h, float *c, const float *pre); \
    void CAT(PFX, _lstm_##H)(float *h, float *c, const float *pre) { ep_lstm(h, c, pre, H); } \
    void CAT(PFX, _gru_##H)(float *h, float *c, const float *pre); \
    void CAT(PFX, _gru_##H)(float *h, float *c, const float *pre) { (void)c; ep_gru(h, pre, H); } \
    void CAT(PFX, _rnn_##H)(float *h, float *c, const float *pre); \
    void CAT(PFX, _rnn_##H)(float *h, float *c, const float *pre) { (void)c; ep_rnn(h, pre, H); }
DEF(32)
DEF(64)
DEF(256)
DEF(1024)
"""

TIMER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
"""


def _cell_program(variants: list[str]) -> str:
    decl, table = [], []
    for v in variants:
        for cell in CELLS:
            for H in HIDDEN:
                decl.append(f"void {v}_{cell}_{H}(float *h, float *c, const float *pre);")
                table.append(f'{{"{v}", "{cell}", {H}, {v}_{cell}_{H}}}')
    return (
        TIMER
        + "\n".join(decl)
        + r"""
typedef void (*cell_fn)(float *, float *, const float *);
static const struct { const char *variant, *cell; int hidden; cell_fn fn; } items[] = {"""
        + ",\n".join(table)
        + r"""};
#define N_ITEMS ((int)(sizeof items / sizeof items[0]))
int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200, i, r, k;
    static float h[1024], c[1024], pre[4096];
    static double t[N_ITEMS][1000];
    unsigned s = 1;
    for (i = 0; i < 4096; ++i) { s = s * 1103515245u + 12345u; pre[i] = (float)((s >> 8) % 20001) * 6e-4f - 6.0f; }
    for (r = 0; r < rounds; ++r)
        for (i = 0; i < N_ITEMS; ++i) {
            int calls = 40960 / items[i].hidden;
            double t0;
            for (k = 0; k < 1024; ++k) { h[k] = 0.1f; c[k] = 0.5f; }
            t0 = now_ns();
            for (k = 0; k < calls; ++k) items[i].fn(h, c, pre);
            t[i][r] = (now_ns() - t0) / calls;
        }
    for (i = 0; i < N_ITEMS; ++i) {
        qsort(t[i], (size_t)rounds, sizeof(double), cmp);
        printf("%s %s %d %.2f %.2f\n", items[i].variant, items[i].cell, items[i].hidden, t[i][0], t[i][rounds / 2]);
    }
    return 0;
}
"""
    )


STEP_MAIN = r"""
typedef void (*step_fn)(void *, const float *, float *);
int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200, r, k, v;
    static double t[N_VARIANTS][1000];
    static float state[N_VARIANTS][1 << 16], x[64], out[64];
    for (k = 0; k < 64; ++k) x[k] = 0.01f * (float)k;
    for (v = 0; v < N_VARIANTS; ++v) resets[v](state[v]);
    for (r = 0; r < rounds; ++r)
        for (v = 0; v < N_VARIANTS; ++v) {
            double t0 = now_ns();
            for (k = 0; k < 500; ++k) steps[v](state[v], x, out);
            t[v][r] = (now_ns() - t0) / 500;
        }
    for (v = 0; v < N_VARIANTS; ++v) {
        qsort(t[v], (size_t)rounds, sizeof(double), cmp);
        printf("%s %.2f %.2f\n", names[v], t[v][0], t[v][rounds / 2]);
    }
    return 0;
}
"""

# model.c's external names, renamed per variant so that both builds link into one program
EXPORTS = ("model_step", "model_reset", "model_run", "model_run_batch", "model_step_streams", "model_state_size")


def _run(cmd, cwd=None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _headers(tmp: Path, before: str) -> dict[str, Path]:
    old = tmp / "rt_before"
    old.mkdir()
    (old / "edgeprune_rt.h").write_text(_run(["git", "show", f"{before}:runtimes/c/edgeprune_rt.h"], cwd=ROOT))
    return {"before": old, "after": source_dir("c")}


def cells(tmp: Path, dirs: dict[str, Path], rounds: int, variants=None) -> list[dict]:
    variants = variants or {
        "before": (dirs["before"], []),
        "after": (dirs["after"], []),
        "after_avx512": (dirs["after"], ["-DEP_CELL_AVX512"]),
    }
    objs = []
    for name, (inc, extra) in variants.items():
        src = tmp / f"cells_{name}.c"
        src.write_text(CELL_TU)
        objs.append(str(tmp / f"cells_{name}.o"))
        _run(["gcc", *CFLAGS, *extra, f"-DPFX={name}", "-I", str(inc), "-c", str(src), "-o", objs[-1]])
    (tmp / "cells_main.c").write_text(_cell_program(list(variants)))
    _run(["gcc", *CFLAGS, str(tmp / "cells_main.c"), *objs, "-o", str(tmp / "cells")])
    rows = []
    for line in _run([str(tmp / "cells"), str(rounds)]).splitlines():
        variant, cell, H, best, median = line.split()
        rows.append(
            {"variant": variant, "cell": cell, "hidden": int(H), "min_ns": float(best), "median_ns": float(median)}
        )
    return rows


def steps(tmp: Path, dirs: dict[str, Path], rounds: int) -> list[dict]:
    from targets import dense_lstm, masked

    rows = []
    gather, why = host_gather_flags(["gcc"], CFLAGS)
    variants = {
        "before": (dirs["before"], []),
        "after": (dirs["after"], []),
        "after_avx512": (dirs["after"], ["-DEP_CELL_AVX512"]),
    }
    for H, mask, sparsity in MODELS:
        build = tmp / f"{H}-{mask}-{sparsity}"
        build_c(masked(dense_lstm(H), mask, sparsity), build / "model")
        objs, head = [], []
        for name, (inc, extra) in variants.items():
            d = build / name
            d.mkdir()
            for f in ("model.c", "model.h"):
                shutil.copy(build / "model" / f, d / f)
            shutil.copy(inc / "edgeprune_rt.h", d / "edgeprune_rt.h")
            objs.append(str(d / "model.o"))
            renames = [f"-D{e}={name}_{e}" for e in EXPORTS]
            _run(["gcc", *CFLAGS, *gather, *extra, *renames, "-c", str(d / "model.c"), "-o", objs[-1]])
            head += [
                f"void {name}_model_step(void *s, const float *x, float *out);",
                f"void {name}_model_reset(void *s);",
            ]
        head += [
            f"#define N_VARIANTS {len(variants)}",
            "static void (*const resets[])(void *) = {" + ", ".join(f"{n}_model_reset" for n in variants) + "};",
            "static void (*const steps[])(void *, const float *, float *) = {"
            + ", ".join(f"{n}_model_step" for n in variants)
            + "};",
            "static const char *const names[] = {" + ", ".join(f'"{n}"' for n in variants) + "};",
        ]
        # the kernels (edgeprune_rt.c) are the same code in all: only the header's cells differ
        (build / "main.c").write_text(TIMER + "\n".join(head) + STEP_MAIN)
        rt = dirs["after"]
        _run(
            [
                "gcc",
                *CFLAGS,
                *gather,
                "-I",
                str(rt),
                str(build / "main.c"),
                str(rt / "edgeprune_rt.c"),
                *objs,
                "-lm",
                "-o",
                str(build / "steps"),
            ]
        )
        for line in _run([str(build / "steps"), str(rounds)]).splitlines():
            variant, best, median = line.split()
            rows.append(
                {
                    "model": f"H={H} {mask} {sparsity:.0%}" if sparsity else f"H={H} dense",
                    "variant": variant,
                    "min_ns": float(best),
                    "median_ns": float(median),
                    "gather": why,
                }
            )
    return rows


M4_HIDDEN = (32, 64)
M4_MAIN = r"""
#include <stdio.h>
#include "ep_board.h"
@DECL@
typedef void (*cell_fn)(float *, float *, const float *);
static const struct { const char *variant, *cell; int hidden; cell_fn fn; } items[] = {@TABLE@};
int main(void)
{
    static float h[64], c[64], pre[256];
    int i, k;
    ep_board_init();
    for (i = 0; i < 256; ++i)
        pre[i] = (float)(i % 41) * 0.3f - 6.0f;
    for (i = 0; i < (int)(sizeof items / sizeof items[0]); ++i) {
        uint32_t t0;
        for (k = 0; k < 64; ++k) { h[k] = 0.1f; c[k] = 0.5f; }
        items[i].fn(h, c, pre);
        t0 = ep_board_cycles();
        for (k = 0; k < 100; ++k)
            items[i].fn(h, c, pre);
        printf("%s %s %d %.1f\n", items[i].variant, items[i].cell, items[i].hidden,
               (double)(ep_board_cycles() - t0) / 100.0);
    }
    return 0;
}
"""


def cortex_m4(tmp: Path, dirs: dict[str, Path]) -> list[dict]:
    """Emulated instructions per cell call on the Cortex-M4 board (QEMU mps2-an386, -icount shift=0): the plain
    C cells, the path of a microcontroller."""
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which(MPS2_AN386[0])):
        return []
    work, rt = tmp / "m4", source_dir("c")
    work.mkdir()
    boards = rt / "boards" / "mps2-an386"
    m4 = ["arm-none-eabi-gcc", "-O2", "-ffp-contract=fast", *M4_FLAGS]
    objs, decl, table = [], [], []
    for name in ("before", "after"):
        src = work / f"cells_{name}.c"
        src.write_text(CELL_TU)
        objs.append(str(work / f"cells_{name}.o"))
        _run([*m4, f"-DPFX={name}", "-I", str(dirs[name]), "-c", str(src), "-o", objs[-1]])
        for cell in CELLS:
            for H in M4_HIDDEN:
                decl.append(f"void {name}_{cell}_{H}(float *h, float *c, const float *pre);")
                table.append(f'{{"{name}", "{cell}", {H}, {name}_{cell}_{H}}}')
    (work / "main.c").write_text(M4_MAIN.replace("@DECL@", "\n".join(decl)).replace("@TABLE@", ",\n".join(table)))
    _run(
        [*m4, "-I", str(native_dir()), "-I", str(rt), str(work / "main.c"), *objs, str(boards / "startup.c")]
        + [str(boards / "board.c"), "-T", str(boards / "link.ld"), *SEMIHOSTING_FLAGS, "-nostartfiles", "-lm"]
        + ["-o", str(work / "cells.elf")]
    )
    out = _run([*MPS2_AN386, "-icount", "shift=0", "-kernel", str(work / "cells.elf")])
    # SysTick counts the board's 25 MHz clock: 40 ns a tick, with -icount shift=0 (1 ns an instruction) 40 instructions
    rows = []
    for line in out.splitlines():
        variant, cell, H, count = line.split()
        rows.append({"variant": variant, "cell": cell, "hidden": int(H), "instructions": round(float(count) * 40.0)})
    return rows


TIMING_COLUMNS = [
    "before min",
    "after min",
    "after AVX-512 min",
    "before median",
    "after median",
    "after AVX-512 median",
    "speed-up (min)",
]


VARIANTS = ("before", "after", "after_avx512")


def _timings(rec: dict) -> list:
    """The TIMING_COLUMNS of one cell or model from its record per variant."""
    return [
        *(rec[v]["min_ns"] for v in VARIANTS),
        *(rec[v]["median_ns"] for v in VARIANTS),
        rec["before"]["min_ns"] / rec["after"]["min_ns"],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE, help="git revision of the runtime to compare with")
    ap.add_argument("--quick", action="store_true", help="50 rounds instead of 300")
    args = ap.parse_args()
    rounds = 50 if args.quick else 300
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        dirs = _headers(tmp, args.before)
        cell_rows = cells(tmp, dirs, rounds)
        step_rows = steps(tmp, dirs, rounds)
        m4_rows = cortex_m4(tmp, dirs)
    by = {(r["variant"], r["cell"], r["hidden"]): r for r in cell_rows}
    table = [[cell, H, *_timings({v: by[v, cell, H] for v in VARIANTS})] for cell in CELLS for H in HIDDEN]
    sby = {(r["model"], r["variant"]): r for r in step_rows}
    models = list(dict.fromkeys(r["model"] for r in step_rows))
    step_table = [[m, *_timings({v: sby[m, v] for v in VARIANTS})] for m in models]
    md = (
        f"The cell update alone (ns per call, {rounds} interleaved rounds; before = runtime header at "
        f"`{args.before}`, after = this tree natively, after AVX-512 = with `-DEP_CELL_AVX512`), built with "
        f"`gcc {' '.join(CFLAGS)}`:\n\n"
        + markdown_table(["cell", "H", *TIMING_COLUMNS], table)
        + f"\n\nThe whole `model_step` (ns, {rounds} interleaved rounds of 500 steps; the same model.c against both "
        f"headers; {step_rows[0]['gather']}):\n\n" + markdown_table(["model", *TIMING_COLUMNS], step_table)
    )
    if m4_rows:
        mby = {(r["variant"], r["cell"], r["hidden"]): r["instructions"] for r in m4_rows}
        m4_table = [
            [cell, H, mby["before", cell, H], mby["after", cell, H], mby["before", cell, H] / mby["after", cell, H]]
            for cell in CELLS
            for H in M4_HIDDEN
        ]
        md += (
            "\n\nCortex-M4 (QEMU mps2-an386, `-icount shift=0`: emulated instructions per call, not cycles), the "
            "plain C cells built with `arm-none-eabi-gcc -O2 -ffp-contract=fast " + " ".join(M4_FLAGS) + "`:\n\n"
        )
        md += markdown_table(["cell", "H", "before", "after", "ratio"], m4_table)
    payload = {"before": args.before, "rounds": rounds, "cells": cell_rows, "steps": step_rows, "cortex_m4": m4_rows}
    write_results("c_cells", payload, md)
    print(md)


if __name__ == "__main__":
    main()
