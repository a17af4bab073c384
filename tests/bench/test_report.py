import matplotlib.image as mpimg
import pytest

from edgeprune.bench import bench, report
from edgeprune.bench.devices import parse

from .conftest import quick_settings


@pytest.fixture(scope="module")
def doc(ir_artifacts):
    return bench(str(ir_artifacts), parse("local"), quick_settings())


def test_table_and_markdown_show_every_runtime(doc):
    rows = report.rows(doc)
    assert [r[0] for r in rows] == ["torch", "ir"]
    torch_row = rows[0]
    p50 = doc["runtimes"][0]["latency"]["step"]["p50"]
    assert torch_row[2] == report.fmt_latency({"unit": "ns", "p50": p50})
    md = report.markdown(doc)
    assert md.count("\n| torch |") == 1 and "| runtime | path | step p50 |" in md
    assert "Timing an empty Python call costs" in md
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(report.console_table(doc))
    text = console.export_text()
    assert "torch" in text and "peak RSS" in text


def test_units_are_never_mixed():
    assert report.fmt_latency({"unit": "ns", "p50": 1500.0}) == "1.5 µs"
    assert report.fmt_latency({"unit": "ns", "p50": 2.5e6}) == "2.50 ms"
    assert report.fmt_latency({"unit": "instructions", "p50": 12345.0}) == "12.3k insn"
    assert report.fmt_latency({"unit": "cycles", "p50": 812.0}) == "812 cyc"


def test_report_directory(doc, tmp_path):
    written = report.write_report(doc, tmp_path / "rep")
    assert {p.name for p in written} == {"report.md", "latency.png", "result.json"}
    image = mpimg.imread(tmp_path / "rep" / "latency.png")
    assert image.shape[0] > 100 and image.shape[1] > 300 and image.std() > 0  # a real picture, not blank


def test_markdown_tables_keep_their_column_count(doc):
    """Before: the header's 'max|Δ| vs ref' was unescaped, 13 header cells for 11 in every row."""

    def cells(line: str) -> int:
        return len(line.replace("\\|", "").strip().strip("|").split("|"))

    for block in report.markdown(doc).split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({cells(r) for r in rows}) == 1, block


def test_step_and_sequence_latencies_never_share_an_axis(doc, tmp_path, monkeypatch):
    """Before: a runtime timed only on whole sequences was drawn on the 'step latency' axis."""
    import copy

    mixed = copy.deepcopy(doc)
    seq_only = mixed["runtimes"][1]
    seq_only["latency"] = {"sequence": dict(seq_only["latency"].get("sequence") or seq_only["latency"]["step"])}
    labels = []
    plt = report.pyplot()
    real = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = real(*args, **kwargs)
        for ax in axes.flat:
            original = ax.set_xlabel
            ax.set_xlabel = lambda text, *a, _o=original, **k: (labels.append(text), _o(text, *a, **k))[1]
        return fig, axes

    monkeypatch.setattr(plt, "subplots", spy)
    report.latency_chart(mixed, tmp_path / "l.png")
    assert sorted(label.split(" latency")[0] for label in labels) == ["sequence", "step"]
