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

import numpy as np

from .collect import QuestionRecord
from .files import atomic_write, sweep_temporaries, written_whole
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


def analyze(records: dict[str, list[QuestionRecord]], reference: str | None = None, grader: Grader | None = None,
            faithful=None) -> dict:
    """Every number of the report. All models must cover the same questions with the same k. maj@k and
    answer entropy group answers by the grader's equality (the exact grader by default). faithful(text,
    question) -> bool | None (toy.faithful): where it judges every question, faithful pass@k is reported too,
    counting only the samples whose every step is right."""
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
        if faithful is not None:
            out["models"][name].update(faithful_metrics(records[name], faithful))
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


def faithful_metrics(recs: list[QuestionRecord], faithful) -> dict:
    """Faithful pass@k: pass@k where a sample counts only when every step of its trace is right (an outcome-right
    box over wrong steps does not); empty when `faithful` cannot judge some question (not a toy one)."""
    judged = [[faithful(s["text"], r.question) for s in r.samples] for r in recs]
    if any(j is None for js in judged for j in js):
        return {}
    k = len(recs[0].samples)
    counts = [sum(js) for js in judged]
    curve = pass_at_k_curve(counts, k)
    return {"faithful_counts": counts, "faithful_pass@k": curve.tolist(), f"faithful_pass@{k}": float(curve[-1]),
            "faithful_unsolved": int(sum(c == 0 for c in counts))}


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
        if "faithful_pass@k" in m:  # every step right
            curve = m["faithful_pass@k"]
            rows.append(f"{'  faithful':16s} {curve[0]:6.3f} {'':8s} " + " ".join(f"{curve[x - 1]:9.3f}" for x in ks)
                        + f" {m['faithful_unsolved']:5d}")
    rows.append("")
    rows.append(f"per-bin accuracy (bins by {metrics['reference']}'s X out of {k}):")
    rows.append(f"{'':16s} " + " ".join(f"{b:>9s}" for b in metrics["bins"]))
    rows.append(f"{'questions':16s} " + " ".join(f"{n:9d}" for n in metrics["bin_sizes"]))
    for name, m in metrics["models"].items():
        rows.append(f"{name:16s} " + " ".join("        -" if a is None else f"{a:9.3f}" for a in m["per_bin_accuracy"]))
    return "\n".join(rows)


def _fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def pass_table(metrics: dict, names: list[str], fmt=_fmt) -> list[str]:
    """Markdown rows: accuracy (pass@1), maj@k, pass@x for x = 2, 4, ... k, and unsolved questions, per model."""
    k = metrics["k"]
    ks = [x for x in (2, 4, 8, 16, 32, 64, 128, 256) if x < k] + [k]
    rows = [f"| model | accuracy (pass@1) | maj@{k} | " + " | ".join(f"pass@{x}" for x in ks) + " | unsolved (X=0) |",
            "|---|---|---|" + "---|" * len(ks) + "---|"]
    for name in names:
        m = metrics["models"][name]
        cells = [fmt(m["accuracy"]), fmt(m[f"maj@{k}"]), *(fmt(m["pass@k"][x - 1]) for x in ks)]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {m['unsolved']} |")
        if "faithful_pass@k" in m:  # toy data: the same, counting only samples whose every step is right
            curve = m["faithful_pass@k"]
            cells = [fmt(curve[0]), "", *(fmt(curve[x - 1]) for x in ks)]
            rows.append(f"| {name}, faithful | " + " | ".join(cells) + f" | {m['faithful_unsolved']} |")
    return rows


def bin_table(metrics: dict, names: list[str], value, fmt=_fmt) -> list[str]:
    """Markdown rows of a per-bin list, one row per model; `value(model_metrics)` picks the list."""
    rows = ["| model | " + " | ".join(metrics["bins"]) + " |", "|---|" + "---|" * len(metrics["bins"]),
            "| questions | " + " | ".join(map(str, metrics["bin_sizes"])) + " |"]
    for name in names:
        rows.append(f"| {name} | " + " | ".join("-" if v is None else fmt(v) for v in value(metrics["models"][name]))
                    + " |")
    return rows


def transition_table(metrics: dict, name: str) -> list[str]:
    """Markdown rows of the reference -> name transition counts (rows: the reference's bin)."""
    ref, bins = metrics["reference"], metrics["bins"]
    rows = [f"| {ref} \\ {name} | " + " | ".join(bins) + " |", "|---|" + "---|" * len(bins)]
    return rows + [f"| {label} | " + " | ".join(map(str, row)) + " |"
                   for label, row in zip(bins, metrics["models"][name]["transitions"])]


def length_table(metrics: dict, names: list[str]) -> list[str]:
    """Markdown rows: mean response length (tokens, characters) and reflection words, all / correct / incorrect."""
    rows = ["| model | tokens: all | correct | incorrect | chars: all | correct | incorrect "
            "| reflection words / response: all | correct | incorrect |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        m = metrics["models"][name]
        t, c, r = m["length"]["tokens"], m["length"]["chars"], m["reflection"]
        cells = [*(_fmt(t[x], 1) for x in ("all", "correct", "incorrect")),
                 *(_fmt(c[x], 1) for x in ("all", "correct", "incorrect")),
                 *(_fmt(r[x]) for x in ("all", "correct", "incorrect"))]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def change(m: dict) -> list:
    """A model's per-bin change in accuracy over the reference (the getter `bin_table` and the plots take)."""
    return m["per_bin_change"]


def markdown_report(metrics: dict, figures: list[str]) -> str:
    k, ref, names = metrics["k"], metrics["reference"], list(metrics["models"])
    others = [n for n in names if "per_bin_change" in metrics["models"][n]]
    signed = lambda c: f"{c:+.3f}"  # noqa: E731
    sections = [
        ("Accuracy and capability", pass_table(metrics, names)),
        ("Per-bin accuracy (mean X/k)", bin_table(metrics, names, lambda m: m["per_bin_accuracy"])),
        (f"Per-bin change over {ref}", bin_table(metrics, others, change, signed)),
        *((f"Transitions {ref} → {n} (rows: {ref}'s bin, columns: {n}'s bin)", transition_table(metrics, n))
          for n in names if "transitions" in metrics["models"][n]),
        ("Answer entropy per bin (nats)", bin_table(metrics, names, lambda m: m["per_bin_entropy"])),
        ("Response length and reflection keywords", length_table(metrics, names)),
        ("Figures", [f"![{f}]({f})" for f in figures]),
    ]
    lines = ["# Evaluation report", "", f"{metrics['questions']} questions, k = {k} samples each; bins by "
             f"**{ref}**'s success count X. A question with X = 0 has p < {metrics['unsolved_bound']:.4f} at 95% "
             "confidence."]
    for title, rows in sections:
        lines += ["", f"## {title}", "", *rows]
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


def pyplot():
    """matplotlib.pyplot with the file-only backend, imported on first use: the import takes about a second that
    a run or report without figures never needs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    with written_whole(out_dir / name) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(name).suffix[1:])
    pyplot().close(fig)
    return name


def _colors(n: int):
    return pyplot().get_cmap("tab20" if n > 10 else "tab10").colors


def plot_pass_at_k(ax, metrics: dict, names: list[str], title: str) -> None:
    """Each named model's pass@k curve against k (log scale) on ax."""
    k, colors = metrics["k"], _colors(len(names))
    for j, name in enumerate(names):
        ax.plot(np.arange(1, k + 1), metrics["models"][name]["pass@k"], label=name, lw=2, color=colors[j % len(colors)])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per question, log scale)")
    ax.set_ylabel("pass@k")
    ax.set_title(f"{title} ({metrics['questions']} questions, n = {k})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(**({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8} if len(names) > 4 else {}))


def plot_per_bin(ax, metrics: dict, names: list[str], value, ylabel: str, title: str, scale: float = 1.0) -> None:
    """Bars of a per-bin list (`value(model_metrics)`, times `scale`) for each named model, bins on the x axis."""
    many = len(names) > 3  # the legend goes beside the plot, bars unlabelled
    colors, x, width = _colors(len(names)), np.arange(len(metrics["bins"])), 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        vals = [0.0 if v is None else scale * v for v in value(metrics["models"][name])]
        bars = ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width, label=name, color=colors[j % len(colors)])
        if not many:
            ax.bar_label(bars, fmt="%.1f" if scale != 1.0 else "%.2f", fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [f"{b}\nn={n}" for b, n in zip(metrics["bins"], metrics["bin_sizes"])])
    ax.set_xlabel(f"bin of {metrics['reference']}'s success count X out of {metrics['k']}")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(**({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8} if many else {"fontsize": 8}))


def figure(out_dir: Path, name: str, draw, panels: int = 1) -> str:
    """A figure of `panels` side-by-side axes, drawn by draw(axes), saved as out_dir/name."""
    fig, axes = pyplot().subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    draw(list(axes[0]))
    return _save(fig, out_dir, name)


def plot_transitions(metrics: dict, out_dir: Path, name: str) -> str:
    k, ref = metrics["k"], metrics["reference"]
    fig, ax = pyplot().subplots(figsize=(5.5, 4.5))
    im = draw_transitions(ax, metrics["models"][name]["transitions"], metrics["bins"])
    ax.set_xlabel(f"{name}: bin of X out of {k}")
    ax.set_ylabel(f"{ref}: bin of X out of {k}")
    ax.set_title(f"Transitions {ref} → {name} (share of row)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, out_dir, f"transitions_{name}.png")


def plot_figures(metrics: dict, out_dir: Path) -> list[str]:
    """pass@k curves, per-bin accuracy change bars, and one transition heatmap per compared model."""
    names, ref = list(metrics["models"]), metrics["reference"]
    others = [n for n in names if n != ref]
    files = [figure(out_dir, "pass_at_k.png", lambda ax: plot_pass_at_k(ax[0], metrics, names, "pass@k"))]
    if others:
        files.append(figure(out_dir, "per_bin_change.png", lambda ax: plot_per_bin(
            ax[0], metrics, others, change, "change in mean accuracy (points)",
            f"Per-bin accuracy change relative to {ref}", scale=100)))
    return files + [plot_transitions(metrics, out_dir, name) for name in others]


def write_report(metrics: dict, out_dir: str | Path, figures: bool = True) -> list[Path]:
    """metrics.json, report.md and (unless figures=False) the figures, in out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(out_dir)  # a killed report's (several processes may share a results folder: dead ones only)
    atomic_write(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    figures = plot_figures(metrics, out_dir) if figures else []
    atomic_write(out_dir / "report.md", markdown_report(metrics, figures))
    return [out_dir / "metrics.json", out_dir / "report.md"] + [out_dir / f for f in figures]
