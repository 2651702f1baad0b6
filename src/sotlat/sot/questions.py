"""The paper's question sets (package data, see data/questions/README.md) or a user's file."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd

from sotlat.errors import InputError

BUILTIN = ("vicuna", "wizardlm", "lima")
VICUNA_CATEGORIES = [("generic", 10), ("knowledge", 10), ("roleplay", 10), ("common-sense", 10), ("fermi", 10),
                     ("counterfactual", 10), ("coding", 7), ("math", 3), ("writing", 10)]


def load_questions(source: str) -> list[dict]:
    """[{id, category, question}] from a built-in set name, a CSV with a `request` column, or a
    JSONL file of {"question", "id"?, "category"?}."""
    if source in BUILTIN:
        path = Path(str(resources.files("sotlat") / "data" / "questions" / f"{source}.csv"))
        requests = pd.read_csv(path)["request"].tolist()
        width = len(str(len(requests)))
        categories = [c for c, n in VICUNA_CATEGORIES for _ in range(n)] if source == "vicuna" else [None] * len(requests)
        return [{"id": f"{source}-{i + 1:0{max(width, 3)}d}", "category": c, "question": q} for i, (q, c) in enumerate(zip(requests, categories))]
    path = Path(source)
    if not path.exists():
        raise InputError(f"--questions: {source}: not one of {', '.join(BUILTIN)} and no such file")
    questions = _csv_questions(path, source) if path.suffix == ".csv" else _jsonl_questions(path, source)
    if not questions:
        raise InputError(f"{source}: no questions in the file")
    return questions


def _csv_questions(path: Path, source: str) -> list[dict]:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-data errors are ValueErrors
        raise InputError(f"{source}: not a readable CSV file ({exc})") from None
    if "request" not in frame:
        raise InputError(f"{source}: needs a 'request' column")
    questions = []
    for i, q in enumerate(frame["request"]):
        if not q.strip():
            raise InputError(f"{source}: row {i + 1}: request must be a non-empty string")
        questions.append({"id": f"{path.stem}-{i + 1:03d}", "category": None, "question": q})
    return questions


def _jsonl_questions(path: Path, source: str) -> list[dict]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not obj["question"].strip():
            raise InputError(f"{source}:{number}: question must be a non-empty string")
        questions.append({"id": str(obj.get("id", f"{path.stem}-{number:03d}")), "category": obj.get("category"), "question": obj["question"]})
    return questions
