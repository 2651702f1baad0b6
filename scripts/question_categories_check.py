"""Check the categories sotlat gives a built-in question set by row against the SoT repository's
router labels: per category block, the sum of the authors' use-SoT labels, beside the count the
upstream category field gives (src/sotlat/data/questions/README.md).

Usage: python scripts/question_categories_check.py --set wizardlm --router sot/data/wizardlm/router.csv
(router.csv: `label;request`, from https://github.com/imagination-research/sot at the README's commit).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from sotlat.sot.questions import CATEGORIES_BY_ROW, load_questions

# label-1 counts per category as the upstream category fields give them (FastChat's question.jsonl
# `category`; WizardLM_testset.jsonl's `Skill`), in CATEGORIES_BY_ROW's order
STATED = {
    "vicuna": [10, 8, 1, 8, 0, 10, 0, 0, 0],
    "wizardlm": [0, 1, 6, 5, 0, 1, 0, 4, 8, 4, 3, 0, 3, 4, 4, 2, 2, 0, 1, 0, 1, 1, 0, 3, 0, 3, 1, 0, 1],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, choices=sorted(CATEGORIES_BY_ROW))
    parser.add_argument("--router", required=True)
    args = parser.parse_args()
    questions = load_questions(args.set)
    router = pd.read_csv(args.router, delimiter=";")
    same = [q["question"].strip() == r.strip() for q, r in zip(questions, router["request"])]
    print(f"{args.set}: {len(questions)} questions, router.csv {len(router)} rows, {sum(same)} the same text (but for trailing space)")
    rows, start, agree = [], 0, 0
    for (category, n), stated in zip(CATEGORIES_BY_ROW[args.set], STATED[args.set]):
        got = int(router["label"][start:start + n].sum())
        agree += got == stated
        rows.append(f"  {category:<18} rows {start + 1:>3}-{start + n:<3} label 1: {got:>2}  stated {stated:>2}{'' if got == stated else '  DIFFERS'}")
        start += n
    print("\n".join(rows))
    print(f"{agree} of {len(rows)} blocks agree")
    sys.exit(0 if agree == len(rows) and all(same) and len(router) == len(questions) else 1)


if __name__ == "__main__":
    main()
