"""Where a C build's step goes: each statement of ``<prefix>_step`` (and of its tail) timed alone.

Reads a C artifact directory written by ``edgeprune compile --target c`` (or the benchmarks'
``build_c``), copies every runtime call of the step (bias copies, mat-vec kernels, the cell, the
head) into a function of its own, links them with the build's own sources into one program and
times the whole step and each statement in interleaved rounds (fastest round of each; a full step
between rounds keeps the state realistic). The parts do not add up exactly to the step (each runs
warm, alone), but they say which kernel call or fixed cost to work on.

    python benchmarks/c/step_profile.py ARTIFACT_DIR [--prefix model] [--rounds 300] [--cflags="-DFOO"]

Developer tool: it prints, it writes no result file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the checkout's edgeprune, installed or not
    sys.path.insert(0, str(ROOT))

from edgeprune.backends.c import costs  # noqa: E402

MAIN = r"""
#include <stdio.h>
#include <time.h>
static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
typedef void (*part_t)(@P@_state_t *, const float *, float *);
int main(int argc, char **argv)
{
    static @P@_state_t s;
    static float x[@IN@ + 1], out[@OUT@ + 1];
    static const part_t parts[] = {@PARTS@};
    static const char *names[] = {@NAMES@};
    const int n = (int)(sizeof parts / sizeof parts[0]), rounds = argc > 1 ? atoi(argv[1]) : 300;
    double best[sizeof parts / sizeof parts[0]];
    int i, r, k;
    for (i = 0; i < @IN@; ++i)
        x[i] = 0.01f * (float)(i % 50) - 0.2f;
    for (i = 0; i < n; ++i)
        best[i] = 1e30;
    @P@_reset(&s);
    for (r = 0; r < rounds; ++r)
        for (i = 0; i < n; ++i) {
            double t0 = now_ns(), t;
            for (k = 0; k < 200; ++k)
                parts[i](&s, x, out);
            t = (now_ns() - t0) / 200;
            best[i] = t < best[i] ? t : best[i];
            @P@_step(&s, x, out);
        }
    for (i = 0; i < n; ++i)
        printf("%9.1f ns  %s\n", best[i], names[i]);
    return 0;
}
"""


def statements(source: str, function: str) -> list[str]:
    """The runtime calls (``ep_...;``) in the body of ``function`` in generated C."""
    start = re.search(rf"^(?:static )?void {re.escape(function)}\(", source, re.M)
    if not start:
        return []
    body, depth, i = [], 0, source.index("{", start.end())
    for j in range(i, len(source)):
        depth += {"{": 1, "}": -1}.get(source[j], 0)
        if depth == 0:
            body = source[i + 1 : j]
            break
    return [line.strip() for line in body.splitlines() if line.strip().startswith("ep_")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--prefix", default="model")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--cflags", default="", help="extra compiler flags, e.g. '-mprefer-vector-width=512'")
    args = ap.parse_args()
    p, d = args.prefix, args.artifact.resolve()
    extra = args.cflags.split()
    if not (d / f"{p}.c").is_file() or not (d / "edgeprune_rt.c").is_file():
        raise SystemExit(f"{d}: not a C artifact directory with prefix '{p}' (no {p}.c / edgeprune_rt.c)")
    source = (d / f"{p}.c").read_text()
    header = (d / f"{p}.h").read_text()
    sizes = {k: int(v) for k, v in re.findall(rf"#define {p.upper()}_(INPUT|OUTPUT)_SIZE (\d+)", header)}
    parts = [("step", f"{p}_step(s, x, out);")]
    parts += [(st, st) for st in statements(source, f"{p}_step")]
    parts += [(f"[tail] {st}", st) for st in statements(source, "output")]
    functions = [
        f"static void part{i}({p}_state_t *s, const float *x, float *out)\n"
        f"{{\n    float *const a = s->arena;\n    (void)a; (void)x; (void)out;\n    {code}\n}}"
        for i, (_, code) in enumerate(parts)
    ]
    program = (
        source
        + "\n#include <stdlib.h>\n"
        + "\n".join(functions)
        + MAIN.replace("@P@", p)
        .replace("@IN@", str(sizes["INPUT"]))
        .replace("@OUT@", str(sizes["OUTPUT"]))
        .replace("@PARTS@", ", ".join(f"part{i}" for i in range(len(parts))))
        .replace("@NAMES@", ", ".join('"' + name.replace('"', "'")[:90] + '"' for name, _ in parts))
    )
    flags = ["-O2", "-ffp-contract=fast", "-march=native", "-std=gnu11"]
    tuned, why = costs.host_gather_flags(["cc"], flags)
    with tempfile.TemporaryDirectory(prefix="edgeprune-profile-") as tmp:
        (Path(tmp) / "profile.c").write_text(program)
        exe = Path(tmp) / "profile"
        subprocess.run(
            ["cc", *flags, *tuned, *extra, f"-I{d}", "profile.c", str(d / "edgeprune_rt.c"), "-lm", "-o", exe],
            cwd=tmp,
            check=True,
        )
        print(f"{' '.join(flags + tuned + extra)} ({why})")
        print(subprocess.run([str(exe), str(args.rounds)], capture_output=True, text=True, check=True).stdout, end="")


if __name__ == "__main__":
    main()
