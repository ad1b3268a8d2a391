"""How long the learner's read-first path is: the files the README's "Read this first" list names, line by line.

    python benchmarks/read_path.py          # a table of the path's files and their lines; exit 1 above the limit

The list is read from the README itself (each numbered item's first file in backticks), so the count follows the
path as the README gives it. The limit, 1,500 lines, is what a learner can read in one sitting: GRPO-Zero puts
model, sampler, GRPO and reward in 1,161.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1500


def read_first_files(readme: Path = ROOT / "README.md") -> list[Path]:
    """The files of the README's read-first list, in its order."""
    text = readme.read_text()
    start = text.index("## Read this first")
    section = text[start : text.find("\n## ", start + 1)]
    names = re.findall(r"^\d+\. `([^`]+\.py)`", section, re.M)
    if not names:
        raise ValueError(f"{readme}: no numbered files under 'Read this first'")
    return [ROOT / name for name in names]


def main() -> int:
    files = read_first_files()
    counts = [(f.relative_to(ROOT), len(f.read_text().splitlines())) for f in files]
    print("| file | lines |\n|---|---|")
    for name, n in counts:
        print(f"| `{name}` | {n} |")
    total = sum(n for _, n in counts)
    print(f"| **{len(counts)} files** | **{total}** (limit {LIMIT}) |")
    return 0 if total <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
