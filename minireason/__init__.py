"""minireason: a small, readable reimplementation of Kim et al. (2025), "Reinforcement Learning vs.
Distillation: Understanding Accuracy and Capability in LLM Reasoning"."""

import signal
import sys

from .files import describe_os_error


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
