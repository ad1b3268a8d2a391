"""Data converters: MATH / MATH-500, GSM8K, a generic field mapping, and the errors of bad records."""

import json

import pytest

from minireason.convert import convert, main
from minireason.tasks import load_jsonl
from minireason.verifier import ExactGrader


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


MATH_ROWS = [  # written for these tests, in the MATH / MATH-500 shapes
    {"problem": "Compute $\\frac{8}{6}$ in lowest terms.", "level": "Level 1", "type": "Prealgebra",
     "solution": "We divide by 2: $\\frac{8}{6} = \\boxed{\\frac43}$."},
    {"problem": "What is $\\sqrt{117}$ simplified?", "level": "Level 3", "type": "Algebra",
     "solution": "Since $117 = 9 \\cdot 13$, first \\boxed{9} then $\\sqrt{117} = \\boxed{3\\sqrt{13}}$."},
    {"problem": "Find the angle.", "solution": "It is $\\boxed{90^\\circ}$.", "answer": "90^\\circ",
     "subject": "Geometry", "level": 2, "unique_id": "test/geometry/1.json"},
]


def test_math_format(tmp_path):
    src = write_jsonl(tmp_path / "math.jsonl", MATH_ROWS)
    out = convert("math", src)
    assert [r["answer"] for r in out] == ["\\frac43", "3\\sqrt{13}", "90^\\circ"]  # the last box of the solution
    assert out[0]["id"] == "math-0" and out[2]["id"] == "test/geometry/1.json"
    assert out[0]["level"] == "Level 1" and out[0]["subject"] == "Prealgebra" and out[2]["level"] == "2"
    main(["math", str(src), str(tmp_path / "out.jsonl")])
    problems = load_jsonl(tmp_path / "out.jsonl")  # the scripts can read what was written
    assert [p.question for p in problems] == [r["problem"] for r in MATH_ROWS]
    assert ExactGrader().equal("\\frac{4}{3}", problems[0].answer) and ExactGrader().equal("90", problems[2].answer)


def test_math_json_array_input(tmp_path):
    src = tmp_path / "math.json"
    src.write_text(json.dumps(MATH_ROWS))
    assert len(convert("math", src)) == 3


def test_gsm8k_format(tmp_path):
    src = write_jsonl(tmp_path / "gsm.jsonl", [
        {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
        {"question": "A car costs 1,200 dollars twice. Total?", "answer": "2 * 1200 = 2400\n#### 2,400"},
    ])
    assert [r["answer"] for r in convert("gsm8k", src)] == ["7", "2400"]


def test_fields_format(tmp_path):
    src = write_jsonl(tmp_path / "custom.jsonl", [{"prompt": "1+1?", "target": 2, "uid": "a"},
                                                  {"prompt": "2+2?", "target": "4", "uid": "b"}])
    out = convert("fields", src, question_field="prompt", answer_field="target", id_field="uid")
    assert out == [{"id": "a", "question": "1+1?", "answer": "2"}, {"id": "b", "question": "2+2?", "answer": "4"}]


@pytest.mark.parametrize("fmt,rows,message", [
    ("math", [MATH_ROWS[0], {"solution": "\\boxed{1}"}], r"bad\.jsonl:2: missing field 'problem'"),
    ("math", [{"problem": "p", "solution": "no box here"}], r"bad\.jsonl:1: no 'answer' field and no closed"),
    ("math", [{"problem": "p", "solution": "\\boxed{1"}], r"bad\.jsonl:1: no 'answer' field and no closed"),
    ("gsm8k", [{"question": "q", "answer": "just 5"}], r"bad\.jsonl:1: field 'answer' has no '#### <number>'"),
    ("gsm8k", [{"question": "q"}], r"bad\.jsonl:1: missing field 'answer'"),
    ("fields", [{"question": "q", "answer": ""}], r"bad\.jsonl:1: missing field 'answer'"),
    ("fields", [{"question": "q", "answer": "1"}, ["not", "an", "object"]], r"bad\.jsonl:2: expected a JSON object"),
])
def test_bad_records_name_line_and_field(tmp_path, fmt, rows, message):
    src = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValueError, match=message):
        convert(fmt, src)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "p", "answer": "1"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid JSON"):
        convert("math", bad)
    bad.write_bytes(b'{"problem": "\xff"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not UTF-8 text \(byte 0xff at column 14\)"):
        convert("math", bad)
    with pytest.raises(SystemExit, match="no such input file"):
        main(["math", str(tmp_path / "missing.jsonl"), str(tmp_path / "out.jsonl")])
