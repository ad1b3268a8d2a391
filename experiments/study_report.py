"""The toy study's figures and tables, one per experiment of ../shared/paper.md, from its two evaluations.

    python experiments/study_report.py runs/study        # toy_study.py runs this as its last step

Reads <study>/eval-test/metrics.json (every model) and <study>/eval-train/metrics.json (the E1/E4
models), and writes <study>/figures/*.png and <study>/tables.md: the numbers experiments/RESULTS.md
quotes. Bins are always the base model's success count X out of k. RL rows named rl-seedN are
averaged over seeds, with their spread (sample standard deviation, and each seed's value).

The toy world adds one lens the paper cannot have: every question's knowledge is known. A question
is "hard-gap" if its solution needs a fact the base's tutor never states correctly (7*8, 6*9),
"partial-fact" if it needs a fact stated correctly only 5-40% of the time, and "other" otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minireason.report import draw_transitions  # noqa: E402
from minireason.tasks import toy_split  # noqa: E402
from minireason.toy import Tutor, knowledge_group  # noqa: E402


def knowledge_groups(split: str, n: int) -> dict[str, np.ndarray]:
    """Boolean masks over the first n questions of a toy split: hard-gap, partial-fact, other."""
    tutor = Tutor()
    groups = np.array([knowledge_group(p, tutor) for p in toy_split(split)[:n]])
    return {g: groups == g for g in ("hard-gap", "partial-fact", "other")}


def seeds(metrics: dict) -> list[str]:
    return [n for n in metrics["models"] if n.startswith("rl-seed")]


def mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def pm(values, scale=100.0, digits=1) -> str:
    """'mean ± sd' (in points by default) over seeds."""
    m, s = mean_sd([scale * v for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def pct(x, digits=1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


def rl_mean(metrics: dict, key) -> np.ndarray:
    """A per-bin (or per-k) list averaged over the RL seeds; None entries count as NaN."""
    with warnings.catch_warnings():  # a bin with no questions stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean([np.array(key(metrics["models"][s]), dtype=float) for s in seeds(metrics)], axis=0)


# ----------------------------------------------------------------------------------------------
# Tables


def headline_rows(metrics: dict, names: list[str]) -> list[str]:
    k = metrics["k"]
    ks = [x for x in (4, 16) if x < k] + [k]
    rows = [f"| model | accuracy (pass@1) | maj@{k} | " + " | ".join(f"pass@{x}" for x in ks) + " | X = 0 |",
            "|---|---|---|" + "---|" * len(ks) + "---|"]
    for n in names:
        m = metrics["models"][n]
        rows.append(f"| {n} | {pct(m['accuracy'])} | {pct(m[f'maj@{k}'])} | "
                    + " | ".join(pct(m["pass@k"][x - 1]) for x in ks) + f" | {m['unsolved']} |")
    s = [n for n in seeds(metrics) if n in names]
    if len(s) > 1:
        ms = [metrics["models"][n] for n in s]
        rows.append(
            f"| RL, mean ± sd over {len(s)} seeds | {pm([m['accuracy'] for m in ms])} | {pm([m[f'maj@{k}'] for m in ms])} | "
            + " | ".join(pm([m["pass@k"][x - 1] for m in ms]) for x in ks)
            + f" | {pm([m['unsolved'] for m in ms], scale=1)} |"
        )
    return rows


def per_bin_rows(
    metrics: dict, names: list[str], values=lambda m: m["per_bin_change"], fmt=lambda c: f"{100 * c:+.1f}"
) -> list[str]:
    """One row per model of a per-bin list (`values` picks it from the model's metrics), formatted by `fmt`."""
    rows = ["| | " + " | ".join(metrics["bins"]) + " |", "|---|" + "---|" * len(metrics["bins"]),
            "| questions | " + " | ".join(map(str, metrics["bin_sizes"])) + " |"]
    for n in names:
        vals = values(metrics["models"][n])
        rows.append(f"| {n} | " + " | ".join("-" if v is None else fmt(v) for v in vals) + " |")
    return rows


def seed_bin_rows(metrics: dict) -> list[str]:
    """RL - base per bin: mean ± sd over seeds, then each seed."""
    s = seeds(metrics)
    changes = np.array([[np.nan if c is None else 100 * c for c in metrics["models"][n]["per_bin_change"]] for n in s])
    rows = [
        "| RL − base (points) | " + " | ".join(metrics["bins"]) + " |",
        "|---|" + "---|" * len(metrics["bins"]),
        "| questions | " + " | ".join(map(str, metrics["bin_sizes"])) + " |",
        "| base accuracy | " + " | ".join(pct(a) for a in metrics["models"]["base"]["per_bin_accuracy"]) + " |",
        f"| mean ± sd over {len(s)} seed{'s' if len(s) > 1 else ''} | "
        + " | ".join(
            (
                "-"
                if np.isnan(col).all()
                else f"{np.nanmean(col):+.1f} ± {np.nanstd(col, ddof=1) if len(s) > 1 else 0:.1f}"
            )
            for col in changes.T
        )
        + " |",
    ]
    for n, row in zip(s, changes):
        rows.append(f"| {n} | " + " | ".join("-" if np.isnan(c) else f"{c:+.1f}" for c in row) + " |")
    return rows


def transition_rows(metrics: dict, name: str) -> list[str]:
    t = np.array(metrics["models"][name]["transitions"])
    rows = [f"| base \\ {name} | " + " | ".join(metrics["bins"]) + " |", "|---|" + "---|" * len(metrics["bins"])]
    for label, row in zip(metrics["bins"], t):
        total = max(row.sum(), 1)
        rows.append(
            f"| {label} (n={row.sum()}) | "
            + " | ".join(f"{100 * c / total:.0f}% ({c})" if c else "·" for c in row)
            + " |"
        )
    return rows


def knowledge_rows(metrics: dict, split: str, names: list[str]) -> list[str]:
    k, groups = metrics["k"], knowledge_groups(split, metrics["questions"])
    rows = ["| model | " + " | ".join(f"{g} (n={int(m.sum())}): pass@1 / pass@{k}" for g, m in groups.items()) + " |",
            "|---|" + "---|" * len(groups)]
    for n in names:
        counts = np.array(metrics["models"][n]["counts"])
        cells = []
        for mask in groups.values():
            c = counts[mask]
            cells.append("-" if not len(c) else f"{100 * c.mean() / k:.1f} / {100 * (c > 0).mean():.1f}")
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return rows


def length_rows(metrics: dict, names: list[str]) -> list[str]:
    rows = [
        "| model | tokens: all | correct | incorrect | characters: all | correct | incorrect | reflection words per response |",
        "|---|---|---|---|---|---|---|---|",
    ]
    f = lambda x: "-" if x is None else f"{x:.1f}"
    for n in names:
        m = metrics["models"][n]
        t, c = m["length"]["tokens"], m["length"]["chars"]
        rows.append(
            f"| {n} | {f(t['all'])} | {f(t['correct'])} | {f(t['incorrect'])} | {f(c['all'])} | {f(c['correct'])} | "
            f"{f(c['incorrect'])} | {m['reflection']['all']:.3f} |"
        )
    return rows


def self_distillation_rows(test: dict, train: dict) -> list[str]:
    """E4: accuracy on train and test of each student before and after SFT on (its or another model's) correct answers."""
    student = {
        "base": None,
        "base-from-base": "base",
        "rl-seed0": None,
        "rl-from-rl": "rl-seed0",
        "base-from-rl": "base",
    }
    rows = ["| model | train accuracy | test accuracy |", "|---|---|---|"]
    for n, before in student.items():
        cells = []
        for m in (train, test):
            a = m["models"][n]["accuracy"]
            cells.append(pct(a) + ("" if before is None else f" ({100 * (a - m['models'][before]['accuracy']):+.1f})"))
        rows.append(f"| {n.replace('-from-', ' ← ')} | " + " | ".join(cells) + " |")
    return rows


def tables(test: dict, train: dict) -> str:
    s = seeds(test)
    test_rl, distill = ["base", *s, "teacher"], ["base", "teacher", "reasoning-only", "all-questions"]
    ablations = ["rl-seed0", "rl-drgrpo", "rl-kl"]
    out = ["# Toy study tables", "", f"k = {test['k']} samples per question; bins by the base's X out of k; "
           "accuracy and pass@k in %, changes in points.", ""]
    for title, lines in [
        ("E1: accuracy vs capability, test", headline_rows(test, test_rl)),
        ("E1: accuracy vs capability, train subset", headline_rows(train, ["base", *seeds(train)])),
        ("E2: per-bin accuracy change, test", seed_bin_rows(test)),
        ("E2: per-bin accuracy change, train subset", seed_bin_rows(train)),
        ("E2: transitions base → rl-seed0, test", transition_rows(test, "rl-seed0")),
        ("E2: transitions base → rl-seed0, train subset", transition_rows(train, "rl-seed0")),
        (
            "E3: answer entropy per bin (nats), test",
            per_bin_rows(test, ["base", *s], lambda m: m["per_bin_entropy"], lambda e: f"{e:.3f}"),
        ),
        (
            "E3: answer entropy per bin (nats), train subset",
            per_bin_rows(train, ["base", "rl-seed0"], lambda m: m["per_bin_entropy"], lambda e: f"{e:.3f}"),
        ),
        ("E4: self-distillation (Δ over the student before SFT)", self_distillation_rows(test, train)),
        ("E5: response length and reflection words, test", length_rows(test, ["base", *s])),
        (
            "E5: mean response length (tokens) per bin, test",
            per_bin_rows(test, ["base", *s], lambda m: m["length"]["tokens"]["by_bin"], lambda x: f"{x:.1f}"),
        ),
        ("E6: teacher distillation, test", headline_rows(test, distill)),
        ("E6: per-bin accuracy change, test", per_bin_rows(test, distill[1:])),
        ("Ablations: GRPO variants, test", headline_rows(test, ablations)),
        ("Ablations: per-bin accuracy change, test", per_bin_rows(test, ablations)),
        ("By knowledge needed, test", knowledge_rows(test, "test", list(test["models"]))),
        ("By knowledge needed, train subset", knowledge_rows(train, "train", list(train["models"]))),
    ]:
        out += [f"## {title}", "", *lines, ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# Figures


def plot_all(test: dict, train: dict, fig_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    files = []
    C = {"base": "tab:blue", "rl": "tab:red", "teacher": "tab:green", "reasoning-only": "tab:orange",
         "all-questions": "tab:purple", "rl-drgrpo": "tab:brown", "rl-kl": "tab:pink", "base-from-base": "tab:cyan",
         "rl-from-rl": "tab:olive", "base-from-rl": "tab:gray"}

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(fig_dir / name, dpi=110)
        plt.close(fig)
        files.append(fig_dir / name)

    def curve(ax, metrics, name, label=None, color=None):
        y = metrics["models"][name]["pass@k"]
        ax.plot(np.arange(1, len(y) + 1), y, lw=2, label=label or name, color=color or C.get(name))

    def rl_band(ax, metrics):
        ys = np.array([metrics["models"][s]["pass@k"] for s in seeds(metrics)])
        ks = np.arange(1, ys.shape[1] + 1)
        ax.plot(
            ks,
            ys.mean(0),
            lw=2,
            color=C["rl"],
            label=f"RL (mean of {len(ys)} seeds)" if len(ys) > 1 else seeds(metrics)[0],
        )
        ax.fill_between(ks, ys.min(0), ys.max(0), color=C["rl"], alpha=0.25)

    def pass_axes(ax, metrics, title):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_title(f"{title} ({metrics['questions']} questions)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    def bin_ticks(ax, metrics):
        ax.set_xticks(
            np.arange(len(metrics["bins"])), [f"{b}\nn={n}" for b, n in zip(metrics["bins"], metrics["bin_sizes"])]
        )
        ax.set_xlabel(f"base's X out of {metrics['k']}")

    def change_bars(ax, metrics, series, title):
        """series: (label, per-bin changes (one list, or one per seed), color)."""
        x, width = np.arange(len(metrics["bins"])), 0.8 / len(series)
        for j, (label, values, color) in enumerate(series):
            v = 100 * np.array([[np.nan if c is None else c for c in row] for row in values], dtype=float)
            pos = x + (j - (len(series) - 1) / 2) * width
            with warnings.catch_warnings():  # a bin with no questions is NaN in every row
                warnings.simplefilter("ignore", RuntimeWarning)
                ax.bar(pos, np.nan_to_num(np.nanmean(v, 0)), width, color=color, label=label)
            if len(v) > 1:  # one dot per seed
                for row in v:
                    ax.plot(pos, row, "k.", ms=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("change in accuracy (points)")
        ax.set_title(title)
        bin_ticks(ax, metrics)
        ax.legend(fontsize=8)

    def rl_changes(metrics):
        return [metrics["models"][s]["per_bin_change"] for s in seeds(metrics)]

    # E1: pass@k curves, test and train
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metrics, title in ((axes[0], test, "test"), (axes[1], train, "train subset")):
        curve(ax, metrics, "base")
        rl_band(ax, metrics)
        if "teacher" in metrics["models"]:
            curve(ax, metrics, "teacher")
        pass_axes(ax, metrics, f"E1: pass@k, {title}")
    save(fig, "e1_pass_at_k.png")

    # E2: per-bin change RL - base, and the transition matrices
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, metrics, title in ((axes[0], test, "test"), (axes[1], train, "train subset")):
        change_bars(
            ax,
            metrics,
            [("RL − base (bar: mean; dots: seeds)", rl_changes(metrics), C["rl"])],
            f"E2: RL − base per bin, {title}",
        )
    save(fig, "e2_per_bin_change.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, metrics, title in ((axes[0], test, "test"), (axes[1], train, "train subset")):
        draw_transitions(ax, metrics["models"]["rl-seed0"]["transitions"], metrics["bins"])
        ax.set_xlabel(f"rl-seed0's X out of {metrics['k']}")
        ax.set_ylabel(f"base's X out of {metrics['k']}")
        ax.set_title(f"E2: transitions base → RL, {title}")
    save(fig, "e2_transitions.png")

    # E3: answer entropy per bin
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metrics, title in ((axes[0], test, "test"), (axes[1], train, "train subset")):
        x = np.arange(len(metrics["bins"]))
        base = np.array([np.nan if e is None else e for e in metrics["models"]["base"]["per_bin_entropy"]], dtype=float)
        ax.bar(x - 0.2, base, 0.4, color=C["base"], label="base")
        ax.bar(x + 0.2, rl_mean(metrics, lambda m: [np.nan if e is None else e for e in m["per_bin_entropy"]]), 0.4,
               color=C["rl"], label="RL (mean of seeds)" if len(seeds(metrics)) > 1 else "rl-seed0")
        ax.set_ylabel("answer entropy (nats)")
        ax.set_title(f"E3: entropy of the final answers, {title}")
        bin_ticks(ax, metrics)
        ax.legend(fontsize=8)
    save(fig, "e3_entropy.png")

    # E4: self-distillation
    names = ["base", "base-from-base", "rl-seed0", "rl-from-rl", "base-from-rl"]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(names))
    for j, (metrics, label, color) in enumerate(((train, "train subset", "tab:gray"), (test, "test", "tab:blue"))):
        acc = [100 * metrics["models"][n]["accuracy"] for n in names]
        bars = ax.bar(x + (j - 0.5) * 0.4, acc, 0.4, color=color, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, [n.replace("-from-", " ← ").replace("rl-seed0", "rl") for n in names])
    ax.set_ylabel("accuracy (pass@1, %)")
    ax.set_title("E4: self-distillation: whose correct answers teach")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, "e4_self_distillation.png")

    # E5: response length (tokens): all / correct / incorrect, and per bin
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    kinds = ["all", "correct", "incorrect"]
    x = np.arange(len(kinds))
    base_len = [test["models"]["base"]["length"]["tokens"][c] or 0 for c in kinds]
    rl_len = rl_mean(test, lambda m: [m["length"]["tokens"][c] or np.nan for c in kinds])
    axes[0].bar(x - 0.2, base_len, 0.4, color=C["base"], label="base")
    axes[0].bar(x + 0.2, rl_len, 0.4, color=C["rl"], label="RL (mean of seeds)")
    axes[0].set_xticks(x, kinds)
    axes[0].set_ylabel("mean response length (tokens)")
    axes[0].set_title("E5: length by correctness, test")
    axes[0].legend(fontsize=8)
    xb = np.arange(len(test["bins"]))
    axes[1].bar(
        xb - 0.2,
        [v or 0 for v in test["models"]["base"]["length"]["tokens"]["by_bin"]],
        0.4,
        color=C["base"],
        label="base",
    )
    axes[1].bar(
        xb + 0.2,
        rl_mean(test, lambda m: [v or np.nan for v in m["length"]["tokens"]["by_bin"]]),
        0.4,
        color=C["rl"],
        label="RL (mean of seeds)",
    )
    axes[1].set_ylabel("mean response length (tokens)")
    axes[1].set_title("E5: length per bin, test")
    bin_ticks(axes[1], test)
    axes[1].legend(fontsize=8)
    save(fig, "e5_length.png")

    # E6: teacher distillation, reasoning-only vs all questions
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for n in ("base", "teacher", "reasoning-only", "all-questions"):
        curve(axes[0], test, n)
    rl_band(axes[0], test)
    pass_axes(axes[0], test, "E6: pass@k, test")
    change_bars(
        axes[1],
        test,
        [
            ("reasoning-only − base", [test["models"]["reasoning-only"]["per_bin_change"]], C["reasoning-only"]),
            ("all-questions − base", [test["models"]["all-questions"]["per_bin_change"]], C["all-questions"]),
            ("RL − base (mean of seeds)", rl_changes(test), C["rl"]),
        ],
        "E6: per-bin change, test",
    )
    save(fig, "e6_distillation.png")

    # Ablations: Dr. GRPO and KL against plain GRPO (seed 0, same seed)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    curve(axes[0], test, "base")
    for n, label, color in (("rl-seed0", "GRPO (seed 0)", C["rl"]), ("rl-drgrpo", "Dr. GRPO", C["rl-drgrpo"]),
                            ("rl-kl", "GRPO + KL (beta 0.05)", C["rl-kl"])):
        curve(axes[0], test, n, label, color)
    pass_axes(axes[0], test, "Ablations: pass@k, test")
    change_bars(
        axes[1],
        test,
        [
            (label + " − base", [test["models"][n]["per_bin_change"]], color)
            for n, label, color in (
                ("rl-seed0", "GRPO", C["rl"]),
                ("rl-drgrpo", "Dr. GRPO", C["rl-drgrpo"]),
                ("rl-kl", "GRPO + KL", C["rl-kl"]),
            )
        ],
        "Ablations: per-bin change, test",
    )
    save(fig, "ablations.png")

    # The toy world's own lens: which knowledge a question needs
    groups = knowledge_groups("test", test["questions"])
    names = ["base", *seeds(test), "rl-drgrpo", "rl-kl", "reasoning-only", "all-questions", "teacher"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    for ax, which in zip(axes, ("pass@1", f"pass@{test['k']}")):
        x, width = np.arange(len(groups)), 0.8 / len(names)
        for j, n in enumerate(names):
            counts = np.array(test["models"][n]["counts"])
            vals = [
                (
                    100 * ((counts[m] / test["k"]).mean() if which == "pass@1" else (counts[m] > 0).mean())
                    if m.any()
                    else 0
                )
                for m in groups.values()
            ]
            color = C["rl"] if n.startswith("rl-seed") else C.get(n)
            ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, color=color, label=n,
                   alpha=1.0 if not n.startswith("rl-seed") or n == "rl-seed0" else 0.6)
        ax.set_xticks(x, [f"{g}\nn={int(m.sum())}" for g, m in groups.items()])
        ax.set_ylabel(f"{which} (%)")
        ax.set_title(f"{which} by knowledge the question needs, test")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, "knowledge.png")
    return files


def write_study_report(study: Path) -> list[Path]:
    test = json.loads((study / "eval-test" / "metrics.json").read_text())
    train = json.loads((study / "eval-train" / "metrics.json").read_text())
    (study / "tables.md").write_text(tables(test, train))
    return [study / "tables.md", *plot_all(test, train, study / "figures")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", type=Path, help="the study's output folder (toy_study.py --out)")
    files = write_study_report(ap.parse_args().study)
    print("wrote " + ", ".join(str(f) for f in files))


if __name__ == "__main__":
    main()
