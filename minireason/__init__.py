"""minireason: a small, readable reimplementation of Kim et al. (2025), "Reinforcement Learning vs.
Distillation: Understanding Accuracy and Capability in LLM Reasoning"."""

import sys

from .files import describe_os_error


def run_cli(main) -> None:
    """Run a script's main() inside the one error boundary every script has: bad input (a ValueError naming
    the flag, file, key or line) and file-system trouble (an OSError: missing, unreadable or unwritable
    files, a full disk) end the run with one line and exit status 1, never a traceback. Finished work is
    safe either way: every file a run writes is written atomically (files.py)."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: finished work is kept (a training run continues with --resume)")
    except OSError as e:
        sys.exit(f"error: {describe_os_error(e)}")
    except ValueError as e:
        sys.exit(f"error: {e}")
