"""From stored samples to the paper's numbers, figures and tables.

`analyze` turns each model's per-question samples into one JSON-able dict: accuracy, the pass@k
curve, maj@k, capability, unsolved questions; then, binned by a reference model's success count X,
each model's per-bin accuracy and its change, the reference->model transition matrix, answer
entropy, response length and reflection-keyword rates. `write_report` saves metrics.json,
report.md and PNG figures; `console_table` is the compact summary printed at the end of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .collect import QuestionRecord
from .metrics import (
    answer_entropy,
    answer_groups,
    bin_index,
    bin_label,
    default_bins,
    majority_correct,
    pass_at_k_curve,
    per_bin_mean,
    reflection_count,
    transition_matrix,
    unsolved_bound,
)
from .verifier import ExactGrader, Grader


def _mean(xs) -> float | None:
    xs = list(xs)
    return float(np.mean(xs)) if xs else None


def analyze(
    records: dict[str, list[QuestionRecord]], reference: str | None = None, grader: Grader | None = None
) -> dict:
    """Every number of the report. All models must cover the same questions with the same k. maj@k and
    answer entropy group answers by the grader's equality (the exact grader by default)."""
    grader = grader or ExactGrader()
    names = list(records)
    reference = reference or names[0]
    ids = [r.id for r in records[reference]]
    for name in names:
        if [r.id for r in records[name]] != ids:
            raise ValueError(f"model {name!r} was sampled on other questions than {reference!r}")
    k = len(records[reference][0].samples)
    if any(len(r.samples) != k for recs in records.values() for r in recs):
        raise ValueError("every question of every model needs the same number of samples k")
    edges = default_bins(k)
    ref_counts = [r.n_correct for r in records[reference]]
    out = {
        "k": k,
        "questions": len(ids),
        "reference": reference,
        "bins": [bin_label(e) for e in edges],
        "bin_edges": edges,
        "bin_sizes": np.bincount([bin_index(x, edges) for x in ref_counts], minlength=len(edges)).tolist(),
        "unsolved_bound": unsolved_bound(k),
        "models": {},
    }
    for name in names:
        out["models"][name] = model_metrics(records[name], ref_counts, edges, grader)
        if name != reference:
            ref_acc = out["models"][reference]["per_bin_accuracy"]
            m = out["models"][name]
            m["per_bin_change"] = [
                None if a is None or r is None else a - r for a, r in zip(m["per_bin_accuracy"], ref_acc)
            ]
            m["transitions"] = transition_matrix(ref_counts, m["counts"], edges).tolist()
    return out


def model_metrics(recs: list[QuestionRecord], ref_counts: list[int], edges, grader: Grader) -> dict:
    """One model's numbers: accuracy, pass@k, maj@k, per-bin accuracy and entropy, length, reflection."""
    k = len(recs[0].samples)
    counts = [r.n_correct for r in recs]
    curve = pass_at_k_curve(counts, k)
    acc_q = [c / k for c in counts]
    samples = [(s, bin_index(x, edges)) for r, x in zip(recs, ref_counts) for s in r.samples]
    groups = [answer_groups([s["answer"] for s in r.samples], grader.same) for r in recs]
    m = {
        "accuracy": float(np.mean(acc_q)),
        "pass@k": curve.tolist(),
        f"maj@{k}": float(
            np.mean([majority_correct(g, [s["correct"] for s in r.samples]) for g, r in zip(groups, recs)])
        ),
        f"pass@{k}": float(curve[-1]),
        "unsolved": int(sum(c == 0 for c in counts)),
        "counts": counts,
        "per_bin_accuracy": per_bin_mean(acc_q, ref_counts, edges),
        "per_bin_entropy": per_bin_mean([answer_entropy(g) for g in groups], ref_counts, edges),
        "length": {},
        "reflection": {},
    }
    for unit, key in (("tokens", lambda s: s["tokens"]), ("chars", lambda s: len(s["text"]))):
        m["length"][unit] = {
            "all": _mean(key(s) for s, _ in samples),
            "correct": _mean(key(s) for s, _ in samples if s["correct"]),
            "incorrect": _mean(key(s) for s, _ in samples if not s["correct"]),
            "by_bin": [_mean(key(s) for s, b in samples if b == i) for i in range(len(edges))],
        }
    m["reflection"] = {
        "all": _mean(reflection_count(s["text"]) for s, _ in samples),
        "correct": _mean(reflection_count(s["text"]) for s, _ in samples if s["correct"]),
        "incorrect": _mean(reflection_count(s["text"]) for s, _ in samples if not s["correct"]),
    }
    return m


# ----------------------------------------------------------------------------------------------
# Output


def console_table(metrics: dict) -> str:
    k = metrics["k"]
    ks = [x for x in (1, 4, 16, 64, 256) if x < k] + [k]
    head = f"{'model':16s} {'acc':>6s} {f'maj@{k}':>8s} " + " ".join(f"{f'pass@{x}':>9s}" for x in ks) + f" {'X=0':>5s}"
    rows = [head]
    for name, m in metrics["models"].items():
        rows.append(f"{name:16s} {m['accuracy']:6.3f} {m[f'maj@{k}']:8.3f} "
                    + " ".join(f"{m['pass@k'][x - 1]:9.3f}" for x in ks) + f" {m['unsolved']:5d}")
    rows.append("")
    rows.append(f"per-bin accuracy (bins by {metrics['reference']}'s X out of {k}):")
    rows.append(f"{'':16s} " + " ".join(f"{b:>9s}" for b in metrics["bins"]))
    rows.append(f"{'questions':16s} " + " ".join(f"{n:9d}" for n in metrics["bin_sizes"]))
    for name, m in metrics["models"].items():
        rows.append(f"{name:16s} " + " ".join("        -" if a is None else f"{a:9.3f}" for a in m["per_bin_accuracy"]))
    return "\n".join(rows)


def _fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown_report(metrics: dict, figures: list[str]) -> str:
    k, ref = metrics["k"], metrics["reference"]
    ks = [x for x in (1, 2, 4, 8, 16, 32, 64, 128, 256) if x < k] + [k]
    lines = [
        "# Evaluation report",
        "",
        f"{metrics['questions']} questions, k = {k} samples each; bins by **{ref}**'s "
        f"success count X. A question with X = 0 has p < {metrics['unsolved_bound']:.4f} at 95% confidence.",
        "",
        "## Accuracy and capability",
        "",
        "| model | accuracy (pass@1) | maj@%d | " % k + " | ".join(f"pass@{x}" for x in ks[1:]) + " | unsolved (X=0) |",
        "|---|---|---|" + "---|" * len(ks[1:]) + "---|",
    ]
    for name, m in metrics["models"].items():
        lines.append(
            f"| {name} | {m['accuracy']:.3f} | {m[f'maj@{k}']:.3f} | "
            + " | ".join(f"{m['pass@k'][x - 1]:.3f}" for x in ks[1:])
            + f" | {m['unsolved']} |"
        )
    lines += [
        "",
        "## Per-bin accuracy (mean X/k)",
        "",
        "| model | " + " | ".join(metrics["bins"]) + " |",
        "|---|" + "---|" * len(metrics["bins"]),
        "| questions | " + " | ".join(map(str, metrics["bin_sizes"])) + " |",
    ]
    for name, m in metrics["models"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(a) for a in m["per_bin_accuracy"]) + " |")
        if "per_bin_change" in m:
            lines.append(
                f"| {name} − {ref} | "
                + " | ".join("-" if c is None else f"{c:+.3f}" for c in m["per_bin_change"])
                + " |"
            )
    for name, m in metrics["models"].items():
        if "transitions" not in m:
            continue
        lines += ["", f"## Transitions {ref} → {name} (rows: {ref}'s bin, columns: {name}'s bin)", "",
                  f"| {ref} \\ {name} | " + " | ".join(metrics["bins"]) + " |", "|---|" + "---|" * len(metrics["bins"])]
        for label, row in zip(metrics["bins"], m["transitions"]):
            lines.append(f"| {label} | " + " | ".join(map(str, row)) + " |")
    lines += ["", "## Answer entropy per bin (nats)", "", "| model | " + " | ".join(metrics["bins"]) + " |",
              "|---|" + "---|" * len(metrics["bins"])]
    for name, m in metrics["models"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(e) for e in m["per_bin_entropy"]) + " |")
    lines += [
        "",
        "## Response length and reflection keywords",
        "",
        "| model | tokens: all | correct | incorrect | chars: all | correct | incorrect "
        "| reflection words / response: all | correct | incorrect |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics["models"].items():
        t, c, r = m["length"]["tokens"], m["length"]["chars"], m["reflection"]
        lines.append(
            f"| {name} | {_fmt(t['all'], 1)} | {_fmt(t['correct'], 1)} | {_fmt(t['incorrect'], 1)} | "
            f"{_fmt(c['all'], 1)} | {_fmt(c['correct'], 1)} | {_fmt(c['incorrect'], 1)} | "
            f"{_fmt(r['all'])} | {_fmt(r['correct'])} | {_fmt(r['incorrect'])} |"
        )
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def draw_transitions(ax, transitions, bins: list[str]):
    """A transition matrix as a heatmap of each row's shares, every cell labelled "share% (count)"."""
    m = np.array(transitions)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{100 * share[i, j]:.0f}%\n({m[i, j]})", ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(bins)), bins)
    ax.set_yticks(range(len(bins)), bins)
    return im


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=120)
    plt.close(fig)
    return name


def _colors(n: int):
    return plt.get_cmap("tab20" if n > 10 else "tab10").colors


def plot_pass_at_k(metrics: dict, out_dir: Path) -> str:
    """Every model's pass@k curve against k (log scale)."""
    names, k = list(metrics["models"]), metrics["k"]
    fig, ax = plt.subplots(figsize=(8 if len(names) > 4 else 6, 4))
    colors = _colors(len(names))
    for j, name in enumerate(names):
        ax.plot(np.arange(1, k + 1), metrics["models"][name]["pass@k"], label=name, lw=2, color=colors[j % len(colors)])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per question, log scale)")
    ax.set_ylabel("pass@k")
    ax.set_title(f"pass@k on {metrics['questions']} questions (unbiased estimator, n = {k})")
    ax.grid(alpha=0.3)
    ax.legend(**({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8} if len(names) > 4 else {}))
    return _save(fig, out_dir, "pass_at_k.png")


def plot_per_bin_change(metrics: dict, out_dir: Path, others: list[str]) -> str:
    """Bars: each model's change in mean accuracy per reference bin."""
    ref, many = metrics["reference"], len(others) > 3  # many: the legend goes beside the plot, bars unlabelled
    fig, ax = plt.subplots(figsize=(10 if many else 7, 4))
    colors, x, width = _colors(len(others)), np.arange(len(metrics["bins"])), 0.8 / len(others)
    for j, name in enumerate(others):
        change = [0.0 if c is None else 100 * c for c in metrics["models"][name]["per_bin_change"]]
        bars = ax.bar(x + (j - (len(others) - 1) / 2) * width, change, width, label=f"{name} − {ref}",
                      color=colors[j % len(colors)])
        if not many:
            ax.bar_label(bars, fmt="%+.1f", fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [f"{b}\nn={n}" for b, n in zip(metrics["bins"], metrics["bin_sizes"])])
    ax.set_xlabel(f"bin of {ref}'s success count X out of {metrics['k']}")
    ax.set_ylabel("change in mean accuracy (points)")
    ax.set_title(f"Per-bin accuracy change relative to {ref}")
    ax.legend(**({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8} if many else {}))
    return _save(fig, out_dir, "per_bin_change.png")


def plot_transitions(metrics: dict, out_dir: Path, name: str) -> str:
    k, ref = metrics["k"], metrics["reference"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = draw_transitions(ax, metrics["models"][name]["transitions"], metrics["bins"])
    ax.set_xlabel(f"{name}: bin of X out of {k}")
    ax.set_ylabel(f"{ref}: bin of X out of {k}")
    ax.set_title(f"Transitions {ref} → {name} (share of row)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, out_dir, f"transitions_{name}.png")


def plot_figures(metrics: dict, out_dir: Path) -> list[str]:
    """pass@k curves, per-bin accuracy change bars, and one transition heatmap per compared model."""
    others = [n for n in metrics["models"] if n != metrics["reference"]]
    files = [plot_pass_at_k(metrics, out_dir)]
    if others:
        files.append(plot_per_bin_change(metrics, out_dir, others))
    return files + [plot_transitions(metrics, out_dir, name) for name in others]


def write_report(metrics: dict, out_dir: str | Path, figures: bool = True) -> list[Path]:
    """metrics.json, report.md and (unless figures=False) the figures, in out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    figures = plot_figures(metrics, out_dir) if figures else []
    (out_dir / "report.md").write_text(markdown_report(metrics, figures))
    return [out_dir / "metrics.json", out_dir / "report.md"] + [out_dir / f for f in figures]
