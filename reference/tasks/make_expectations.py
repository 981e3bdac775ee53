#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes data/task_expectations.jsonl: what the Python tokenizer and checker say about texts built
from the committed test split, so that the C++ twins (reference/include/mdlm/reference/tasks/) can be
checked against them (tests/reference/test_tasks_*.cpp).

For every test problem one record:

* for the first FULL_IDS problems only (keeps the file small): ``question_ids``
  (``formats.prompt_ids`` of the question) and ``gold_template`` / ``gold_plain`` (the gold responses'
  ids with and without the template);
* ``text``: a response text -- the gold reasoning with or without the answer line, or a corrupted
  version (a digit changed, a character deleted or inserted, an operator swapped, lines shuffled, a
  non-canonical or too long answer, random vocabulary tokens) chosen by a seeded RNG --, its ids
  (``text_ids``), its ids under data/tokenizer_numbers.json (``text_ids_numbers``, numbers as tokens of
  up to three digits), and ``grade``: ``arith.grade(text, answer)`` plus every graded step; for the
  first FULL_IDS problems also ``gold_template_numbers`` (the template response under that tokenizer).

Deterministic (seeded); ``--check`` exits 1 when the committed file differs from what it would write.

    /usr/bin/python3 reference/tasks/make_expectations.py [--check]
"""

import argparse
import json
import os
import random
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from mdlm_tasks import arith, formats  # noqa: E402
from mdlm_tasks.tokenizer import Tokenizer  # noqa: E402

DATA = os.path.join(_HERE, "data")
SEED = 424242
FULL_IDS = 600
_CHARS = "0123456789+-*/= \nTheanswris"


def _corrupt(rng, tok, p):
    gold_plain = arith.reasoning_text(p["steps"])
    gold_tmpl = gold_plain + arith.ANSWER_DELIMITER + str(p["answer"])
    kind = rng.choice(["gold_template", "gold_plain", "digit", "delete", "insert", "operator", "shuffle",
                       "answer_zero", "answer_long", "answer_negative", "answer_missing", "random_tokens",
                       "spaces", "two_answers"])
    base = rng.choice([gold_plain, gold_tmpl])
    if kind == "gold_template":
        return kind, gold_tmpl
    if kind == "gold_plain":
        return kind, gold_plain
    if kind == "digit":
        pos = [i for i, c in enumerate(base) if c.isdigit()]
        i = rng.choice(pos)
        return kind, base[:i] + rng.choice("0123456789") + base[i + 1:]
    if kind == "delete":
        i = rng.randrange(len(base))
        return kind, base[:i] + base[i + 1:]
    if kind == "insert":
        i = rng.randrange(len(base) + 1)
        return kind, base[:i] + rng.choice(_CHARS) + base[i:]
    if kind == "operator":
        pos = [i for i, c in enumerate(base) if c in "+-*/"]
        if not pos:
            return kind, base
        i = rng.choice(pos)
        return kind, base[:i] + rng.choice("+-*/") + base[i + 1:]
    if kind == "shuffle":
        lines = gold_plain.split("\n")
        rng.shuffle(lines)
        return kind, "\n".join(lines)
    if kind == "answer_zero":
        return kind, gold_plain + arith.ANSWER_DELIMITER + "0" + str(p["answer"])
    if kind == "answer_long":
        return kind, gold_plain + arith.ANSWER_DELIMITER + str(p["answer"]) * 4
    if kind == "answer_negative":
        return kind, gold_plain + rng.choice([arith.ANSWER_DELIMITER, "The answer is", "-"]) + "-" + str(p["answer"])
    if kind == "answer_missing":
        return kind, gold_plain + arith.ANSWER_DELIMITER + rng.choice(["", " ", "\n", "x"])
    if kind == "random_tokens":
        ids = [rng.randrange(3, len(tok)) for _ in range(rng.randint(1, 40))]
        return kind, tok.decode(ids)
    if kind == "spaces":
        return kind, "".join(c + (" " if rng.random() < 0.2 else "") for c in base)
    return kind, gold_tmpl + "\n" + arith.ANSWER_DELIMITER + str(rng.randint(0, 300))


def records():
    tok = Tokenizer.load(os.path.join(DATA, "tokenizer.json"))
    num = Tokenizer.load(os.path.join(DATA, "tokenizer_numbers.json"))
    rng = random.Random(SEED)
    for p in arith.read_jsonl(os.path.join(DATA, "arith_test.jsonl")):
        kind, text = _corrupt(rng, tok, p)
        g = arith.grade(text, p["answer"])
        steps = [[line, wf, ok] for line, wf, ok in arith.grade_steps(text)]
        r = {"id": p["id"]}
        if p["id"] < FULL_IDS:
            r.update({"question_ids": formats.prompt_ids(tok, p["question"]),
                      "gold_template": formats.template_response_ids(tok, p["steps"], p["answer"]),
                      "gold_plain": formats.plain_response_ids(tok, p["steps"]),
                      "gold_template_numbers": formats.template_response_ids(num, p["steps"], p["answer"])})
        r.update({"kind": kind, "text": text, "text_ids": tok.encode(text), "text_ids_numbers": num.encode(text),
                  "grade": g, "steps": steps})
        yield r


def render():
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    path = os.path.join(DATA, "task_expectations.jsonl")
    text = render()
    if args.check:
        with open(path, encoding="utf-8") as f:
            same = f.read() == text
        print("make_expectations --check: " + ("matches" if same else "DIFFERS"))
        return 0 if same else 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
