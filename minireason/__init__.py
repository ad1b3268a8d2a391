"""minireason: a small, readable reimplementation of Kim et al. (2025), "Reinforcement Learning vs.
Distillation: Understanding Accuracy and Capability in LLM Reasoning"."""

import sys


def run_cli(main) -> None:
    """Run a script's main(); bad input (a ValueError or missing file, each naming what is wrong) ends
    the run with its message (exit status 1) instead of a traceback."""
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
