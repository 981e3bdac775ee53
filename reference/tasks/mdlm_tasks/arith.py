# SPDX-License-Identifier: MIT
"""Arithmetic word problems with a gold reasoning trace, fixed splits, and an exact checker.

A problem is a short story about one person and one kind of item ("Tom has 12 apples. He buys 3 bags
of 4 apples. Then he gives away 5 apples. How many apples does he have now?") that needs 2 to 4
arithmetic steps. Its gold reasoning trace has one step per line, each ``<a><op><b>=<c>`` with
``op`` in ``+ - * /``, in the order the story is told ("3*4=12", "12+12=24", "24-5=19"); the answer
is the integer result of the last step.

Difficulty is kept learnable for a model of a few million parameters: every operand and every
intermediate value lies in [1, VALUE_MAX] (non-negative, answers < 1000), products use a one-digit
factor, and divisions are exact.

Splits: the test split is ``generate(TEST_SEED, TEST_SIZE)`` (committed as data/arith_test.jsonl);
the training split is the stream ``train_stream(TRAIN_SEED)``, which skips every problem whose
question text is in the test split, so the two are disjoint by construction (and tested).

Checker (``grade``): the answer is graded separately from the reasoning. ``extract_answer`` reads
the integer after the last ``The answer is`` when the text contains it, else the last integer of the
text; ``grade_steps`` checks every non-empty reasoning line for the form ``a op b = c`` and for exact
arithmetic. The C++ checker (reference/include/mdlm/reference/tasks/checker.hpp) implements the same
rules; tests/reference/test_tasks_checker.cpp checks that both agree on the committed test split
(data/task_expectations.jsonl, written by make_expectations.py).
"""

import json
import random
import re

VALUE_MAX = 200  #: largest operand / intermediate value / answer
TEST_SEED = 20261122  #: seed of the committed test split
TEST_SIZE = 2000  #: problems in the committed test split
TRAIN_SEED = 7  #: seed of the training stream
MIN_STEPS, MAX_STEPS = 2, 4

ANSWER_DELIMITER = "The answer is "  #: the reasoning template's answer delimiter
MAX_NUMBER_DIGITS = 9  #: longer digit runs are not numbers for the checker (keeps C++ in int64)

_PEOPLE = [("Tom", "he", "him", "his"), ("Anna", "she", "her", "her"), ("Ben", "he", "him", "his"),
           ("Lucy", "she", "her", "her"), ("Sam", "he", "him", "his"), ("Mia", "she", "her", "her"),
           ("Jack", "he", "him", "his"), ("Emma", "she", "her", "her"), ("Leo", "he", "him", "his"),
           ("Zoe", "she", "her", "her"), ("Max", "he", "him", "his"), ("Lily", "she", "her", "her"),
           ("Noah", "he", "him", "his"), ("Ella", "she", "her", "her"), ("Omar", "he", "him", "his"),
           ("Nina", "she", "her", "her")]
_FRIENDS = ["{his} friend", "a neighbor", "the teacher", "a classmate", "the coach"]
# (plural, singular, can be eaten)
_ITEMS = [("apples", "apple", True), ("marbles", "marble", False), ("stickers", "sticker", False),
          ("cookies", "cookie", True), ("pencils", "pencil", False), ("books", "book", False),
          ("cards", "card", False), ("shells", "shell", False), ("stamps", "stamp", False),
          ("candies", "candy", True), ("toys", "toy", False), ("coins", "coin", False),
          ("flowers", "flower", False), ("balloons", "balloon", False), ("oranges", "orange", True),
          ("crayons", "crayon", False)]
_CONTAINERS = ["bags", "boxes", "packs", "jars", "baskets"]


def _cap(s):
    return s[0].upper() + s[1:]


class _Story:
    """Accumulates sentences and steps while the item count evolves."""

    def __init__(self, rng):
        self.rng = rng
        self.name, self.he, self.him, self.his = rng.choice(_PEOPLE)
        self.items, self.item, self.edible = rng.choice(_ITEMS)
        self.sentences = []
        self.steps = []
        self.x = 0

    def step(self, a, op, b):
        if op == "+":
            c = a + b
        elif op == "-":
            c = a - b
        elif op == "*":
            c = a * b
        else:
            c, r = divmod(a, b)
            assert r == 0
        self.steps.append(f"{a}{op}{b}={c}")
        return c


def _ok(v):
    return 1 <= v <= VALUE_MAX


def _start(st, grouped):
    rng = st.rng
    if grouped:
        a, b = rng.randint(2, 9), rng.randint(2, 12)
        c = rng.choice(_CONTAINERS)
        st.sentences.append(rng.choice([
            f"{st.name} has {a} {c} with {b} {st.items} in each.",
            f"{st.name} buys {a} {c} of {st.items}. Each of them holds {b} {st.items}.",
        ]))
        st.x = st.step(a, "*", b)
    else:
        x = rng.randint(2, 60)
        st.sentences.append(rng.choice([
            f"{st.name} has {x} {st.items}.",
            f"{st.name} collects {x} {st.items}.",
            f"There are {x} {st.items} in {st.name}'s room.",
        ]))
        st.x = x


def _op(st, kind):
    """Applies one operation of the given kind; returns False (changing nothing) if its numbers do
    not fit the value constraints."""
    rng, x = st.rng, st.x
    he, him, his, items = _cap(st.he), st.him, st.his, st.items
    then = rng.choice(["", "Then ", "After that, "])
    subj = he if not then else st.he

    def say(s):
        st.sentences.append(then + s if then else _cap(s))

    if kind == "add":
        n = rng.randint(2, 40)
        if not _ok(x + n):
            return False
        say(rng.choice([f"{subj} buys {n} more {items}.", f"{subj} finds {n} more {items}.",
                        f"{rng.choice(_FRIENDS).format(his=his)} gives {him} {n} {items}.",
                        f"{subj} gets {n} more {items} from {his} mom."]))
        st.x = st.step(x, "+", n)
    elif kind == "sub":
        if x < 3:
            return False
        n = rng.randint(1, min(x - 1, 60))
        verbs = [f"{subj} gives {n} {items} to {rng.choice(_FRIENDS).format(his=his)}.", f"{subj} loses {n} {items}.",
                 f"{subj} gives away {n} {items}."]
        if st.edible:
            verbs.append(f"{subj} eats {n} {items}.")
        say(rng.choice(verbs))
        st.x = st.step(x, "-", n)
    elif kind == "add_groups":
        a, b = rng.randint(2, 9), rng.randint(2, 12)
        if not _ok(x + a * b):
            return False
        c = rng.choice(_CONTAINERS)
        say(rng.choice([f"{subj} buys {a} {c} of {b} {items}.",
                        f"{subj} gets {a} more {c} with {b} {items} in each."]))
        p = st.step(a, "*", b)
        st.x = st.step(x, "+", p)
    elif kind == "sub_groups":
        a, b = rng.randint(2, 9), rng.randint(1, 12)
        if a * b >= x:
            return False
        say(rng.choice([f"{subj} gives {a} friends {b} {items} each.",
                        f"{subj} puts {b} {items} in each of {a} gift boxes."]))
        p = st.step(a, "*", b)
        st.x = st.step(x, "-", p)
    elif kind == "mul":
        k = rng.choice([2, 3])
        if not _ok(x * k):
            return False
        word = {2: "doubles", 3: "triples"}[k]
        say(f"the number of {items} {st.he} has {word}." if then else
            f"The number of {items} {st.he} has {word}.")
        st.x = st.step(x, "*", k)
    elif kind == "div":
        ks = [k for k in range(2, 10) if x % k == 0]
        if not ks:
            return False
        k = rng.choice(ks)
        say(rng.choice([f"{subj} splits the {items} into {k} equal groups and keeps one group.",
                        f"{subj} shares the {items} equally among {k} kids, {st.him}self included."]))
        st.x = st.step(x, "/", k)
    else:
        raise ValueError(kind)
    return True


def _question(st, sell):
    rng = st.rng
    if sell:
        k = rng.randint(2, 9)
        if not _ok(st.x * k):
            return False
        st.sentences.append(f"{_cap(st.he)} sells each {st.item} for {k} dollars. "
                            f"How many dollars does {st.he} get?")
        st.x = st.step(st.x, "*", k)
    else:
        st.sentences.append(rng.choice([f"How many {st.items} does {st.he} have now?",
                                        f"How many {st.items} does {st.name} have in the end?"]))
    return True


def make_problem(rng):
    """One problem from ``rng`` (a ``random.Random``): {"question", "steps", "answer"}."""
    while True:
        n_steps = rng.randint(MIN_STEPS, MAX_STEPS)
        st = _Story(rng)
        _start(st, rng.random() < 0.3)
        sell = rng.random() < 0.2
        body_steps = n_steps - (1 if sell else 0)
        tries = 0
        while len(st.steps) < body_steps and tries < 20:
            tries += 1
            left = body_steps - len(st.steps)
            kinds = ["add", "sub", "mul", "div"] + (["add_groups", "sub_groups"] if left >= 2 else [])
            _op(st, rng.choice(kinds))
        if len(st.steps) != body_steps or not _question(st, sell):
            continue
        if len(st.steps) < MIN_STEPS:
            continue
        return {"question": " ".join(st.sentences), "steps": st.steps, "answer": st.x}


def generate(seed, count):
    """``count`` problems with distinct questions from ``seed``, each with an "id"."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        p = make_problem(rng)
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append({"id": len(out), **p})
    return out


def train_stream(seed, exclude_questions):
    """Endless deterministic stream of training problems, skipping ``exclude_questions``."""
    rng = random.Random(seed)
    exclude = set(exclude_questions)
    while True:
        p = make_problem(rng)
        if p["question"] not in exclude:
            yield p


def reasoning_text(steps):
    """The gold reasoning as text: one step per line, each line ending with a newline."""
    return "".join(s + "\n" for s in steps)


def write_jsonl(path, problems):
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps({"id": p["id"], "question": p["question"], "steps": p["steps"],
                                "answer": p["answer"]}, separators=(",", ":")) + "\n")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------------
# Checker. The rules below are mirrored exactly by the C++ checker.

_NUMBER = re.compile(r"-?[0-9]+")


def _parse_number(s):
    """Canonical integer: optional '-', then '0' or a digit run without a leading zero, at most
    MAX_NUMBER_DIGITS digits. Returns None otherwise."""
    digits = s[1:] if s.startswith("-") else s
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > MAX_NUMBER_DIGITS:
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None
    if s == "-0":
        return None
    return int(s)


def extract_answer(text):
    """The answer a response gives, or None.

    With the template: the number right after the last ``The answer is`` (spaces skipped), i.e. the
    maximal run ``-?[0-9]+`` starting there; without it: the last maximal run ``-?[0-9]+`` of the text
    (a '-' counts as a sign only when not preceded by a digit, so ``24-5=19`` ends in 19). The run must
    be a canonical number (see ``_parse_number``)."""
    pos = text.rfind(ANSWER_DELIMITER.rstrip(" "))
    if pos >= 0:
        i = pos + len(ANSWER_DELIMITER.rstrip(" "))
        while i < len(text) and text[i] == " ":
            i += 1
        j = i + 1 if i < len(text) and text[i] == "-" else i
        while j < len(text) and "0" <= text[j] <= "9":
            j += 1
        return _parse_number(text[i:j])
    last = None
    i = 0
    while i < len(text):
        if "0" <= text[i] <= "9":
            j = i
            while j < len(text) and "0" <= text[j] <= "9":
                j += 1
            start = i - 1 if i > 0 and text[i - 1] == "-" and (i < 2 or not "0" <= text[i - 2] <= "9") else i
            last = text[start:j]
            i = j
        else:
            i += 1
    return None if last is None else _parse_number(last)


_STEP = re.compile(r"^([0-9]+)([-+*/])([0-9]+)=(-?[0-9]+)$")


def grade_step(line):
    """(well_formed, correct) for one reasoning line; spaces anywhere in the line are ignored."""
    m = _STEP.match(line.replace(" ", ""))
    if not m:
        return False, False
    a, op, b, c = (_parse_number(m.group(1)), m.group(2), _parse_number(m.group(3)), _parse_number(m.group(4)))
    if a is None or b is None or c is None:
        return False, False
    if op == "+":
        ok = a + b == c
    elif op == "-":
        ok = a - b == c
    elif op == "*":
        ok = a * b == c
    else:
        ok = b != 0 and b * c == a
    return True, ok


def reasoning_part(text):
    """The text before the last answer delimiter (all of it without one)."""
    pos = text.rfind(ANSWER_DELIMITER.rstrip(" "))
    return text if pos < 0 else text[:pos]


def grade_steps(text):
    """[(line, well_formed, correct)] for every non-blank line of the reasoning part of ``text``."""
    out = []
    for line in reasoning_part(text).split("\n"):
        if line.strip(" ") == "":
            continue
        wf, ok = grade_step(line)
        out.append((line, wf, ok))
    return out


def grade(text, gold_answer):
    """Full verdict for a response text: answer and steps graded separately."""
    ans = extract_answer(text)
    steps = grade_steps(text)
    return {
        "answer": ans,
        "answer_correct": ans is not None and ans == gold_answer,
        "n_steps": len(steps),
        "n_well_formed": sum(1 for _, wf, _ in steps if wf),
        "n_correct_steps": sum(1 for _, _, ok in steps if ok),
        "all_steps_correct": len(steps) > 0 and all(ok for _, _, ok in steps),
    }
