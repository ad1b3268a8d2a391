"""CLAIMS.md for the claim lab: for each claim, the verdict in each world (on, local, off), beside the paper's numbers.

    python experiments/claims_report.py runs/lab experiments/CLAIMS.md   # claim_lab.py does this after each stage

Reads <lab>/<world>/eval/metrics.json and the samples files beside it. Writes the page (default
<lab>/CLAIMS.md) and, beside it, figures/lab/*.png (one figure per claim, the worlds side by side). A world appears
once its base and RL runs are evaluated; a claim whose runs are missing is shown as pending. Each verdict rule was
fixed with the worlds, before any run; it is the docstring of its `*_verdict` function and is printed on the page.
Changes are in points (percentage points of questions).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from world_report import PAPER, knowledge_labels, mean_sd, points, seeds, world_detail  # noqa: E402

from minireason.collect import QuestionRecord, read_samples_file  # noqa: E402
from minireason.curves import read_log  # noqa: E402
from minireason.files import atomic_write  # noqa: E402
from minireason.lab_world import (KNOWLEDGE_GROUPS, LabTutor, exposure, long_sum_stated_right,  # noqa: E402
                                  products_stated)
from minireason.metrics import reflection_count  # noqa: E402
from minireason.report import change, figure, plot_pass_at_k, plot_per_bin  # noqa: E402
from minireason.tasks import toy_split  # noqa: E402
from minireason.toy import process_correct  # noqa: E402

NOTES = Path(__file__).with_name("claims_notes.md")  # the page's dated prose, one section per marker
DEFAULT_WORLD = "on"  # the world shown in detail (the toy study's tables and figures): every mechanism is on
WORLD_ORDER = ("on", "local", "off")  # shared knowledge, knowledge locality, mechanisms off
ONLY_IN = {"E3": ("on",), "E4": ("on", "off"), "E5": ("on", "off"), "E6": ("on",)}  # claims not measured everywhere


def note(section: str) -> str:
    """The text of claims_notes.md under `<!-- section -->`, up to the next marker: why the settings are what they
    are ("why", written before any RL run), the changes after the runs ("changes"), world local's predictions
    ("predictions-local"), what a k = 256 lab's runs showed ("findings-FOLDER", written after the runs in that lab
    folder, so that it never describes another lab's). Earlier labs' findings are on their frozen pages
    (CLAIMS-v2.md, CLAIMS-v3.md)."""
    parts = re.split(r"^<!-- ([\w-]+) -->$", NOTES.read_text(), flags=re.M)
    sections = dict(zip(parts[1::2], (text.strip("\n") for text in parts[2::2])))
    if section not in sections:
        raise ValueError(f"{NOTES}: no section <!-- {section} -->")
    return sections[section]


def load_world(lab: Path, world: str) -> dict | None:
    """A world's metrics.json: its models on the test set at the lab's k."""
    path = lab / world / "eval" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def question_records(lab: Path, world: str, name: str) -> list[QuestionRecord]:
    return read_samples_file(lab / world / "eval" / f"samples-{name}.jsonl")[1]


def gains(metrics: dict, models: list[str], key) -> list[float]:
    """key(model metrics) - key(base metrics), in points, per model."""
    base = key(metrics["models"]["base"])
    return [100 * (key(metrics["models"][n]) - base) for n in models]


def mean_bins(metrics: dict, models: list[str], value) -> list[float | None]:
    """The mean over models of a per-bin list (`value(model metrics)`); None where no model has a value."""
    columns = zip(*(value(metrics["models"][n]) for n in models))
    return [float(np.mean(vals)) if (vals := [v for v in col if v is not None]) else None for col in columns]


# ----------------------------------------------------------------------------------------------
# Verdict rules (fixed before any run)


def e1_verdict(acc_gain: float, cap_gain: float) -> str:
    """reproduced: RL raises accuracy by at least 5 points and pass@k by at most 1 (the paper: +13.9 and -0.2);
    mixed: accuracy by at least 5 and pass@k by at most 3; otherwise not reproduced (means over seeds)."""
    if acc_gain >= 5 and cap_gain <= 1:
        return "reproduced"
    return "mixed" if acc_gain >= 5 and cap_gain <= 3 else "not reproduced"


def e2_verdict(per_bin: list[float | None]) -> str:
    """reproduced: the largest mean gain sits above the [5-16] bin, and the [1-4] bin gains less than half of it
    (the paper: +0.6 in [1-4], the largest, +36.6, in [65-128]); otherwise not reproduced."""
    vals = [-np.inf if v is None else v for v in per_bin]
    top = int(np.argmax(vals))
    ok = top >= 3 and (per_bin[1] is None or per_bin[1] < vals[top] / 2)
    return "reproduced" if ok else "not reproduced"


def e3_verdict(base: list[float | None], rl: list[float | None]) -> str:
    """reproduced: RL's answer entropy (mean over seeds) is below the base's in every bin that has questions."""
    pairs = [(b, r) for b, r in zip(base, rl) if b is not None and r is not None]
    return "reproduced" if pairs and all(r < b for b, r in pairs) else "not reproduced"


def e4_verdict(diff: float) -> str:
    """reproduced: Base<-RL beats Base<-Base on test accuracy by at least 3 points (the paper: +11.6 - 0.8 = +10.8)."""
    return "reproduced" if diff >= 3 else "not reproduced"


def e5_verdict(length_ratio: float, reflection_gain: float) -> str:
    """reproduced: RL responses are at most 5% longer (tokens) and carry no more reflection phrases per response
    than the base's (means over seeds; the paper: 643 vs 707 characters, 0.59-0.67 vs 0.86-0.99 phrases)."""
    return "reproduced" if length_ratio <= 1.05 and reflection_gain <= 0 else "not reproduced"


def e6_verdict(reasoning_cap: float, all_cap: float) -> str:
    """reproduced: reasoning-only distillation raises pass@k by at most 1 point (like RL), and distillation on all
    questions (new knowledge) by at least 3 (the paper, qualitatively: only the new-knowledge teacher adds
    capability)."""
    return "reproduced" if reasoning_cap <= 1 and all_cap >= 3 else "not reproduced"


# ----------------------------------------------------------------------------------------------
# Per-question lenses the paper cannot have: what each question needs, and whether a right answer was earned


def knowledge_of(lab: Path, world: str) -> list[str]:
    """Each evaluated question's knowledge group under the world's tutor, in the samples' order."""
    tutor = LabTutor.from_model(str(lab / world / "toy-base"))
    problems = {p.id: p for p in toy_split("test")}
    return knowledge_labels([problems[r.id] for r in question_records(lab, world, "base")], tutor)


def hard_gap_cells(model: dict, gap: list[int], k: int) -> list[str]:
    """Decision 1's hard-gap line for one model (its metrics.json entry; gap: the hard-gap questions' indices):
    questions with a right sample, of them those with a faithful one (every step right, `toy.faithful`), and both
    residues (right samples / samples). "-" where the metrics have no faithful counts."""
    samples, right, faithful = max(1, len(gap) * k), model["counts"], model.get("faithful_counts")
    share = lambda counts: f"{sum(counts[i] for i in gap) / samples:.1e}" if any(counts[i] for i in gap) else "0"
    return [f"{sum(right[i] > 0 for i in gap)} of {len(gap)}",
            f"{sum(faithful[i] > 0 for i in gap)}" if faithful else "-", share(right),
            share(faithful) if faithful else "-"]


def hard_gap_section(lab: Path, worlds: dict) -> list[str]:
    """Every evaluated model's hard-gap line, world by world. The tutor's X = 0 there holds by construction (it
    states each gap fact wrong); a learnt model's need not: a right box over wrong steps (the outcome residue), or a
    gap fact found (a faithful solve)."""
    lines = [f"k = {next(iter(worlds.values()))['k']}. A question counts when at least one sample is right; a "
             "faithful solve is a right sample whose every step is right.", "",
             "| world | model | hard-gap questions with a right sample | of them with a faithful one | outcome "
             "residue (right samples / samples) | faithful residue |", "|---|---|---|---|---|---|"]
    for world, m in worlds.items():
        gap = [i for i, g in enumerate(knowledge_of(lab, world)) if g == "hard-gap"]
        lines += [f"| {world} | {name} | " + " | ".join(hard_gap_cells(model, gap, m["k"])) + " |"
                  for name, model in m["models"].items()]
    return lines


def group_rows(metrics: dict, groups: list[str], models: dict[str, list[str]]) -> list[str]:
    """Rows of pass@k and faithful pass@k per knowledge group: for each label, the mean over its models of the share
    of the group's questions with a right sample, and with a faithful one ("-" for metrics without it)."""
    k = metrics["k"]

    def share(names: list[str], idx: list[int], key: str) -> str:
        if not names or any(key not in metrics["models"][n] for n in names):
            return "-"
        return f"{np.mean([np.mean([metrics['models'][n][key][i] > 0 for i in idx]) for n in names]) * 100:.1f}"

    rows = []
    for g in KNOWLEDGE_GROUPS:
        idx = [i for i, q in enumerate(groups) if q == g]
        if idx:
            rows.append(f"| {g} | {len(idx)} | " + " | ".join(
                f"{share(ns, idx, 'counts')} / {share(ns, idx, 'faithful_counts')}" for ns in models.values()) + " |")
    return ["| knowledge needed | questions | " + " | ".join(f"{label} pass@{k} / faithful" for label in models)
            + " |", "|---|---|" + "---|" * len(models)] + rows


def long_sums_right(records: list[QuestionRecord]) -> tuple[float, int]:
    """(share stated right, count) over every sampled trace whose last addition has a five-digit true sum."""
    stated = [r for rec in records for s in rec.samples if (r := long_sum_stated_right(s["text"])) is not None]
    return (float(np.mean(stated)) if stated else float("nan")), len(stated)


def reach_lines(lab: Path, world: str, m: dict) -> list[str]:
    """Whether the reach knob's knowledge stays apart: how often each model states a five-digit final sum right
    (the tutor: `long_sum` of the time). Only for a world whose tutor makes long sums rare."""
    long_sum = LabTutor.from_model(str(lab / world / "toy-base")).long_sum
    if long_sum >= 1:
        return []
    labels = {"base": ["base"], "RL (mean of seeds)": seeds(m), "Base←Base": ["base-from-base"],
              "Base←RL": ["base-from-rl"], "reasoning-only": ["reasoning-only"], "all-questions": ["all-questions"]}
    cells = {}
    for label, models in labels.items():
        shares = [long_sums_right(question_records(lab, world, n)) for n in models if n in m["models"]]
        shares = [(share, count) for share, count in shares if count]
        if shares:
            cells[label] = f"{points(np.mean([s for s, _ in shares]))}% of {sum(c for _, c in shares)}"
    if not cells:
        return []
    return ["", f"World {world}, five-digit final sums stated right, over every sampled trace that ends in one "
            f"(the tutor: {points(long_sum)}%; only the hardest level has them):", "",
            "| " + " | ".join(cells) + " |", "|" + "---|" * len(cells), "| " + " | ".join(cells.values()) + " |"]


def fact_lines(lab: Path, world: str, m: dict) -> list[str]:
    """How often the base and RL state each partial fact right, over every product step of every sampled trace:
    whether RL taught the rare facts themselves (the tutor: each fact's own rate)."""
    tutor = LabTutor.from_model(str(lab / world / "toy-base"))
    if not tutor.partial_facts:
        return []
    models = {"base": ["base"], "RL (mean of seeds)": seeds(m)}
    rates = {label: {} for label in models}
    for label, names in models.items():
        for name in names:
            stated = [s for rec in question_records(lab, world, name) for t in rec.samples
                      for s in products_stated(t["text"])]
            for fact, _ in tutor.partial_facts:
                right = [ok for f, ok in stated if f == fact]
                if right:
                    rates[label].setdefault(fact, []).append((np.mean(right), len(right)))

    def cell(label: str, fact: str) -> str:
        got = rates[label].get(fact)
        return f"{points(np.mean([r for r, _ in got]))}% of {sum(c for _, c in got)}" if got else "-"
    rows = [f"| {fact} | {points(rate)}% | " + " | ".join(cell(label, fact) for label in models) + " |"
            for fact, rate in tutor.partial_facts]
    return ["", f"World {world}, partial facts stated right, over every product step sampled:", "",
            "| fact | tutor | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models), *rows]


# ----------------------------------------------------------------------------------------------
# One section per claim: markdown lines, and the verdict per world


def accuracy(m: dict) -> float:
    return m["accuracy"]


def capability(m: dict) -> float:
    return m["pass@k"][-1]


def faithful_capability(m: dict) -> float:
    """pass@k counting only samples whose every step is right (report.faithful_metrics)."""
    return m["faithful_pass@k"][-1]


def faithful_cells(m: dict, runs: list[str]) -> str:
    """The E1 table's faithful columns: base faithful pass@k and RL's gain, or dashes for metrics without them."""
    if "faithful_pass@k" not in m["models"]["base"]:
        return "- | -"
    return f"{points(faithful_capability(m['models']['base']))} | {mean_sd(gains(m, runs, faithful_capability))}"


def spread_section(worlds: dict) -> list[str]:
    """Each world's base: how its test questions spread over the bins."""
    m0 = next(iter(worlds.values()))
    lines = [f"k = {m0['k']}:", "", "| | " + " | ".join(m0["bins"]) + " |", "|---|" + "---|" * len(m0["bins"])]
    for world, metrics in worlds.items():
        shares = [f"{n} ({100 * n / metrics['questions']:.0f}%)" for n in metrics["bin_sizes"]]
        lines.append(f"| world {world}, base | " + " | ".join(shares) + " |")
    return lines


def e1_section(lab: Path, worlds: dict) -> tuple[list[str], dict]:
    k = next(m["k"] for m in worlds.values())
    lines = [f"| world | base accuracy | RL − base accuracy | base pass@{k} | RL − base pass@{k} | base faithful "
             f"pass@{k} | RL − base faithful pass@{k} | verdict |", "|---|---|---|---|---|---|---|---|",
             f"| paper (Table 3, 1.5B, test, k = 256) | | {PAPER['E1'][1]['test'][0]:+.1f} | | "
             f"{PAPER['E1'][1]['test'][2]:+.1f} | | | |"]
    verdicts, by_group = {}, []
    for world, m in worlds.items():
        rl = seeds(m)
        acc, cap = gains(m, rl, accuracy), gains(m, rl, capability)
        verdicts[world] = e1_verdict(np.mean(acc), np.mean(cap))
        lines.append(f"| {world} | {points(accuracy(m['models']['base']))} | {mean_sd(acc)} | "
                     f"{points(capability(m['models']['base']))} | {mean_sd(cap)} | {faithful_cells(m, rl)} | "
                     f"**{verdicts[world]}** |")
        by_group += ["", f"World {world}, by what a question needs (RL: mean over {len(rl)} seeds):", ""]
        by_group += group_rows(m, knowledge_of(lab, world), {"base": ["base"], "RL": rl})
        by_group += reach_lines(lab, world, m) + fact_lines(lab, world, m)
    return lines + by_group, verdicts


def e2_section(worlds: dict) -> tuple[list[str], dict]:
    m0 = next(iter(worlds.values()))
    lines = ["| world | " + " | ".join(m0["bins"]) + " | base X ≥ 1, RL X = 0 | verdict |",
             "|---|" + "---|" * (len(m0["bins"]) + 2)]
    if m0["k"] == 256:
        lines.append("| paper (Fig. 1, 1.5B) | " + " | ".join(f"{v:+.1f}" for v in PAPER["E2"][1]) + " | | |")
    verdicts = {}
    for world, m in worlds.items():
        rl = seeds(m)
        per_bin = mean_bins(m, rl, change)
        base = m["models"]["base"]["counts"]
        lost = [sum(b > 0 and r == 0 for b, r in zip(base, m["models"][n]["counts"])) for n in rl]
        verdicts[world] = e2_verdict(per_bin)
        lines.append(f"| {world} (questions: {'/'.join(map(str, m['bin_sizes']))}) | "
                     + " | ".join("-" if v is None else f"{100 * v:+.1f}" for v in per_bin)
                     + f" | {np.mean(lost):.1f} | **{verdicts[world]}** |")
    return lines, verdicts


def exposure_section(lab: Path, worlds: dict) -> list[str]:
    """The mechanism the paper gives for E2 (§4.2), measured: per rare piece of knowledge, how many of RL's groups
    need it and in what share of them at least one sample is right (lab_world.exposure); mean over the seeds."""
    lines = ["| world | knowledge | groups per run | rollouts per run | share of groups with a right sample | "
             "groups with a right sample per run |", "|---|---|---|---|---|---|"]
    train = toy_split("train")
    for world, m in worlds.items():
        tutor, runs = LabTutor.from_model(str(lab / world / "toy-base")), []
        for name in seeds(m):
            rows = [r for r in read_log(lab / world / name / "log.jsonl") if "questions" in r]
            group_size = json.loads((lab / world / name / "config.json").read_text())["group_size"]
            runs += [exposure(rows, train, tutor, group_size)] if rows else []
        for item in runs[0] if runs else []:
            shares = [r[item]["share_with_right"] for r in runs if r[item]["groups"]]
            lines.append(f"| {world} | {item} | {np.mean([r[item]['groups'] for r in runs]):.0f} | "
                         f"{np.mean([r[item]['rollouts'] for r in runs]):.0f} | "
                         f"{f'{points(np.mean(shares))}%' if shares else '-'} | "
                         f"{np.mean([r[item]['groups'] * (r[item]['share_with_right'] or 0) for r in runs]):.1f} |")
    return lines if len(lines) > 2 else ["Pending: no RL log names its questions yet."]


def e3_section(worlds: dict) -> tuple[list[str], dict]:
    m = worlds["on"]
    runs = seeds(m)
    base, rl = m["models"]["base"]["per_bin_entropy"], mean_bins(m, runs, lambda x: x["per_bin_entropy"])
    verdict = e3_verdict(base, rl)
    fmt = lambda vals: " | ".join("-" if v is None else f"{v:.2f}" for v in vals)  # noqa: E731
    return ["Answer entropy (nats) per base bin, world on:", "",
            "| model | " + " | ".join(m["bins"]) + " | verdict |", "|---|" + "---|" * (len(m["bins"]) + 1),
            f"| base | {fmt(base)} | |", f"| RL (mean of {len(runs)}) | {fmt(rl)} | **{verdict}** |"], {"on": verdict}


def unfaithful_share(records: list[QuestionRecord]) -> float:
    """Share of a model's right answers that sit over a wrong step (the data an outcome filter keeps)."""
    problems = {p.id: p for p in toy_split("test")}
    right = [(s["text"], problems[r.id]) for r in records for s in r.samples if s["correct"]]
    return sum(not process_correct(t, p) for t, p in right) / max(len(right), 1)


def e4_section(lab: Path, worlds: dict) -> tuple[list[str], dict]:
    paper = PAPER["E4"][1]
    lines = ["| world | Base←Base − base accuracy | Base←RL − base accuracy | Base←RL − Base←Base | "
             "unfaithful share of right answers: base / RL seed 0 | verdict |", "|---|---|---|---|---|---|",
             f"| paper (Table 4, 1.5B) | {paper['base ← base']:+.1f} | {paper['base ← rl']:+.1f} | "
             f"{paper['base ← rl'] - paper['base ← base']:+.1f} | | |"]
    verdicts = {}
    for world, m in worlds.items():
        if "base-from-rl" not in m["models"]:
            continue
        self_gain, rl_gain = gains(m, ["base-from-base", "base-from-rl"], accuracy)
        verdicts[world] = e4_verdict(rl_gain - self_gain)
        shares = [unfaithful_share(question_records(lab, world, n)) for n in ("base", "rl-seed0")]
        lines.append(f"| {world} | {self_gain:+.1f} | {rl_gain:+.1f} | {rl_gain - self_gain:+.1f} | "
                     f"{100 * shares[0]:.1f}% / {100 * shares[1]:.1f}% | **{verdicts[world]}** |")
    return lines, verdicts


def reflected_accuracy(records: list[QuestionRecord]) -> str:
    hits = [s["correct"] for r in records for s in r.samples if reflection_count(s["text"])]
    return f"{100 * np.mean(hits):.1f}% of {len(hits)}" if hits else "none"


def e5_section(lab: Path, worlds: dict) -> tuple[list[str], dict]:
    lines = ["| world | tokens: base / RL | reflection phrases per response: base / RL | right answers among "
             "reflected responses: base / RL seed 0 | verdict |", "|---|---|---|---|---|",
             "| paper (Fig. 3, 14, 1.5B) | 707 / 643 characters | 0.86-0.99 / 0.59-0.67 | | |"]
    verdicts = {}
    for world, m in worlds.items():
        rl, base = seeds(m), m["models"]["base"]
        tokens = np.mean([m["models"][n]["length"]["tokens"]["all"] for n in rl])
        reflect = np.mean([m["models"][n]["reflection"]["all"] for n in rl])
        verdicts[world] = e5_verdict(tokens / base["length"]["tokens"]["all"], reflect - base["reflection"]["all"])
        lines.append(f"| {world} | {base['length']['tokens']['all']:.1f} / {tokens:.1f} | "
                     f"{base['reflection']['all']:.3f} / {reflect:.3f} | "
                     f"{reflected_accuracy(question_records(lab, world, 'base'))} / "
                     f"{reflected_accuracy(question_records(lab, world, 'rl-seed0'))} | **{verdicts[world]}** |")
    return lines, verdicts


def process_section(lab: Path, m: dict) -> list[str]:
    """Outcome vs process reward in world on: all questions, and the hard-gap questions (X = 0 for the tutor)."""
    k = m["k"]
    gap = [i for i, g in enumerate(knowledge_of(lab, "on")) if g == "hard-gap"]
    lines = [f"| model | accuracy | pass@{k} | faithful pass@{k} | hard-gap questions with a right sample | of them "
             "with a faithful one |", "|---|---|---|---|---|---|"]
    for label, models in (("base", ["base"]), ("RL, outcome reward", seeds(m)),
                          ("RL, process reward", seeds(m, "process-seed"))):
        for n in models:
            model = m["models"][n]
            faithful = points(faithful_capability(model)) if "faithful_pass@k" in model else "-"
            lines.append(f"| {label}: {n} | {points(accuracy(model))} | {points(capability(model))} | {faithful} | "
                         + " | ".join(hard_gap_cells(model, gap, k)[:2]) + " |")
    return lines


def e6_section(lab: Path, m: dict) -> tuple[list[str], dict]:
    k = m["k"]
    arms = ["reasoning-only", "all-questions"]
    acc, cap = gains(m, arms, accuracy), gains(m, arms, capability)
    verdict = e6_verdict(cap[0], cap[1])
    faithful = gains(m, arms, faithful_capability) if "faithful_pass@k" in m["models"]["base"] else ["-", "-"]
    lines = [f"| model | accuracy − base | pass@{k} − base | faithful pass@{k} − base |", "|---|---|---|---|"]
    lines += [f"| {a} | {x:+.1f} | {y:+.1f} | {f if f == '-' else f'{f:+.1f}'} |"
              for a, x, y, f in zip(arms, acc, cap, faithful)]
    lines += ["", f"Verdict: **{verdict}**.", ""]
    lines += group_rows(m, knowledge_of(lab, "on"), {"base": ["base"], **{a: [a] for a in arms}})
    return lines, {"on": verdict}


# ----------------------------------------------------------------------------------------------
# Figures (the two worlds side by side) and the page


def draw_worlds(fig_dir: Path, name: str, worlds: dict, draw) -> str:
    """One panel per world, drawn by draw(ax, world, metrics)."""
    def panels(axes):
        for ax, (world, m) in zip(axes, worlds.items()):
            draw(ax, world, m)
    return figure(fig_dir, name, panels, panels=len(worlds))


def claim_figures(fig_dir: Path, worlds: dict) -> dict[str, str]:
    out = {
        "E1": draw_worlds(fig_dir, "e1_pass_at_k.png", worlds, lambda ax, w, m: plot_pass_at_k(
            ax, m, ["base", *seeds(m)], f"E1, world {w}: pass@k")),
        "E2": draw_worlds(fig_dir, "e2_per_bin.png", worlds, lambda ax, w, m: plot_per_bin(
            ax, m, seeds(m), change, "RL − base (points)", f"E2, world {w}", scale=100)),
    }
    if reflecting := {w: m for w, m in worlds.items() if w in ONLY_IN["E5"]}:
        out["E5"] = draw_worlds(fig_dir, "e5_reflection.png", reflecting, lambda ax, w, m: (
            ax.bar(["base", *seeds(m)], [m["models"][n]["reflection"]["all"] for n in ["base", *seeds(m)]]),
            ax.set_ylabel("reflection phrases per response"), ax.set_title(f"E5, world {w}")))
    if "on" not in worlds:
        return out
    out["E3"] = draw_worlds(fig_dir, "e3_entropy.png", {"on": worlds["on"]}, lambda ax, w, m: plot_per_bin(
        ax, m, ["base", *seeds(m)], lambda x: x["per_bin_entropy"], "answer entropy (nats)", f"E3, world {w}"))
    distilled = {w: m for w, m in worlds.items() if "base-from-rl" in m["models"]}
    if distilled:
        out["E4"] = draw_worlds(fig_dir, "e4_self_distillation.png", distilled, lambda ax, w, m: plot_per_bin(
            ax, m, ["base-from-base", "base-from-rl"], change, "change over base (points)", f"E4, world {w}", 100))
    if "all-questions" in worlds["on"]["models"]:
        out["E6"] = draw_worlds(fig_dir, "e6_distillation.png", {"on": worlds["on"]}, lambda ax, w, m: plot_pass_at_k(
            ax, m, ["base", "reasoning-only", "all-questions"], f"E6, world {w}: teacher distillation"))
    return out


JUDGED = {
    "E1": "RL − base, test: accuracy +13.9, pass@256 −0.2 (Table 3)",
    "E2": "sign and order of the per-bin gains: ≈ 0 in [0] and [1-4], largest in [65-128] (Fig. 1)",
    "E3": "answer entropy falls in every bin (Fig. 5)",
    "E4": "Base←RL − Base←Base test accuracy: +10.8 (Table 4)",
    "E5": "RL not longer (643 vs 707 characters), fewer reflection phrases (Fig. 3, 14)",
    "E6": "only distillation with new knowledge adds capability (§6)",
}
RULES = {"E1": e1_verdict, "E2": e2_verdict, "E3": e3_verdict, "E4": e4_verdict, "E5": e5_verdict, "E6": e6_verdict}


def claim_sections(lab: Path, worlds: dict) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Markdown lines and verdicts of every claim whose runs exist."""
    sections, verdicts = {"spread": spread_section(worlds), "hard-gap": hard_gap_section(lab, worlds)}, {}
    sections["E1"], verdicts["E1"] = e1_section(lab, worlds)
    sections["E2"], verdicts["E2"] = e2_section(worlds)
    sections["exposure"] = exposure_section(lab, worlds)
    reflecting = {w: m for w, m in worlds.items() if w in ONLY_IN["E5"]}
    if reflecting:
        sections["E5"], verdicts["E5"] = e5_section(lab, reflecting)
    if any("base-from-rl" in m["models"] for m in worlds.values()):
        sections["E4"], verdicts["E4"] = e4_section(lab, worlds)
    if "on" in worlds:
        sections["E3"], verdicts["E3"] = e3_section(worlds)
        if seeds(worlds["on"], "process-seed"):
            sections["process"] = process_section(lab, worlds["on"])
        if "all-questions" in worlds["on"]["models"]:
            sections["E6"], verdicts["E6"] = e6_section(lab, worlds["on"])
    if "local" in worlds:
        sections["predictions"] = prediction_lines(verdicts)
    return sections, verdicts


def prediction_lines(verdicts: dict) -> list[str]:
    """World local's predictions, quoted unchanged from claims_notes.md (written before its runs), beside its
    verdicts."""
    quoted = ["> " + line if line else ">" for line in note("predictions-local").splitlines()]
    return quoted + ["", "Measured (the tables above): " + "; ".join(
        f"{claim} **{v['local']}**" for claim, v in verdicts.items() if "local" in v) + "."]


TITLES = {
    "spread": "Each world's base: spread over the bins",
    "hard-gap": "The hard-gap line: every model, outcome and faithful",
    "E1": "E1: accuracy rises, capability does not",
    "E2": "E2: the gains sit on easier questions",
    "exposure": "Why (§4.2): RL's exposure to each piece of rare knowledge",
    "E3": "E3: answer entropy falls (world on)",
    "E4": "E4: RL's right answers teach more than the base's own",
    "E5": "E5: RL responses are not longer and reflect no more",
    "process": "Outcome vs process reward (world on)",
    "E6": "E6: distillation adds capability only with new knowledge (world on)",
    "predictions": "World local: the predictions written before its runs, and what came out",
}


def header(lab: Path, settings: dict) -> list[str]:
    k = settings["k"]
    worlds = "; ".join(f"**{w}**: `{' '.join(flags)}`" for w, flags in settings["worlds"].items())
    questions = "16 questions: a miniature" if settings["mini"] else "600 questions"
    locality = "; ".join(f"**{w}** keeps {100 * share:g}%" for w, share in settings.get("locality", {}).items())
    return ["# The claim lab", "",
            f"Written by `experiments/claim_lab.py` from the runs in `{lab.name}/`. Three worlds: **on**, shared "
            "knowledge (every mechanism at its paper-like setting; the default world), **local**, knowledge "
            "locality (world off's base; RL seldom meets the rare facts), and **off** (the mechanisms off). E1 and E2 "
            "are judged in all three, E4 and E5 in on and off, E3 and E6 in on.",
            f"k = {k} samples per question of the toy test set ({questions}), bins by the world's base; GRPO over "
            f"{settings['seeds']} seeds (`train_rl.py` toy defaults); distillation pool "
            f"{settings['distillation pool']} train questions. Tutor flags (`python -m minireason.lab_world`): "
            f"{worlds}. Of RL's train questions that need a rare fact, {locality or 'every world keeps all'}.", ""]


def opening_screen(lab: Path, verdicts: dict, settings: dict) -> list[str]:
    """The page's first screen: every claim's verdict per world, then, for a full lab whose runs have been read
    (claims_notes.md's `summary-FOLDER`, written after them), one sentence of why a claim."""
    summary = f"summary-{lab.name}"
    full_lab = not settings["mini"] and not settings["fast"]
    why = ["", note(summary)] if full_lab and f"<!-- {summary} -->" in NOTES.read_text() else []
    return verdict_table(verdicts, settings["k"]) + why + [""]


def verdict_table(verdicts: dict, k: int) -> list[str]:
    """One row per claim, one column per world; below the paper's k = 256 (--fast, --mini) labelled with the k."""
    title = "## Verdicts" if k == 256 else f"## Verdicts at k = {k}, not the paper's 256"
    rows = [title, "", "| claim | judged against (Kim et al. 2025, 1.5B) | "
            + " | ".join(f"world {w}" for w in WORLD_ORDER) + " |", "|---|---|" + "---|" * len(WORLD_ORDER)]
    for claim, judged in JUDGED.items():
        cells = [verdicts.get(claim, {}).get(w, "pending" if w in ONLY_IN.get(claim, WORLD_ORDER) else "-")
                 for w in WORLD_ORDER]
        rows.append(f"| {claim} | {judged} | " + " | ".join(cells) + " |")
    return rows


def times_lines(lab: Path) -> list[str]:
    times_file = lab / "times.json"
    times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    lines = ["", "## Time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {sec} |" for stage, sec in times.items()]
    for world in ("on", "off"):
        config = lab / world / "toy-base" / "config.json"
        if config.is_file():
            seconds = json.loads(config.read_text())["minireason"]["summary"]["seconds"]
            lines.append(f"| (pretraining the {world} base, as its config.json records) | {seconds:.0f} |")
    return lines


def detail_lines(lab: Path, page: Path, fast: bool) -> list[str]:
    """The default world in detail (claim_lab.py's stage 6), its figures in the page's figures/ folder."""
    detail = world_detail(lab / DEFAULT_WORLD, page.parent / "figures")
    return ["", f"## The default world in detail (world {DEFAULT_WORLD})", "",
            "Every experiment's tables and figures in one world, beside the paper's numbers: the base, the RL seeds, "
            "GRPO's two one-flag ablations (Dr. GRPO: no std scaling and a constant normaliser; a KL penalty, "
            "β = 0.05), the self-distillation arms Base←Base, RL←RL and Base←RL, the teacher and its two "
            "distillations, on the test set and on a train subset (E1, E2 and E4 on train), and every result split by "
            "the knowledge a question needs.", "",
            *(detail or ["Not run: a `--fast` lab measures the claims only." if fast else
                         "Pending: stage 6 has not run in this lab folder."])]


def write_claims(lab: Path, settings: dict, page: Path | None = None) -> Path:
    """Rewrite the page (default <lab>/CLAIMS.md) and its figures from whatever runs exist."""
    lab = Path(lab)
    page = Path(page) if page else lab / "CLAIMS.md"
    # a world counts once its report covers the base and RL (stage 3); an evaluate.py run on a subset may overwrite it
    # (with --jobs, each model's own call does, until the stage's last call reports all)
    worlds = {w: m for w in WORLD_ORDER
              if (m := load_world(lab, w)) is not None and "base" in m["models"] and seeds(m)}
    lines = header(lab, settings)
    if worlds:
        fig_dir = page.parent / "figures" / "lab"
        fig_dir.mkdir(parents=True, exist_ok=True)
        sections, verdicts = claim_sections(lab, worlds)
        figures = claim_figures(fig_dir, worlds)
        lines += opening_screen(lab, verdicts, settings) + [note("why"), "", note("changes")]
        findings = f"findings-{lab.name}"  # written after this k = 256 lab's runs, about them only
        full_lab = not settings["mini"] and not settings["fast"]
        lines += ["", note(findings)] if full_lab and f"<!-- {findings} -->" in NOTES.read_text() else []
        for key, title in TITLES.items():
            lines += ["", f"## {title}", ""]
            if key in RULES:
                lines += ["Rule, fixed before the runs: " + " ".join(RULES[key].__doc__.split()), ""]
            if key in figures:
                lines += [f"![{key}](figures/lab/{figures[key]})", ""]
            lines += sections.get(key, ["Pending: its runs have not finished."])
        lines += detail_lines(lab, page, settings["fast"])
    else:
        lines += [note("why"), "", note("changes"), "", "No evaluation yet: the runs are pending."]
    lines += times_lines(lab)
    atomic_write(page, "\n".join(lines) + "\n")
    return page


if __name__ == "__main__":
    lab_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "runs" / "lab"
    page_path = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(write_claims(lab_dir, json.loads((lab_dir / "settings.json").read_text()), page_path))
