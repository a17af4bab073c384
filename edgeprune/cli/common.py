"""Helpers shared by the commands: console output, comma-list flags and plugin-declared options."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click
from rich.console import Console
from rich.table import Table

from ..errors import EdgepruneError
from ..options import Option, merged

# Piped output (a log, CI, `| less`) gets a console wide enough that tables never wrap their cells; a
# terminal keeps its own width.
PIPED_WIDTH = 240
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH, soft_wrap=True)


def csv_list(value: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None for no value or only commas (= the flag's default)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def float_list(value: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in csv_list(value) or []]
    except ValueError:
        raise EdgepruneError(f"{flag} must be comma-separated numbers, got '{value}'") from None


def int_list(value: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in csv_list(value) or []]
    except ValueError:
        raise EdgepruneError(f"{flag} must be comma-separated integers, got '{value}'") from None


def plugin_options(groups: Iterable[tuple[str, Iterable[Option]]]):
    """Click options for every option declared by the given plugins (methods or backends).

    All default to None (= not given), so each plugin applies its own default.
    """
    entries = merged(groups)

    def decorate(f):
        for opt, owners in reversed(entries):
            help_text = f"{opt.help} [{', '.join(owners)}]"
            if opt.type is bool:
                negative = "--no-" + opt.flag[2:]
                f = click.option(f"{opt.flag}/{negative}", opt.name, default=None, help=help_text)(f)
            elif opt.choices:
                f = click.option(opt.flag, opt.name, type=click.Choice(opt.choices), default=None, help=help_text)(f)
            else:
                f = click.option(opt.flag, opt.name, type=opt.type, default=None, help=help_text)(f)
        return f

    decorate.names = {opt.name for opt, _ in entries}
    return decorate


def split_options(kwargs: dict, names: set[str]) -> tuple[dict, dict]:
    plugin = {k: v for k, v in kwargs.items() if k in names}
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return plugin, rest


def show_progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def table(title: str | None, columns: list[str], rows: Iterable[Iterable]) -> Table:
    """A rich table; columns whose cells all look numeric are right-aligned."""
    cells = [[_fmt(v) for v in row] for row in rows]
    t = Table(title=title, title_justify="left", header_style="bold")
    for i, c in enumerate(columns):
        numeric = bool(cells) and all(_looks_numeric(row[i]) for row in cells)
        t.add_column(c, justify="right" if numeric else "left")
    for row in cells:
        t.add_row(*row)
    return t


def _looks_numeric(s: str) -> bool:
    return s == "-" or (bool(s) and (s[0].isdigit() or (s[0] in "+-." and len(s) > 1)))


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def threads_option(f):
    """``--threads``: torch's threads for training/fine-tuning, set before torch runs."""
    return click.option(
        "--threads",
        type=int,
        default=None,
        help="torch threads for training (default: this machine's cores, at most 4 and 1 per million parameters; "
        "the same seed gives the same bytes only with the same thread count)",
    )(f)
