import pytest

from sotlat.errors import InputError
from sotlat.sot.questions import load_questions


def test_vicuna_has_80_questions_in_9_categories():
    qs = load_questions("vicuna")
    assert len(qs) == 80 and qs[0]["id"] == "vicuna-001" and qs[-1]["id"] == "vicuna-080"
    assert qs[0]["question"] == "How can I improve my time management skills?"
    counts = {}
    for q in qs:
        counts[q["category"]] = counts.get(q["category"], 0) + 1
    assert counts == {"generic": 10, "knowledge": 10, "roleplay": 10, "common-sense": 10, "fermi": 10,
                      "counterfactual": 10, "coding": 7, "math": 3, "writing": 10}
    assert qs[67]["category"] == "math" and qs[60]["category"] == "coding"


def test_wizardlm_has_218_questions_in_its_29_skills_by_row():
    qs = load_questions("wizardlm")
    assert len(qs) == 218 and len({q["category"] for q in qs}) == 29 and None not in {q["category"] for q in qs}
    # a block's first and last rows, as the content shows them
    assert qs[18]["category"] == "math" and qs[18]["question"].startswith("What is the solution to the Hodge Conjecture")
    assert qs[19]["category"] == "code-generation" and qs[19]["question"].startswith("Given an array of integers, find")
    assert qs[95]["category"] == "code-debug" and qs[95]["question"].startswith("What is wrong with this C++ code")
    assert qs[104]["category"] == "code-debug" and qs[105]["category"] == "common-sense"
    assert [q["category"] for q in qs[183:193]] == ["art"] * 5 + ["music"] * 5  # paintings, then songs and scales
    assert qs[-1]["category"] == "philosophy" and qs[-1]["question"].startswith("What are some of the deepest philosophical")


def test_lima_has_no_categories():
    lima = load_questions("lima")
    assert len(lima) == 1030 and lima[0]["id"] == "lima-0001" and {q["category"] for q in lima} == {None}


def test_user_files(tmp_path):
    (tmp_path / "q.csv").write_text('request\n"What is 2+2?"\n"Name a colour."\n')
    assert [q["question"] for q in load_questions(str(tmp_path / "q.csv"))] == ["What is 2+2?", "Name a colour."]
    (tmp_path / "q.jsonl").write_text('{"id": "a", "question": "Why?", "category": "x"}\n\n{"question": "How?"}\n')
    assert [(q["id"], q["category"]) for q in load_questions(str(tmp_path / "q.jsonl"))] == [("a", "x"), ("q-003", None)]
    (tmp_path / "bad.jsonl").write_text('{"question": ""}\n')
    with pytest.raises(InputError, match="bad.jsonl:1: question must be a non-empty string"):
        load_questions(str(tmp_path / "bad.jsonl"))
    with pytest.raises(InputError, match="not one of vicuna, wizardlm, lima and no such file"):
        load_questions("alpaca")


@pytest.mark.parametrize("text, message", [
    ('request\n"What is 2+2?"\n""\n', "q.csv:3: request must be a non-empty string"),
    ('request\n\n"a\nb"\n""\n', "q.csv:5: request must be a non-empty string"),  # lines: blank, two-line field, then the bad one
    ("id,request\n1,x\n2,y,z\n", "q.csv:3: 3 fields, but the header has 2"),
    ('request\n"a\n', "q.csv:2: not readable as CSV"),  # a quote opened on line 2, never closed
    ("request\n\n", "q.csv: no questions in the file"),
    ("", "q.csv: needs a 'request' column"),
    ("question\nWhy?\n", "q.csv: needs a 'request' column"),
])
def test_bad_csv_questions_are_one_located_error(tmp_path, text, message):
    (tmp_path / "q.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        load_questions(str(tmp_path / "q.csv"))


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    (tmp_path / "q.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "a", "question": "Why?"}\n')
    assert [q["id"] for q in load_questions(str(tmp_path / "q.jsonl"))] == ["a"]


def test_a_csvs_id_and_category_columns_are_used(tmp_path):
    (tmp_path / "q.csv").write_text('id,category,request\nm1,math,"What is 2+2?"\n,,"Name a colour."\n')
    assert [(q["id"], q["category"]) for q in load_questions(str(tmp_path / "q.csv"))] == [("m1", "math"), ("q-002", None)]


@pytest.mark.parametrize("name, text, message", [
    ("q.jsonl", '{"id": "a", "question": "x"}\n{"id": "a", "question": "y"}\n', r"q.jsonl:2: id 'a' is already at \S*q.jsonl:1$"),
    ("q.csv", "id,request\n7,x\n7,y\n", r"q.csv:3: id '7' is already at \S*q.csv:2$"),
    ("q.jsonl", '{"id": 3, "question": "x"}\n{"id": "3", "question": "y"}\n', "q.jsonl:2: id '3' is already at"),  # both become trace id "3"
    ("q.jsonl", '["x"]\n', "q.jsonl:1: expected an object with a question field"),
    ("q.jsonl", '{"question": "x", "category": 5}\n', "q.jsonl:1: category must be a string"),
    ("q.jsonl", '{"question": "x", "id": null}\n{"question": "y", "id": [1]}\n', "q.jsonl:2: id must be a non-empty string or an integer"),
    ("q.txt", "Why?\n", "^questions: .*q.txt: expected a .csv .* or .jsonl"),
])
def test_bad_question_files_are_one_located_error(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        load_questions(str(tmp_path / name))


def test_a_binary_questions_file_is_a_user_error(tmp_path):
    (tmp_path / "q.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="q.jsonl: cannot read"):
        load_questions(str(tmp_path / "q.jsonl"))
