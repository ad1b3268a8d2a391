"""The default world in detail: one table set and one figure per experiment of the paper, from the claim lab's
evaluations of that world (what the toy study showed, folded into the lab; claims_report.py puts it on the page).

Reads <lab>/WORLD/eval/metrics.json (the test set: base, RL seeds, the GRPO ablations, every distillation, the
teacher) and <lab>/WORLD/eval-train/metrics.json (a train subset: the E1 and E4 models), which claim_lab.py's stage 6
writes, and returns the page's markdown with the figures drawn into a folder. Each number stands beside the paper's
number it is judged against (`PAPER`). Bins are the base model's success count X out of k. RL runs named rl-seedN
are shown one by one and as mean ± sd over seeds. The tables and plots themselves are report.py's, the ones every
`evaluate.py` report uses; claims_report.py imports this file's helpers (`PAPER`, `seeds`, `mean_sd`, `points`).

The toy world adds one lens the paper cannot have: every question's knowledge is known. A question
is "hard-gap" if its solution needs a fact the base's tutor never states correctly, "partial-fact" if
it needs a fact stated correctly only sometimes, and "other" otherwise. The tutor is read from the base
model's folder (config.json's "minireason" hints), so the split follows the world's base.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minireason.report import (bin_table, change, draw_transitions, figure, length_table, pass_table,  # noqa: E402
                               plot_pass_at_k, plot_per_bin, transition_table)
from minireason.tasks import toy_split  # noqa: E402
from minireason.lab_world import KNOWLEDGE_GROUPS, LabTutor, knowledge_group  # noqa: E402

# The paper's numbers (Kim et al. 2025, arXiv 2505.14216; Qwen2.5-1.5B-Math on MATH), with where each is printed.
PAPER = {
    "E1": ("Table 3, 1.5B, RL − base in points (k = 256): accuracy / maj@256 / pass@256",
           {"test": (+13.9, +8.8, -0.2), "train": (+16.9, +5.3, -0.1)}),
    "E2": ("Fig. 1, 1.5B on MATH-500, RL − base per base bin in points, bins [0] [1-4] [5-16] [17-64] [65-128] "
           "[129-256] of 256 samples", (+0.5, +0.6, +8.8, +24.7, +36.6, +19.8)),
    "E4": ("Table 4, 1.5B, test accuracy change over the student before SFT, in points",
           {"base ← base": +0.8, "rl ← rl": -0.4, "base ← rl": +11.6}),
    "E5": ("Fig. 3 and 14, 1.5B: mean characters base / RL, and reflection words per response",
           "all 707 / 643, correct 539 / 528, incorrect 974 / 899; reflection words 0.86-0.99 / 0.59-0.67"),
}
# The models each evaluation must hold before the section is written (besides rl-seed0, rl-seed1, ...)
TEST_MODELS = ("base", "teacher", "rl-seed0", "rl-drgrpo", "rl-kl", "base-from-base", "rl-from-rl", "base-from-rl",
               "reasoning-only", "all-questions")
TRAIN_MODELS = ("base", "rl-seed0", "base-from-base", "rl-from-rl", "base-from-rl")


def seeds(metrics: dict, prefix: str = "rl-seed") -> list[str]:
    """The models of one family of runs over seeds (rl-seed0, rl-seed1, ...; or process-seedN)."""
    return [n for n in metrics["models"] if n.startswith(prefix)]


def mean_sd(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():+.1f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.1f}"


def points(x) -> str:
    return f"{100 * x:.1f}"


def signed_points(x) -> str:
    return f"{100 * x:+.1f}"


def knowledge_labels(problems: list, tutor: LabTutor) -> list[str]:
    """Each question's knowledge group (lab_world.KNOWLEDGE_GROUPS) under a world's tutor."""
    return [knowledge_group(p, tutor) for p in problems]


def knowledge_groups(split: str, n: int, tutor: LabTutor) -> dict[str, np.ndarray]:
    """Boolean masks over the first n questions of a toy split, one per knowledge group."""
    groups = np.array(knowledge_labels(toy_split(split)[:n], tutor))
    return {g: groups == g for g in KNOWLEDGE_GROUPS if (groups == g).any()}


# ----------------------------------------------------------------------------------------------
# Tables


def rl_summary(metrics: dict, split: str) -> list[str]:
    """E1: RL − base in points (accuracy, maj@k, pass@k at the largest k), mean ± sd over seeds, beside the paper."""
    k, base = metrics["k"], metrics["models"]["base"]
    keys = [lambda m: m["accuracy"], lambda m: m[f"maj@{k}"], lambda m: m["pass@k"][-1]]
    deltas = [[100 * (key(metrics["models"][s]) - key(base)) for s in seeds(metrics)] for key in keys]
    paper = PAPER["E1"][1][split]
    return [f"| RL − base, points | accuracy | maj@{k} | pass@{k} |", "|---|---|---|---|",
            f"| toy {split}, {len(seeds(metrics))} seed(s) | " + " | ".join(mean_sd(d) for d in deltas) + " |",
            f"| paper ({PAPER['E1'][0]}) | " + " | ".join(f"{p:+.1f}" for p in paper) + " |"]


def seed_bins(metrics: dict) -> list[str]:
    """E2: RL − base per bin, each seed, their mean ± sd, and the paper's bins."""
    rows = bin_table(metrics, seeds(metrics), change, signed_points)
    changes = np.array([[np.nan if c is None else 100 * c for c in change(metrics["models"][s])]
                        for s in seeds(metrics)])
    rows.append("| mean ± sd | " + " | ".join("-" if np.isnan(c).all() else mean_sd(c) for c in changes.T) + " |")
    return rows + ["", f"Paper ({PAPER['E2'][0]}): " + " / ".join(f"{p:+.1f}" for p in PAPER["E2"][1])]


def self_distillation(test: dict, train: dict) -> list[str]:
    """E4: each student's accuracy before and after SFT, train and test, beside the paper's test change."""
    arms = {"base-from-base": "base", "rl-from-rl": "rl-seed0", "base-from-rl": "base"}
    rows = ["| student ← source | train accuracy (Δ) | test accuracy (Δ) | paper test Δ |", "|---|---|---|---|"]
    for arm, before in arms.items():
        name = arm.replace("-from-", " ← ").replace("rl-seed0", "rl")
        cells = [f"{points(m['models'][arm]['accuracy'])} "
                 f"({signed_points(m['models'][arm]['accuracy'] - m['models'][before]['accuracy'])})"
                 for m in (train, test)]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {PAPER['E4'][1][name]:+.1f} |")
    return rows + ["", f"Paper: {PAPER['E4'][0]}."]


def knowledge_table(metrics: dict, groups: dict[str, np.ndarray]) -> list[str]:
    """Per model and knowledge group: pass@1, pass@k and faithful pass@k (a sample counts only when every step is
    right; "-" for metrics without it)."""
    k = metrics["k"]
    rows = ["| model | " + " | ".join(f"{g} (n={int(m.sum())}): pass@1 / pass@{k} / faithful pass@{k}"
                                      for g, m in groups.items()) + " |", "|---|" + "---|" * len(groups)]
    for name, m in metrics["models"].items():
        counts, faithful = np.array(m["counts"]), np.array(m.get("faithful_counts", []))
        cells = [f"{points(counts[g].mean() / k)} / {points((counts[g] > 0).mean())} / "
                 f"{points((faithful[g] > 0).mean()) if len(faithful) else '-'}" for g in groups.values()]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def tables(test: dict, train: dict, tutor: LabTutor) -> list[str]:
    """Every table, each under a level-3 heading, for the page."""
    s, entropy = seeds(test), (lambda m: m["per_bin_entropy"])
    distill, ablations = ["base", "teacher", "reasoning-only", "all-questions"], ["rl-seed0", "rl-drgrpo", "rl-kl"]
    out = [f"k = {test['k']} samples per question ({test['questions']} test questions, the first {train['questions']} "
           "of the train split); bins by the base's X out of k; accuracy and pass@k in %, changes in points.", ""]
    for title, lines in [
        ("E1: accuracy vs capability, test", pass_table(test, ["base", *s, "teacher"], points)),
        ("E1: RL − base beside the paper, test", rl_summary(test, "test")),
        ("E1: accuracy vs capability, train subset", pass_table(train, ["base", *seeds(train)], points)),
        ("E1: RL − base beside the paper, train subset", rl_summary(train, "train")),
        ("E2: per-bin accuracy change, test", seed_bins(test)),
        ("E2: per-bin accuracy change, train subset", seed_bins(train)),
        ("E2: transitions base → rl-seed0, test (counts)", transition_table(test, "rl-seed0")),
        ("E3: answer entropy per bin (nats), test", bin_table(test, ["base", *s], entropy)),
        ("E3: answer entropy per bin (nats), train subset", bin_table(train, ["base", *seeds(train)], entropy)),
        ("E4: self-distillation (Δ over the student before SFT)", self_distillation(test, train)),
        ("E5: response length and reflection words, test", length_table(test, ["base", *s])
         + ["", f"Paper ({PAPER['E5'][0]}): {PAPER['E5'][1]}."]),
        ("E5: mean response length (tokens) per bin, test",
         bin_table(test, ["base", *s], lambda m: m["length"]["tokens"]["by_bin"], lambda x: f"{x:.1f}")),
        ("E6: teacher distillation, test", pass_table(test, distill, points)),
        ("E6: per-bin accuracy change, test", bin_table(test, distill[1:], change, signed_points)),
        ("Ablations: GRPO variants, test", pass_table(test, ablations, points)),
        ("Ablations: per-bin accuracy change, test", bin_table(test, ablations, change, signed_points)),
        ("By knowledge needed, test", knowledge_table(test, knowledge_groups("test", test["questions"], tutor))),
        ("By knowledge needed, train subset",
         knowledge_table(train, knowledge_groups("train", train["questions"], tutor))),
    ]:
        out += [f"### {title}", "", *lines, ""]
    return out


# ----------------------------------------------------------------------------------------------
# Figures


def both_splits(test: dict, train: dict, draw) -> callable:
    """A two-panel drawing: draw(ax, metrics, split title) on the test set, then on the train subset."""
    return lambda axes: [draw(ax, m, t) for ax, m, t in zip(axes, (test, train), ("test", "train subset"))]


def draw_transition_panel(ax, metrics: dict, split: str) -> None:
    draw_transitions(ax, metrics["models"]["rl-seed0"]["transitions"], metrics["bins"])
    ax.set_xlabel(f"rl-seed0's X out of {metrics['k']}")
    ax.set_ylabel(f"base's X out of {metrics['k']}")
    ax.set_title(f"E2: transitions base → RL, {split}", fontsize=10)


def draw_self_distillation(ax, test: dict, train: dict) -> None:
    names = ["base", "base-from-base", "rl-seed0", "rl-from-rl", "base-from-rl"]
    x = np.arange(len(names))
    for j, (metrics, label) in enumerate(((train, "train subset"), (test, "test"))):
        bars = ax.bar(x + (j - 0.5) * 0.4, [100 * metrics["models"][n]["accuracy"] for n in names], 0.4, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, [n.replace("-from-", " ← ").replace("rl-seed0", "rl") for n in names])
    ax.set_ylabel("accuracy (pass@1, %)")
    ax.set_title("E4: self-distillation: whose correct answers teach", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")


def draw_knowledge(ax, metrics: dict, groups: dict[str, np.ndarray], which: str) -> None:
    """pass@1 or pass@k of every model within each knowledge group."""
    names, k = list(metrics["models"]), metrics["k"]
    x, width = np.arange(len(groups)), 0.8 / len(names)
    for j, name in enumerate(names):
        counts = np.array(metrics["models"][name]["counts"])
        vals = [100 * ((counts[m] / k).mean() if which == "pass@1" else (counts[m] > 0).mean()) if m.any() else 0
                for m in groups.values()]
        ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(x, [f"{g}\nn={int(m.sum())}" for g, m in groups.items()])
    ax.set_ylabel(f"{which} (%)")
    ax.set_title(f"{which} by knowledge the question needs, test", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def plot_all(test: dict, train: dict, tutor: LabTutor, fig_dir: Path) -> list[Path]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    s, pts, groups = seeds(test), "change in accuracy (points)", knowledge_groups("test", test["questions"], tutor)
    tokens = lambda m: m["length"]["tokens"]["by_bin"]  # noqa: E731
    figures = {
        "e1_pass_at_k.png": both_splits(test, train, lambda ax, m, t: plot_pass_at_k(
            ax, m, ["base", *seeds(m), *(["teacher"] if "teacher" in m["models"] else [])], f"E1: pass@k, {t}")),
        "e2_per_bin_change.png": both_splits(test, train, lambda ax, m, t: plot_per_bin(
            ax, m, seeds(m), change, pts, f"E2: RL − base per bin, {t}", scale=100)),
        "e2_transitions.png": both_splits(test, train, draw_transition_panel),
        "e3_entropy.png": both_splits(test, train, lambda ax, m, t: plot_per_bin(
            ax, m, ["base", *seeds(m)], lambda x: x["per_bin_entropy"], "answer entropy (nats)", f"E3: {t}")),
        "e4_self_distillation.png": lambda axes: draw_self_distillation(axes[0], test, train),
        "e5_length.png": lambda axes: plot_per_bin(axes[0], test, ["base", *s], tokens, "mean response length "
                                                   "(tokens)", "E5: response length per bin, test"),
        "e6_distillation.png": lambda axes: (
            plot_pass_at_k(axes[0], test, ["base", "teacher", "reasoning-only", "all-questions", "rl-seed0"],
                           "E6: pass@k, test"),
            plot_per_bin(axes[1], test, ["reasoning-only", "all-questions", "rl-seed0"], change, pts,
                         "E6: per-bin change, test", scale=100)),
        "ablations.png": lambda axes: (
            plot_pass_at_k(axes[0], test, ["base", "rl-seed0", "rl-drgrpo", "rl-kl"], "Ablations: pass@k, test"),
            plot_per_bin(axes[1], test, ["rl-seed0", "rl-drgrpo", "rl-kl"], change, pts,
                         "Ablations: per-bin change, test", scale=100)),
        "knowledge.png": lambda axes: [draw_knowledge(ax, test, groups, w) for ax, w in
                                       zip(axes, ("pass@1", f"pass@{test['k']}"))],
    }
    one_panel = {"e4_self_distillation.png", "e5_length.png"}
    return [fig_dir / figure(fig_dir, name, draw, 1 if name in one_panel else 2) for name, draw in figures.items()]


def world_detail(world_dir: Path, fig_dir: Path) -> list[str] | None:
    """The page's section for one world: its figures (drawn into fig_dir, linked as figures/NAME, so fig_dir is
    the page's figures/ folder) and tables. None while either evaluation lacks one of its models."""
    evaluations = [world_dir / f"eval{split}" / "metrics.json" for split in ("", "-train")]
    if not all(f.is_file() for f in evaluations):
        return None
    test, train = (json.loads(f.read_text()) for f in evaluations)
    if not (set(TEST_MODELS) <= set(test["models"]) and set(TRAIN_MODELS) <= set(train["models"])):
        return None
    tutor = LabTutor.from_model(str(world_dir / "toy-base"))
    figures = plot_all(test, train, tutor, fig_dir)
    return [f"![{f.stem}](figures/{f.name})" for f in figures] + [""] + tables(test, train, tutor)
