"""Convert downloaded datasets into the project's JSONL: one {"id", "question", "answer", ...} per line.

    python -m minireason.convert math  MATH-500/test.jsonl   math500.jsonl     # problem, solution, answer?
    python -m minireason.convert gsm8k gsm8k/test.jsonl      gsm8k_test.jsonl  # question, "... #### 42"
    python -m minireason.convert fields data.jsonl out.jsonl --question prompt --answer target [--id uid]

An existing output file is kept unless --overwrite is given; the input is never written over.

Input is JSON Lines (what `datasets.Dataset.to_json` writes) or one JSON array of records. Formats:
- math: MATH and MATH-500 records. `problem` is the question; the answer is the `answer` field when
  present (MATH-500), else the content of the last \\boxed{} of `solution` (MATH). `level` and `type`
  (or `subject`) are kept; `unique_id` becomes the id when present.
- gsm8k: `question`, and the number after "####" in `answer` (thousands commas removed).
- fields: any two fields named on the command line (plus an optional id field).
A record that lacks a field, or whose answer cannot be found, fails with its file, line and field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .files import atomic_write, parse_json, read_text
from .verifier import extract_boxed

FORMATS = ("math", "gsm8k", "fields")


def read_records(path: str | os.PathLike):
    """Yield ("file:line", record) from a JSONL file or a JSON array (then the "line" is the record's index)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    text = read_text(path)
    if text.lstrip().startswith("["):
        rows = parse_json(text, str(path), "JSON array")
        yield from ((f"{path}: record {i + 1}", row) for i, row in enumerate(rows))
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"{path}:{n}", parse_json(line, f"{path}:{n}")


def _field(row, where: str, name: str) -> str:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    value = row.get(name)
    if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
        raise ValueError(f"{where}: missing field {name!r} (found: {', '.join(sorted(row)) or 'no fields'})")
    return str(value)


def convert_math(row, where: str) -> dict:
    question = _field(row, where, "problem")
    if row.get("answer") not in (None, ""):
        answer = str(row["answer"])
    else:
        answer = extract_boxed(_field(row, where, "solution"))
        if answer is None:
            raise ValueError(f"{where}: no 'answer' field and no closed \\boxed{{}} in 'solution'")
    out = {"question": question, "answer": answer.strip()}
    if row.get("unique_id"):
        out["id"] = str(row["unique_id"])
    for key in ("level", "type", "subject"):
        if row.get(key) not in (None, ""):
            out["level" if key == "level" else "subject"] = str(row[key])
    return out


def convert_gsm8k(row, where: str) -> dict:
    question, solution = _field(row, where, "question"), _field(row, where, "answer")
    if "####" not in solution:
        raise ValueError(f"{where}: field 'answer' has no '#### <number>' final answer")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not answer:
        raise ValueError(f"{where}: field 'answer' has nothing after '####'")
    return {"question": question, "answer": answer}


def convert(fmt: str, src: str | os.PathLike, question_field: str = "question", answer_field: str = "answer",
            id_field: str | None = None) -> list[dict]:
    """The records of src in the project's JSONL form, each with an id (the source's, or STEM-N)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out, seen = [], set()
    for where, row in read_records(src):
        if fmt == "math":
            rec = convert_math(row, where)
        elif fmt == "gsm8k":
            rec = convert_gsm8k(row, where)
        else:
            rec = {"question": _field(row, where, question_field), "answer": _field(row, where, answer_field).strip()}
            if id_field:
                rec["id"] = _field(row, where, id_field)
        rec = {"id": rec.pop("id", f"{Path(src).stem}-{len(out)}"), **rec}
        if rec["id"] in seen:
            raise ValueError(f"{where}: duplicate id {rec['id']!r}")
        seen.add(rec["id"])
        out.append(rec)
    if not out:
        raise ValueError(f"{src}: no records")
    return out


def write_jsonl(records: list[dict], dst: str | os.PathLike) -> None:
    """Write records as JSONL atomically (a temporary file renamed when complete)."""
    atomic_write(dst, (json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    """Never write over the input, nor over an existing file unless asked to (--overwrite)."""
    if dst.exists() and src.exists() and dst.samefile(src):
        raise ValueError(f"{dst}: is the input file; write the converted data to another file")
    if dst.exists() and not overwrite:
        raise ValueError(f"{dst}: already exists; choose another name, or pass --overwrite to replace it")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m minireason.convert", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=FORMATS)
    ap.add_argument("src", help="the downloaded file (JSONL or a JSON array)")
    ap.add_argument("dst", help="the JSONL to write")
    ap.add_argument("--question", default="question", help="fields: the question's field")
    ap.add_argument("--answer", default="answer", help="fields: the answer's field")
    ap.add_argument("--id", help="fields: an id field (default: STEM-N)")
    ap.add_argument("--overwrite", action="store_true", help="replace dst if it exists (never the input itself)")
    a = ap.parse_args(argv)
    try:
        check_destination(Path(a.src), Path(a.dst), a.overwrite)
        records = convert(a.format, a.src, a.question, a.answer, a.id)
        write_jsonl(records, a.dst)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {len(records)} questions to {a.dst}")


if __name__ == "__main__":
    main()
