"""What gets benchmarked: the torch baseline and every compiled artifact, found through the backend contract.

A benchmark source is a checkpoint (compiled here, once per target and variant, into a work
directory) or a directory that ``edgeprune compile`` wrote (``compile.json`` at its root, or one
per sub-directory). Each artifact listed there becomes a runtime, run by
``backends.get(target).runner(...)``: a new backend appears in ``bench`` as soon as it exists.

Variants: some backends make different files for the same model depending on an option (the C
backend's kernel choice, LiteRT dense or sparse). ``bench`` compiles one artifact per value of
the axes in ``DEFAULT_VARIANT_AXES`` that the backend declares, so kernels are compared side by
side; ``--variants`` overrides this.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import backends
from ..backends.base import Artifact
from ..compiler import REPORT_NAME
from ..errors import EdgepruneError

# per backend: the option whose values are compiled side by side by default, and which values
# (None = every declared choice). The first option a backend declares wins.
DEFAULT_VARIANT_AXES: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "c": (("kernel", None),),
    "tflite": (("tflite_weights", ("dense", "sparse")),),
}


@dataclass
class RuntimeSpec:
    """One thing to measure."""

    id: str  # unique in a run: "torch", "ir", "c[kernel=csr]", "onnx/step.onnx", ...
    kind: str  # "torch" (the checkpoint in PyTorch), "peer" (it in another runtime) or "artifact" (compiled)
    runtime: str  # what executes it ("torch", "onnxruntime", "numpy reference", ...)
    modes: tuple[str, ...]
    target: str | None = None
    artifact: dict | None = None  # Artifact.to_dict() as recorded in compile.json
    directory: str | None = None  # the backend's output directory (where the artifact's files are)
    variant: dict = field(default_factory=dict)  # compile options that produced it
    checkpoint: str | None = None
    verified: bool = True  # compile ran it on this host (False: no runtime here, e.g. firmware sources)
    nnz: int | None = None  # nonzeros (recurrent + head) of the model it was compiled from
    python: str | None = None  # the interpreter its worker runs in (None: this one); a peer's may differ

    def make_artifact(self) -> Artifact:
        a = self.artifact or {}
        return Artifact(
            a["name"],
            a["target"],
            a.get("runtime", ""),
            tuple(a.get("modes", ("sequence",))),
            list(a.get("files", [])),
            dict(a.get("info", {})),
        )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "runtime": self.runtime,
            "modes": list(self.modes),
            "target": self.target,
            "artifact": (self.artifact or {}).get("name"),
            "variant": self.variant,
        }


def torch_spec(checkpoint: str) -> RuntimeSpec:
    return RuntimeSpec(
        "torch", "torch", "torch (dense, fused kernels)", ("sequence", "step"), checkpoint=str(checkpoint)
    )


def peer_specs(checkpoint: str, names: list[str]) -> list[RuntimeSpec]:
    """The peer runtimes (bench/peers.py) asked for, on the checkpoint's dense model, streaming."""
    from .peers import PEERS, peers_python

    return [
        RuntimeSpec(n, "peer", PEERS[n].runtime, ("step",), checkpoint=str(checkpoint), python=peers_python())
        for n in names
    ]


def _label(target: str, variant: dict) -> str:
    """``c``, ``c[csr]`` (one option: its value; the option is in ``variant``), ``c[a=1,b=2]``."""
    if not variant:
        return target
    if len(variant) == 1:
        return f"{target}[{next(iter(variant.values()))}]"
    return target + "[" + ",".join(f"{k}={v}" for k, v in sorted(variant.items())) + "]"


def compile_reports(root: Path) -> list[Path]:
    """``compile.json`` files of a compile output: at the root, or one per sub-directory."""
    root = Path(root)
    if (root / REPORT_NAME).is_file():
        return [root / REPORT_NAME]
    found = sorted(p for p in root.glob(f"*/{REPORT_NAME}") if p.is_file())
    if not found:
        raise EdgepruneError(
            f"{root}: no {REPORT_NAME} here or in its sub-directories (is it an 'edgeprune compile' output?)"
        )
    return found


def specs_from_compile_dir(root: Path) -> list[RuntimeSpec]:
    specs: list[RuntimeSpec] = []
    for report_path in compile_reports(root):
        try:
            doc = json.loads(report_path.read_text())
        except (OSError, ValueError) as e:
            raise EdgepruneError(f"{report_path}: unreadable ({e})") from None
        if doc.get("format") != "edgeprune.compile":
            raise EdgepruneError(f"{report_path}: not an edgeprune compile report")
        variant = dict(doc.get("bench_variant", {}))
        artifacts = doc.get("artifacts", [])
        verified_labels = {v.get("artifact") for v in doc.get("verification", [])}
        per_target: dict[str, int] = {}
        for a in artifacts:
            per_target[a["target"]] = per_target.get(a["target"], 0) + 1
        for a in artifacts:
            directory = report_path.parent / a.get("directory", ".")
            target = a["target"]
            rid = _label(target, variant)
            if per_target[target] > 1:
                rid += "/" + a["name"]
            sub = a.get("directory", ".")
            label = a["name"] if sub in (".", "") else f"{sub}/{a['name']}"
            specs.append(
                RuntimeSpec(
                    rid,
                    "artifact",
                    a.get("runtime", target),
                    tuple(a.get("modes", ["sequence"])),
                    target=target,
                    artifact=a,
                    directory=str(directory),
                    variant=variant,
                    verified=label in verified_labels,
                    nnz=doc.get("model", {}).get("nnz_with_head"),
                )
            )
    seen: dict[str, int] = {}
    for s in specs:  # two compile dirs may hold the same target: keep ids unique
        if s.id in seen:
            seen[s.id] += 1
            s.id = f"{s.id}#{seen[s.id]}"
        else:
            seen[s.id] = 1
    return specs


def dedupe(specs: list[RuntimeSpec]) -> tuple[list[RuntimeSpec], list[dict]]:
    """Drop artifacts whose files are byte-identical to an earlier one of the same target.

    Variants of one option often leave some files unchanged (LiteRT dense/sparse share the
    TFLite Micro file): measuring them twice would only add rows.
    """
    import hashlib

    kept, skipped, seen = [], [], {}
    for s in specs:
        if s.kind != "artifact" or not s.directory:
            kept.append(s)
            continue
        digest = hashlib.sha256()
        try:
            for f in sorted(s.artifact.get("files") or [s.artifact["name"]]):
                digest.update(f.encode() + b"\0" + (Path(s.directory) / f).read_bytes())
        except OSError:
            kept.append(s)
            continue
        key = (s.target, s.artifact["name"], digest.hexdigest())
        if key in seen:
            skipped.append({"id": s.id, "reason": f"same files as {seen[key]}"})
        else:
            seen[key] = s.id
            kept.append(s)
    return kept, skipped


def parse_variants(spec: str | None) -> dict[str, list[dict]] | None:
    """``"c:kernel=dense,csr;tflite:sparse=yes,no"`` -> {target: [options, ...]} (one compile each)."""
    if not spec:
        return None
    out: dict[str, list[dict]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        m = re.fullmatch(r"([\w-]+)(?::([\w-]+)=(.+))?", part)
        if not m:
            raise EdgepruneError(f"--variants: cannot read '{part}' (expected TARGET or TARGET:OPTION=V1,V2)")
        target, option, values = m.group(1), m.group(2), m.group(3)
        backend = backends.get(target)
        if option is None:
            out.setdefault(target, []).append({})
            continue
        option = option.replace("-", "_")
        declared = {o.name: o for o in backend.options}
        if option not in declared:
            have = ", ".join(sorted(declared)) or "none"
            raise EdgepruneError(f"--variants: target {target} has no option '{option}' (its options: {have})")
        for v in (v.strip() for v in values.split(",")):
            if v:
                declared[option].convert(v, f"target {target}")  # the backend's own check of the value
                out.setdefault(target, []).append({option: v})
    return out


def default_variants(targets: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in targets:
        backend = backends.get(t)
        declared = {o.name: o for o in backend.options}
        out[t] = [{}]
        for name, values in DEFAULT_VARIANT_AXES.get(t, ()):
            option = declared.get(name)
            if option is None or not option.choices:
                continue
            chosen = [v for v in (values or option.choices) if v in option.choices]
            if chosen:
                out[t] = [{name: v} for v in chosen]
                break
    return out


def available_targets() -> list[str]:
    return [n for n in backends.names() if backends.get(n).unavailable() is None]


def compile_checkpoint(
    checkpoint: str, work_dir: Path, variants: dict[str, list[dict]], X_verify, described: str, log=lambda msg: None
) -> tuple[list[RuntimeSpec], list[dict]]:
    """Compile ``checkpoint`` once per (target, variant) into ``work_dir``; return the runtimes and failures.

    A variant that fails to compile (e.g. a kernel that does not support this model) is recorded
    and skipped; the others still run.
    """
    from ..compiler import compile_source, load_source
    from ..fileio import dumps_json

    source = load_source(checkpoint)
    failures = []
    for target, options_list in variants.items():
        for options in options_list:
            label = _label(target, options)
            out = Path(work_dir) / re.sub(r"[^\w.=,-]+", "_", label)
            try:
                compile_source(
                    source, [target], out, options=dict(options), X_verify=X_verify, data_description=described
                )
            except EdgepruneError as e:
                failures.append({"id": label, "stage": "compile", "error": str(e)})
                log(f"{label}: not benchmarked ({e})")
                continue
            report = out / REPORT_NAME
            doc = json.loads(report.read_text())
            doc["bench_variant"] = options
            report.write_text(dumps_json(doc))
    specs = specs_from_compile_dir(work_dir) if any(Path(work_dir).glob(f"*/{REPORT_NAME}")) else []
    return specs, failures


def select(specs: list[RuntimeSpec], patterns: list[str] | None, skipped: list[dict] = ()) -> list[RuntimeSpec]:
    """Keep runtimes whose id or target matches one of ``patterns`` (shell-style globs). A pattern that
    names only ``skipped`` runtimes (a target that declined the model, a variant that did not compile)
    is not an error: the skip and its reason are in the results."""
    if not patterns:
        return specs
    import fnmatch

    skipped_ids = [s["id"] for s in skipped]
    patterns = [
        p
        for p in patterns
        if not any(fnmatch.fnmatchcase(i, p) or i.split("[")[0] == p for i in skipped_ids)
        or any(fnmatch.fnmatchcase(s.id, p) or s.target == p for s in specs)
    ]
    chosen = [
        s
        for s in specs
        if any(fnmatch.fnmatchcase(s.id, p) or s.target == p or (p == "torch" and s.kind == "torch") for p in patterns)
        or s.kind == "peer"  # asked for by --peers
    ]
    unmatched = [
        p
        for p in patterns
        if not any(fnmatch.fnmatchcase(s.id, p) or s.target == p or (p == "torch" and s.kind == "torch") for s in specs)
    ]
    if unmatched:
        have = ", ".join(s.id for s in specs) or "none"
        raise EdgepruneError(f"--runtimes: '{unmatched[0]}' matches no runtime (available: {have})")
    return chosen
