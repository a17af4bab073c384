"""This machine's limits, and how close each build's step runs to them: one program, one run.

Limits (AVX2 loops written for the limit alone, not the runtime's kernels; ns per weight):

* dense FMA rate: panels of 8 rows, a broadcast ``z[c]`` per column, 4 accumulators, at a working
  set in L1, in L2 and, for each build whose weights exceed L2, at that build's own bytes (what a
  spilling layout pays per byte: a fixed "L3" size says nothing here, as a 32 MiB loop runs from
  L3 on one machine and from memory on another, e.g. a VM's share of an EPYC's L3);
* gather-FMA rate: slices of 8 rows, one byte index per weight, 8 gathered ``z`` values per FMA,
  the better of a software gather (8 scalar loads) and AVX2's gather instruction;
* block rate: 8x1 blocks (one broadcast ``z[c]``, 8 weights, one FMA per block).

Builds: LSTM, 28 inputs, 10 classes, batch 1 (``--hidden``, default 256, 512, 1024): our dense
kernel, and pruned masks (magnitude = irregular, expander = row-regular, block-expander 8x1) at
90/95/98% with ``--kernel auto`` (the default: fastest within the byte budget), and for
magnitude also ``fastest`` (auto before the budget) and ``smallest``. Every build gets its own
symbol prefix and all of them, with the limit loops, are linked into one C program that times
them in interleaved rounds (each round: every build and loop, one untimed warm-up call -- the
item before may have evicted L2 -- then ~0.3 ms of calls timed); the fastest round of each is
reported, with the median. Speed-ups are against our dense kernel in the same
run (the best dense implementation on these machines so far: benchmarks/results/c_targets.md).

The limit time of a build is, per matrix, the least of (dense weights x the dense rate, its
nonzeros x the gather rate, and for an exact 8x1-block mask its nonzeros x the block rate), with
the rates of the cache level its bytes fit in; cells, biases and calls are not in it, so the
"ratio to limit" (time / limit time) is >= 1 and says what is left.

"ratio to limit + cell" adds the LSTM cell update -- the runtime's own ``ep_lstm`` at the build's
hidden size, timed alone in the same program -- to the limit time. The cell reads no weight: its
cost is the gate activations' arithmetic (five rational activations and two divides a unit,
vectorised), the same for every mask at a given H, and at 98% it is a third of a block model's
step. The first ratio says how far the whole step is from the mat-vec's limit; the second how far
the mat-vecs and everything around them are from their limit once the cell's own time is granted.

    python benchmarks/c/limits.py                       # H = 256, 512, 1024 (a few minutes)
    python benchmarks/c/limits.py --hidden 256 --rounds 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_c, markdown_table, write_results  # noqa: E402
from targets import dense_lstm, masked  # noqa: E402

from edgeprune import frontend  # noqa: E402
from edgeprune.backends.c import costs  # noqa: E402

LIMITS_C = r"""
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeprune_rt.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* dense: panels of 8 rows, column-major inside; 4 accumulators over columns */
static void lim_dense(float *y, const float *w, const float *z, int panels, int cols)
{
    int p, c;
    for (p = 0; p < panels; ++p) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (c = 0; c + 4 <= cols; c += 4, w += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(z + c), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), _mm256_broadcast_ss(z + c + 1), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16), _mm256_broadcast_ss(z + c + 2), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 24), _mm256_broadcast_ss(z + c + 3), a3);
        }
        _mm256_storeu_ps(y + 8 * p, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

static __m256 sw_gather(const float *z, const uint8_t *cols)
{
    uint64_t k;
    memcpy(&k, cols, sizeof k);
    return _mm256_set_m128(
        _mm_setr_ps(z[(k >> 32) & 0xFF], z[(k >> 40) & 0xFF], z[(k >> 48) & 0xFF], z[k >> 56]),
        _mm_setr_ps(z[k & 0xFF], z[(k >> 8) & 0xFF], z[(k >> 16) & 0xFF], z[(k >> 24) & 0xFF]));
}

static __m256 hw_gather(const float *z, const uint8_t *cols)
{
    return _mm256_i32gather_ps(z, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)cols)), 4);
}

/* gather: slices of 8 rows x width columns, 4 accumulators */
#define LIM_GATHER(NAME, G)                                                                   \
    static void NAME(float *y, const float *v, const uint8_t *ix, const float *z, int slices, int width) \
    {                                                                                         \
        int s, k;                                                                             \
        for (s = 0; s < slices; ++s) {                                                        \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                       \
            for (k = 0; k + 4 <= width; k += 4, v += 32, ix += 32) {                          \
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v), G(z, ix), a0);                       \
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8), G(z, ix + 8), a1);               \
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 16), G(z, ix + 16), a2);             \
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 24), G(z, ix + 24), a3);             \
            }                                                                                 \
            _mm256_storeu_ps(y + 8 * s, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))); \
        }                                                                                     \
    }
LIM_GATHER(lim_gather_sw, sw_gather)
LIM_GATHER(lim_gather_hw, hw_gather)

/* 8x1 blocks: per block row `blocks` blocks, one broadcast z[col] each, 4 accumulators */
static void lim_block(float *y, const float *v, const uint8_t *ix, const float *z, int brows, int blocks)
{
    int b, k;
    for (b = 0; b < brows; ++b) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (k = 0; k + 4 <= blocks; k += 4, v += 32, ix += 4) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v), _mm256_broadcast_ss(z + ix[0]), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8), _mm256_broadcast_ss(z + ix[1]), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 16), _mm256_broadcast_ss(z + ix[2]), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(v + 24), _mm256_broadcast_ss(z + ix[3]), a3);
        }
        _mm256_storeu_ps(y + 8 * b, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

/* the cell update alone: the runtime's own LSTM cell at a constant hidden size (as a model calls it) */
static float cell_h[1024], cell_c[1024], cell_pre[4096];
@CELL_DECLS@

@MODEL_DECLS@

typedef struct {
    const char *name;
    int kind; /* 0 dense, 1 gather sw, 2 gather hw, 3 block, 4 model or cell */
    int a, b; /* dense: panels, cols; gather: slices, width; block: block rows, blocks per row */
    double weights;
    void (*step)(void *, const float *, float *);
    void *state;
} item_t;

static void run_item(const item_t *it, float *y, const float *w, const uint8_t *ix, const float *z,
                     const float *x, float *out)
{
    switch (it->kind) {
    case 0: lim_dense(y, w, z, it->a, it->b); break;
    case 1: lim_gather_sw(y, w, ix, z, it->a, it->b); break;
    case 2: lim_gather_hw(y, w, ix, z, it->a, it->b); break;
    case 3: lim_block(y, w, ix, z, it->a, it->b); break;
    default: it->step(it->state, x, out);
    }
}

static int cmp(const void *p, const void *q)
{
    double a = *(const double *)p, b = *(const double *)q;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 400;
    const double budget = argc > 2 ? atof(argv[2]) : 100000.0; /* ns a timing */
    static float z[256 + 8], y[1 << 19], x[64], out[64];
    size_t big = (size_t)1 << 24; /* 64 MiB of floats: enough for every limit working set */
    float *w = aligned_alloc(64, big * sizeof(float));
    uint8_t *ix = aligned_alloc(64, big);
    item_t items[] = {
@ITEMS@
    };
    const int n = (int)(sizeof items / sizeof items[0]);
    double *samples = malloc(sizeof(double) * (size_t)n * (size_t)rounds);
    int reps[sizeof items / sizeof items[0]];
    int i, r, k;
    srand(1);
    for (i = 0; i < 256 + 8; ++i)
        z[i] = (float)rand() / (float)RAND_MAX;
    for (i = 0; i < 64; ++i)
        x[i] = (float)rand() / (float)RAND_MAX;
    for (i = 0; i < 4096; ++i) /* gate pre-activations of a typical range: no clamp, no denormals */
        cell_pre[i] = 4.0f * (float)rand() / (float)RAND_MAX - 2.0f;
    for (k = 0; k < (int)big; ++k) {
        w[k] = (float)(k % 7) * 0.01f;
        ix[k] = (uint8_t)(rand() & 0xFF);
    }
    for (i = 0; i < n; ++i) { /* calibrate: ~budget ns a timing */
        double t0, t;
        run_item(&items[i], y, w, ix, z, x, out); /* the first call faults its tables' pages in: not timed */
        t0 = now_ns();
        for (k = 0; k < 3; ++k)
            run_item(&items[i], y, w, ix, z, x, out);
        t = (now_ns() - t0) / 3;
        reps[i] = t > budget ? 1 : (int)(budget / (t + 1));
    }
    for (r = 0; r < rounds; ++r)
        for (i = 0; i < n; ++i) {
            double t0;
            /* one untimed call first: the item before it (an L3-sized limit loop) evicted L2, and a
             * streaming step runs warm */
            run_item(&items[i], y, w, ix, z, x, out);
            t0 = now_ns();
            for (k = 0; k < reps[i]; ++k)
                run_item(&items[i], y, w, ix, z, x, out);
            samples[(size_t)i * (size_t)rounds + (size_t)r] = (now_ns() - t0) / reps[i];
        }
    for (i = 0; i < n; ++i) {
        double *s = samples + (size_t)i * (size_t)rounds;
        qsort(s, (size_t)rounds, sizeof *s, cmp);
        printf("%s %.3f %.3f %.0f\n", items[i].name, s[0], s[rounds / 2], items[i].weights);
    }
    printf("checksum %g\n", (double)(y[0] + out[0]));
    free(samples);
    free(w);
    free(ix);
    return 0;
}
"""

SPILL_GRID = 64 * 1024  # spilled builds' working sets, rounded up to this: one level for builds of a size


def spill_bytes(weight_bytes: int) -> int:
    """The working set of the limit loops for a build whose weights do not fit the cache."""
    return -(-weight_bytes // SPILL_GRID) * SPILL_GRID


def spill_level(weight_bytes: int) -> str:
    """The limit level of such a build: its own size."""
    return f"{spill_bytes(weight_bytes) // 1024}KiB"  # no space: an item name


def levels_for(builds: list, cache: int) -> dict[str, int]:
    """Working sets of the limit loops (bytes of weights, plus a byte index per weight for
    gather/blocks): in L1, in L2, and one per size of the builds that exceed ``cache``."""
    levels = {"L1": 24 * 1024, "L2": min(768 * 1024, cache * 3 // 4)}
    for b in sorted(builds, key=lambda b: b["info"]["weight_bytes"]["total"]):
        total = b["info"]["weight_bytes"]["total"]
        if total > cache:
            levels[spill_level(total)] = spill_bytes(total)
    return levels


def limit_items(levels: dict[str, int]) -> list[tuple[str, int, int, int, float]]:
    """(name, kind, a, b, weights) of the limit loops at each level."""
    items = []
    for level, size in levels.items():
        cols = 256
        panels = max(1, size // (4 * 8 * cols))
        items.append((f"dense@{level}", 0, panels, cols, panels * 8 * cols))
        width = 64  # 8 rows x 64 gathered columns a slice
        slices = max(1, size // (5 * 8 * width))
        items.append((f"gather-sw@{level}", 1, slices, width, slices * 8 * width))
        items.append((f"gather-hw@{level}", 2, slices, width, slices * 8 * width))
        blocks = 64
        brows = max(1, size // ((4 * 8 + 1) * blocks))
        items.append((f"block8x1@{level}", 3, brows, blocks, brows * 8 * blocks))
    return items


def cases(H: int):
    """(label, mask, sparsity, kernel, graph) of the builds for one H."""
    model = dense_lstm(H)
    dense = frontend.lower(model)
    out = [("dense", "dense", 0.0, "dense", dense)]
    plan = {
        "magnitude": (0.9, 0.95, 0.98),
        "expander": (0.9, 0.95, 0.98),
        "block-expander-8x1": (0.9, 0.95, 0.98),
    }
    if H > 256:
        plan = {"magnitude": (0.9,)}
    for mask, sparsities in plan.items():
        for s in sparsities:
            try:
                graph = masked(model, mask, s)
            except Exception as e:  # a method that cannot reach this sparsity here: say so, go on
                print(f"H={H} {mask} {s}: skipped ({e})", flush=True)
                continue
            kernels = ("auto", "fastest", "smallest") if mask == "magnitude" else ("auto",)
            for kernel in kernels:
                out.append((f"{mask} {s:.0%} {kernel}", mask, s, kernel, graph))
    return out


BASELINE_EMIT = """
import json
import sys
from pathlib import Path
from edgeprune.backends import get
from edgeprune.ir import serialize
from edgeprune.options import resolve
backend = get("c")
options = resolve(backend.options, {"c_prefix": sys.argv[3], "kernel": sys.argv[4]}, "target c")
[artifact] = backend.emit(serialize.load(sys.argv[1]), Path(sys.argv[2]), options)
info = artifact.info
print(json.dumps({k: info[k] for k in ("weight_bytes", "bytes_per_nonzero")} | {"matrices": {
    k: {f: m[f] for f in ("format", "shape", "nnz")} for k, m in info["matrices"].items()}}))
"""


def baseline_objects(checkout: str, builds: list, work: Path, tuned: list[str]) -> list[str]:
    """The ``auto`` and ``dense`` builds emitted by an older checkout, compiled as it builds them
    (-O2 -ffp-contract=fast -march=native and this host's tuning defines, e.g. -DEP_HW_GATHER, which
    a checkout older than them ignores), its runtime's ep_* symbols renamed old_ep_* so that both
    runtimes link into one program. Appends the baseline builds to ``builds``."""
    from edgeprune.ir import serialize

    flags = ["-O2", "-ffp-contract=fast", "-march=native", "-std=c99", *tuned]
    objects, first = [], None
    for b in [b for b in builds if b["kernel"] in ("auto", "dense")]:
        prefix = "o" + b["prefix"][1:]
        d = work / prefix
        d.mkdir()
        path = serialize.save(b["graph"], d / "ir")
        env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve())}
        emitted = subprocess.run(
            [sys.executable, "-c", BASELINE_EMIT, str(path), str(d), prefix, b["kernel"]],
            env=env,
            cwd=d,  # not this checkout: `python -c` puts the working directory first on sys.path
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(emitted.stdout.strip().splitlines()[-1])
        subprocess.run(["cc", *flags, "-c", f"{prefix}.c", "-o", f"{prefix}.o"], cwd=d, check=True)
        objects.append(d / f"{prefix}.o")
        first = first or d
        builds.append({**b, "prefix": prefix, "label": b["label"] + " [baseline]", "baseline": True, "info": info})
    subprocess.run(["cc", *flags, "-c", "edgeprune_rt.c", "-o", "old_rt.o"], cwd=first, check=True)
    objects.append(first / "old_rt.o")
    names = subprocess.run(["nm", "--defined-only", "old_rt.o"], cwd=first, capture_output=True, text=True).stdout
    renames = [f"{n} old_{n}" for n in (line.split()[-1] for line in names.splitlines()) if n.startswith("ep_")]
    (work / "renames.txt").write_text("\n".join(renames) + "\n")
    for obj in objects:
        subprocess.run(["objcopy", f"--redefine-syms={work / 'renames.txt'}", str(obj)], check=True)
    return [str(o) for o in objects]


def limit_ns(info: dict, graph, mask: str, rates: dict, cache: int) -> float:
    """The least time of the build's matrices at this machine's rates (see the module docstring)."""
    size = info["weight_bytes"]["total"]
    level = "L2" if size <= cache else spill_level(size)
    total = 0.0
    for label, m in info["matrices"].items():
        rows, cols = m["shape"]
        options = [rows * cols * rates[f"dense@{level}"], m["nnz"] * rates[f"gather@{level}"]]
        if mask.startswith("block") and label.startswith("layers"):
            options.append(m["nnz"] * rates[f"block8x1@{level}"])
        total += min(options)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", default="256,512,1024")
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--timing-us", type=float, default=300.0, help="time of one timing (steps of a build per round)")
    ap.add_argument(
        "--baseline",
        default=None,
        help="a checkout of an older edgeprune (e.g. main): its auto and dense builds of the same models join "
        "the same program (its runtime's symbols renamed), for a before/after in one run",
    )
    ap.add_argument("--name", default="c_limits")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    load_start = os.getloadavg()
    cache = costs.cache_bytes("host")
    builds = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-limits-") as tmp:
        work = Path(tmp)
        for H in [int(h) for h in args.hidden.split(",")]:
            for label, mask, s, kernel, graph in cases(H):
                prefix = f"m{len(builds)}"
                d = work / prefix
                artifact = build_c(graph, d, c_prefix=prefix, kernel=kernel)
                builds.append(
                    {
                        "H": H,
                        "label": label,
                        "mask": mask,
                        "sparsity": s,
                        "kernel": kernel,
                        "prefix": prefix,
                        "dir": d,
                        "info": artifact.info,
                        "graph": graph,
                    }
                )
                print(f"built H={H} {label}: {artifact.info['matrices']['layers.0.weight']['format']}", flush=True)
        tuned, why = costs.host_gather_flags(["cc"], ["-O2", "-ffp-contract=fast", "-march=native"])
        old_objects = baseline_objects(args.baseline, builds, work, tuned) if args.baseline else []
        decls, items = [], []
        levels = levels_for(builds, cache)
        for name, kind, a, b, weights in limit_items(levels):
            items.append(f'        {{"{name}", {kind}, {a}, {b}, {weights}, 0, 0}},')
        cell_decls = []
        for H in sorted({b["H"] for b in builds}):
            cell_decls.append(
                f"static void cell_lstm_{H}(void *s, const float *x, float *o)\n"
                f"{{ (void)s; (void)x; (void)o; ep_lstm(cell_h, cell_c, cell_pre, {H}); }}"
            )
            items.append(f'        {{"cell-lstm@{H}", 4, 0, 0, 0, cell_lstm_{H}, 0}},')
        for b in builds:
            p = b["prefix"]
            decls.append(f'#include "{p}/{p}.h"\nstatic {p}_state_t {p}_s;')
            decls.append(
                f"static void {p}_go(void *s, const float *x, float *o) {{ {p}_step(({p}_state_t *)s, x, o); }}"
            )
            items.append(f'        {{"{p}", 4, 0, 0, 0, {p}_go, &{p}_s}},')
        source = LIMITS_C.replace("@CELL_DECLS@", "\n".join(cell_decls))
        source = source.replace("@MODEL_DECLS@", "\n".join(decls)).replace("@ITEMS@", "\n".join(items))
        (work / "limits.c").write_text(source)
        flags = ["-O2", "-ffp-contract=fast", "-march=native", "-std=gnu11"]
        flags += tuned  # what the backend's host build uses on this machine
        print(why, tuned, flush=True)
        sources = ["limits.c", "m0/edgeprune_rt.c"] + [
            f"{b['prefix']}/{b['prefix']}.c" for b in builds if not b.get("baseline")
        ]
        subprocess.run(
            ["cc", *flags, "-I.", "-Im0", *sources, *old_objects, "-lm", "-o", "limits"], cwd=work, check=True
        )
        print(f"running {args.rounds} interleaved rounds of {len(items)} items", flush=True)
        keep = os.environ.get("EDGEPRUNE_LIMITS_KEEP")  # a folder to keep the program in (debugging)
        if keep:
            import shutil

            shutil.copytree(work, keep, dirs_exist_ok=True)
        command = [str(work / "limits"), str(args.rounds), str(args.timing_us * 1000)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    load_end = os.getloadavg()
    timings = {}
    for line in done.stdout.splitlines():
        name, *vals = line.split()
        if name != "checksum":
            timings[name] = (float(vals[0]), float(vals[1]), float(vals[2]))
    rates = {}
    for level in levels:
        rates[f"dense@{level}"] = timings[f"dense@{level}"][0] / timings[f"dense@{level}"][2]
        sw, hw = (timings[f"gather-{g}@{level}"][0] / timings[f"gather-{g}@{level}"][2] for g in ("sw", "hw"))
        rates[f"gather@{level}"] = min(sw, hw)
        rates[f"gather-sw@{level}"], rates[f"gather-hw@{level}"] = sw, hw
        rates[f"block8x1@{level}"] = timings[f"block8x1@{level}"][0] / timings[f"block8x1@{level}"][2]
    rows, payload_rows = [], []
    # speed-ups against the dense build of the same code (a baseline's against the baseline's dense)
    dense_ns = {(b["H"], b.get("baseline", False)): timings[b["prefix"]][0] for b in builds if b["kernel"] == "dense"}
    dense_limit = {}
    for b in builds:
        lim = limit_ns(b["info"], b["graph"], b["mask"], rates, cache)
        if b["label"] == "dense":
            dense_limit[b["H"]] = lim
    for b in builds:
        ns, med, _ = timings[b["prefix"]]
        lim = limit_ns(b["info"], b["graph"], b["mask"], rates, cache)
        cell = timings[f"cell-lstm@{b['H']}"][0]
        info = b["info"]
        row = {
            "H": b["H"],
            "case": b["label"],
            "ns": ns,
            "ns_median": med,
            "speedup_vs_dense": dense_ns[(b["H"], b.get("baseline", False))] / ns,
            "baseline": b.get("baseline", False),
            "limit_ns": lim,
            "limit_speedup": dense_limit[b["H"]] / lim,
            "ratio_to_limit": ns / lim,
            "cell_ns": cell,
            "ratio_to_limit_with_cell": ns / (lim + cell),
            "weight_bytes": info["weight_bytes"]["total"],
            "bytes_per_nonzero": info["bytes_per_nonzero"],
            "formats": {k: v["format"] for k, v in info["matrices"].items()},
        }
        payload_rows.append(row)
        rows.append(
            [
                b["H"],
                b["label"],
                f"{ns / 1000:.2f}",
                f"{med / 1000:.2f}",
                f"{row['speedup_vs_dense']:.2f}x",
                f"{row['limit_speedup']:.2f}x",
                f"{row['ratio_to_limit']:.2f}",
                f"{row['ratio_to_limit_with_cell']:.2f}",
                f"{info['bytes_per_nonzero']:.2f}",
                row["formats"]["layers.0.weight"],
            ]
        )
    limit_rows = [
        [
            level,
            f"{rates[f'dense@{level}']:.4f}",
            f"{rates[f'gather-sw@{level}']:.4f}",
            f"{rates[f'gather-hw@{level}']:.4f}",
            f"{rates[f'block8x1@{level}']:.4f}",
            f"{levels[level] // 1024} KiB",
        ]
        for level in levels
    ]
    md = (
        f"One program, {args.rounds} interleaved rounds, fastest round per item (median alongside); "
        f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end (2 cores, shared: "
        "compare ratios within this run). Cache used for the limits' level: "
        f"{cache // 1024} KiB (L2). Builds as the backend builds them here: `-O2 -ffp-contract=fast "
        f"-march=native {' '.join(tuned)}` ({why}).\n\n"
        "### Limits (ns per weight, AVX2 loops)\n\n"
        + markdown_table(
            ["working set", "dense FMA", "gather-FMA (software)", "gather-FMA (vgather)", "8x1 blocks", "bytes"],
            limit_rows,
        )
        + "\n\n### Builds (µs per step, batch 1; speed-up vs our dense kernel in this run)\n\n"
        + markdown_table(
            [
                "H",
                "case",
                "µs",
                "median µs",
                "speed-up",
                "limit speed-up",
                "ratio to limit",
                "ratio to limit + cell",
                "B/nnz",
                "layers.0 formats",
            ],
            rows,
        )
    )
    payload = {
        "gather": why,
        "gather_defines": tuned,
        "args": vars(args),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "rates_ns_per_weight": rates,
        "cache_bytes": cache,
        "builds": payload_rows,
    }
    by_case = {(r["H"], r["case"]): r for r in payload_rows}
    readme = []  # the README's table: H = 256, --kernel auto
    for mask, label in (
        ("magnitude", "magnitude (irregular)"),
        ("expander", "expander (row-regular)"),
        ("block-expander-8x1", "block-expander 8x1 (blocks)"),
    ):
        cells = [label]
        for sp in ("90%", "95%", "98%"):
            r = by_case.get((256, f"{mask} {sp} auto"))
            cells.append(
                f"{r['ns'] / 1000:.1f} ({r['speedup_vs_dense']:.1f}x; {r['ratio_to_limit']:.2f} / "
                f"{r['ratio_to_limit_with_cell']:.2f})"
                if r
                else "-"
            )
        r = by_case.get((256, f"{mask} 90% auto"))
        cells.append(f"{r['bytes_per_nonzero']:.1f}" if r else "-")
        readme.append(cells)
    dense256 = by_case.get((256, "dense"))
    if dense256 and any(c != "-" for row in readme for c in row[1:]):
        md += (
            f"\n\n### README table (H = 256, `--kernel auto`; dense {dense256['ns'] / 1000:.1f} µs)\n\n"
            + markdown_table(
                ["mask", "90% µs (speed-up; ratio to limit / to limit + cell)", "95%", "98%", "B/nnz at 90%"], readme
            )
        )
    before_after = []
    for r in payload_rows:
        old = by_case.get((r["H"], r["case"] + " [baseline]"))
        if old is None or r["baseline"]:
            continue
        before_after.append(
            [
                r["H"],
                r["case"],
                f"{old['speedup_vs_dense']:.2f}x / {r['speedup_vs_dense']:.2f}x",
                f"{old['ns'] / 1000:.2f} / {r['ns'] / 1000:.2f}",
                f"{old['bytes_per_nonzero']:.2f} / {r['bytes_per_nonzero']:.2f}",
                f"{old['ratio_to_limit']:.2f} / {r['ratio_to_limit']:.2f}",
                f"{old['ratio_to_limit_with_cell']:.2f} / {r['ratio_to_limit_with_cell']:.2f}",
            ]
        )
    if before_after:
        md += f"\n\n### Before / after (baseline checkout `{args.baseline}` in the same program)\n\n" + markdown_table(
            ["H", "case", "speed-up vs own dense", "µs", "B/nnz", "ratio to limit", "ratio to limit + cell"],
            before_after,
        )
    write_results(args.name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
