"""The ``edgeprune`` command line. Each command lives in its own module of this package."""

from __future__ import annotations

import os
import sys
from importlib import import_module

import click

from .. import __version__
from ..errors import EdgepruneError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgeprune")
def cli() -> None:
    """Prune recurrent networks and compile them into artifacts that are fast and small on edge devices."""


COMMAND_MODULES = ("train", "prune", "inspect", "compile", "bench", "sweep", "demo")
for _name in COMMAND_MODULES:
    import_module(f"{__name__}.{_name}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes one line on stderr and a non-zero exit code."""
    debug = bool(os.environ.get("EDGEPRUNE_DEBUG"))
    try:
        result = cli.main(args=argv, prog_name="edgeprune", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        print("edgeprune: aborted", file=sys.stderr)
        code = 130
    except click.UsageError as e:
        command = e.ctx.command_path if e.ctx else "edgeprune"
        print(f"edgeprune: error: {e.format_message()} (see '{command} --help')", file=sys.stderr)
        code = 2
    except click.ClickException as e:
        print(f"edgeprune: error: {e.format_message()}", file=sys.stderr)
        code = e.exit_code or 1
    except EdgepruneError as e:
        if debug:
            raise
        print(f"edgeprune: error: {e}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("edgeprune: interrupted", file=sys.stderr)
        code = 130
    except OSError as e:
        if debug or e.filename is None or not e.strerror:
            if debug:
                raise
            print(
                f"edgeprune: internal error: {type(e).__name__}: {e} (set EDGEPRUNE_DEBUG=1 for the traceback)",
                file=sys.stderr,
            )
            code = 70
        else:  # a path the system refused (read-only, not a directory, disk full): the user's to fix, not a bug
            print(f"edgeprune: error: {e.filename}: {e.strerror}", file=sys.stderr)
            code = 1
    except Exception as e:  # a bug: still one line unless asked for the traceback
        if debug:
            raise
        print(
            f"edgeprune: internal error: {type(e).__name__}: {e} (set EDGEPRUNE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        code = 70
    return code


def run() -> None:
    code = main()
    _quiet_after_the_last_line()
    sys.exit(code)


def _quiet_after_the_last_line() -> None:
    """What we print is all the user reads: once it is flushed, the process's stdout and stderr go to
    /dev/null for interpreter shutdown, where native libraries' threads (a Ray driver's core worker)
    still run their exit paths. Only for the process entry point: ``main`` called in-process keeps its
    streams. (The native stack once seen after a SIGTERM'd sweep was not this: Ray's core crashing on a
    force-cancelled task, before our line: see sweep/executors.py.)"""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed stream: nothing more to say anyway
            pass
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass
