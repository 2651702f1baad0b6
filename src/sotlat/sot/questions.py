"""The paper's question sets (package data, see data/questions/README.md) or a user's file."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import pandas as pd

from sotlat.errors import InputError

BUILTIN = ("vicuna", "wizardlm", "lima")
# categories by row, in contiguous blocks (data/questions/README.md): Vicuna-80's by FastChat's question_id;
# the WizardLM test set's its 29 `Skill`s in the upstream file's order (upstream's "Writting" is writing)
CATEGORIES_BY_ROW = {
    "vicuna": [("generic", 10), ("knowledge", 10), ("roleplay", 10), ("common-sense", 10), ("fermi", 10),
               ("counterfactual", 10), ("coding", 7), ("math", 3), ("writing", 10)],
    "wizardlm": [("math", 19), ("code-generation", 18), ("writing", 18), ("computer-science", 15), ("reasoning", 13),
                 ("complex-format", 12), ("code-debug", 10), ("common-sense", 9), ("counterfactual", 8), ("multilingual", 7),
                 ("roleplay", 6), ("biology", 6), ("technology", 6), ("ethics", 6), ("truthfulqa", 5), ("sport", 5),
                 ("law", 5), ("medicine", 5), ("literature", 5), ("entertainment", 5), ("art", 5), ("music", 5),
                 ("toxicity", 4), ("economy", 5), ("physics", 5), ("history", 4), ("academic-writing", 4),
                 ("chemistry", 2), ("philosophy", 1)],
}


def load_questions(source: str) -> list[dict]:
    """[{id, category, question}] from a built-in set name, a CSV with a `request` column, or a
    JSONL file of {"question", "id"?, "category"?}."""
    if source in BUILTIN:
        path = Path(str(resources.files("sotlat") / "data" / "questions" / f"{source}.csv"))
        requests = pd.read_csv(path)["request"].tolist()
        width = len(str(len(requests)))
        categories = [c for c, n in CATEGORIES_BY_ROW.get(source, [(None, len(requests))]) for _ in range(n)]
        return [{"id": f"{source}-{i + 1:0{max(width, 3)}d}", "category": c, "question": q} for i, (q, c) in enumerate(zip(requests, categories))]
    path = Path(source)
    if not path.exists():
        raise InputError(f"{source}: not one of {', '.join(BUILTIN)} and no such file", param="questions")
    if path.suffix not in (".csv", ".jsonl"):
        raise InputError(f"{source}: expected a .csv (request column) or .jsonl (question field) file", param="questions")
    try:
        questions = _csv_questions(path, source) if path.suffix == ".csv" else _jsonl_questions(path, source)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read ({exc})") from None
    if not questions:
        raise InputError(f"{source}: no questions in the file")
    return questions


def _question(where: str, ident, category, question, default_id: str, what: str) -> dict:
    """One checked question: a non-empty text, an optional string or integer id, an optional string category."""
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{where}: {what} must be a non-empty string")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (str, int)) or not str(ident).strip()):
        raise InputError(f"{where}: id must be a non-empty string or an integer")
    if category is not None and not isinstance(category, str):
        raise InputError(f"{where}: category must be a string")
    return {"id": str(ident) if ident is not None else default_id, "category": category or None, "question": question}


def _unique(questions: list[dict], places: list[str]) -> list[dict]:
    """Refuse an id used twice: its trace would be refused by estimate, and --resume would skip the second."""
    first = {}
    for q, where in zip(questions, places):
        if q["id"] in first:
            raise InputError(f"{where}: id {q['id']!r} is already at {first[q['id']]}")
        first[q["id"]] = where
    return questions


def _csv_questions(path: Path, source: str) -> list[dict]:
    """A `request` column; `id` and `category` columns are used where present. Errors name the
    file's line where the row starts (the header is line 1), as an editor and a spreadsheet count."""
    questions, places, start = [], [], 1
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, [])
            if "request" not in header:
                raise InputError(f"{source}: needs a 'request' column")
            column = {name: header.index(name) for name in ("id", "category", "request") if name in header}
            start = reader.line_num + 1
            for row in reader:
                where, start = f"{source}:{start}", reader.line_num + 1
                if not row:  # a blank line
                    continue
                if len(row) > len(header):
                    raise InputError(f"{where}: {len(row)} fields, but the header has {len(header)}")
                get = {name: row[i] if i < len(row) else "" for name, i in column.items()}
                places.append(where)
                questions.append(_question(where, get.get("id") or None, get.get("category") or None, get["request"],
                                           f"{path.stem}-{len(places):03d}", "request"))
        except csv.Error as exc:
            raise InputError(f"{source}:{start}: not readable as CSV ({exc})") from None
    return _unique(questions, places)


def _jsonl_questions(path: Path, source: str) -> list[dict]:
    questions, places = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{source}:{number}: expected an object with a question field")
        places.append(f"{source}:{number}")
        questions.append(_question(places[-1], obj.get("id"), obj.get("category"), obj.get("question"), f"{path.stem}-{number:03d}", "question"))
    return _unique(questions, places)
