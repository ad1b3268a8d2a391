"""The command line of every script: a config dataclass's fields are its flags, and one error boundary.

A script's flags are the fields of one config dataclass, each declared with `flag(default, help, ...)`;
`config_parser` turns them into an argparse parser whose bad values end the run with one line ("error:
argument --k: must be >= 1, got 0"). `run_cli` runs a script's main() so that bad input, file-system
trouble, Ctrl-C and SIGTERM end it with one line and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from dataclasses import MISSING, field, fields
from pathlib import Path

from .files import describe_os_error


def flag(default, help: str, choices=None, low=None, high=None):
    """A config field that is also a command-line flag (`low`, `high`: the smallest and largest values allowed)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(f) -> str:
    """A field's type as written: "int", "str | None", "list[str]" (annotations may be strings or types)."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _flag_type(f):
    kind = {"int": int, "float": float}.get(_type_name(f).replace(" | None", ""), str)
    low, high = f.metadata.get("low"), f.metadata.get("high")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value
    return parse


class _OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad flag ends the run with one line (no usage block): "error: argument --k: ..."."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def config_parser(cls, description: str, run_flags: bool = True) -> argparse.ArgumentParser:
    """An argparse parser with one flag per config field; flags not given stay absent (argparse.SUPPRESS).
    run_flags adds a training run's --resume and --overwrite."""
    ap = _OneLineErrors(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                        argument_default=argparse.SUPPRESS)
    if run_flags:
        ap.add_argument("--resume", type=Path, help="a run folder or one of its checkpoints: continue it exactly")
        ap.add_argument(
            "--overwrite", action="store_true", help="start afresh in a used --out (the old run is moved aside)"
        )
    for f in fields(cls):
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        default = f" (default: {f.default})" if f.default is not MISSING else ""
        if _type_name(f) == "bool":
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, help=meta["help"] + default)
        elif _type_name(f).startswith("list"):
            ap.add_argument(flag, action="append", help=meta["help"] + " (repeatable)")
        else:
            ap.add_argument(flag, type=_flag_type(f), choices=meta.get("choices"), help=meta["help"] + default)
    return ap


class Terminated(BaseException):
    """SIGTERM, raised wherever the program is (as Ctrl-C raises KeyboardInterrupt), so that it ends in words."""


def _raise_terminated(signum, frame):
    raise Terminated


def run_cli(main) -> None:
    """Run a script's main() inside the one error boundary every script has: bad input (a ValueError naming
    the flag, file, key or line) and file-system trouble (an OSError: missing, unreadable or unwritable
    files, a full disk) end the run with one line and exit status 1, never a traceback; so do Ctrl-C and
    SIGTERM. Finished work is safe either way: every file a run writes is written atomically (files.py)."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        main()
    except (KeyboardInterrupt, Terminated) as e:
        how = "interrupted" if isinstance(e, KeyboardInterrupt) else "terminated (SIGTERM)"
        sys.exit(f"{how}: finished work is kept (a training run continues with --resume)")
    except OSError as e:
        sys.exit(f"error: {describe_os_error(e)}")
    except ValueError as e:
        sys.exit(f"error: {e}")
