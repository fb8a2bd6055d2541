"""`mimic-edge COMMAND`: one module per subcommand in this package, each with
`add_parser(subparsers)` that registers its parser and sets `run=`. Subcommand modules keep
their imports light (torch and friends inside `run`), so `--help` stays fast.

Errors a user can fix (MimicEdgeError) print one line and exit 1; Ctrl-C exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading
import warnings

from mimic_edge import __version__
from mimic_edge.errors import MimicEdgeError
from mimic_edge.extras import COMMAND_EXTRAS, extra_providing, install_hint, require_extra

ORDER = ["train", "eval", "export", "bench", "predict", "serve"]  # help order; others follow alphabetically


def _commands() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [c for c in ORDER if c in found] + sorted(found - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mimic-edge",
        description="Train, export, benchmark and run the MIMIC multimodal emotion-recognition model.",
        epilog="Run 'mimic-edge COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"mimic-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _commands():
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C, so that what Ctrl-C cleans up (staging folders, temp files,
    locks) is cleaned up on a `kill` or a container stop too."""


def _terminate(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    on_term = threading.current_thread() is threading.main_thread()  # signal handlers: the main thread only
    previous = signal.signal(signal.SIGTERM, _terminate) if on_term else None
    try:
        if args.command in COMMAND_EXTRAS:
            require_extra(COMMAND_EXTRAS[args.command], "this command")
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return args.run(args) or 0
    except MimicEdgeError as e:
        print(f"mimic-edge {args.command}: error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:  # an optional module a path of the job needs (a checkpoint: torch)
        extra = extra_providing((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"mimic-edge {args.command}: error: this needs {e.name}, not installed here: {install_hint(extra)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"mimic-edge {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130  # 128 + the signal's number, as a shell reports it
    finally:
        if on_term:
            signal.signal(signal.SIGTERM, previous)


def _one_line_warning(command: str):
    """Warnings (e.g. labels far outside the dataset's scale) as one line, like errors."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"mimic-edge {command}: warning: {message}", file=sys.stderr)
    return show
