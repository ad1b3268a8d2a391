"""Training curves: a run's log.jsonl drawn against the step, as <run>/curves.png.

    python -m minireason.curves runs/rl [runs/distill ...]     # redraw any run folder

Each panel is one logged quantity that the run has: reward, held-out pass@1, policy entropy, response
length, loss and gradient norm (RL); loss, gradient norm and learning rate (SFT). The training
scripts draw it when they finish, so a resumed run redraws it too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .files import written_whole
from .report import pyplot

PANELS = (  # (log key, title)
    ("reward_mean", "mean reward (+1 / -1)"),
    ("held_out_pass@1", "held-out pass@1"),
    ("entropy", "policy entropy (nats / token)"),
    ("response_tokens_mean", "response length (tokens)"),
    ("loss", "loss"),
    ("grad_norm", "gradient norm (before clipping)"),
    ("lr", "learning rate"),
)


def read_log(path: Path) -> list[dict]:
    """The rows of a log.jsonl; a torn last line is skipped."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def draw_curves(run_dir: str | Path) -> Path:
    """Draw <run_dir>/log.jsonl into <run_dir>/curves.png (written to a temporary name, then renamed)."""
    run_dir = Path(run_dir)
    rows = read_log(run_dir / "log.jsonl")
    panels = [(key, title) for key, title in PANELS if any(key in r for r in rows)]
    if not panels:
        raise ValueError(f"{run_dir}/log.jsonl: nothing to draw (no logged steps)")
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    plt = pyplot()
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, (key, title) in zip(axes.flat, panels):
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, ms=3, lw=1.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(str(run_dir), fontsize=10)
    fig.tight_layout()
    out = run_dir / "curves.png"
    with written_whole(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m minireason.curves RUN_DIR [RUN_DIR ...]")
    for arg in sys.argv[1:]:
        try:
            print(draw_curves(arg))
        except (OSError, ValueError) as e:
            sys.exit(f"error: {e}")
