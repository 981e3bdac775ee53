#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the committed task files: the test split (data/arith_test.jsonl) and the tokenizers
(data/tokenizer.json: digits one by one, the shipped model's; data/tokenizer_numbers.json: the same
words plus every 2- and 3-digit number as one token, for the next model, issue 17).
Deterministic: rerunning reproduces every file byte for byte.

    /usr/bin/python3 reference/tasks/make_data.py [--out-dir reference/tasks/data] [--check]

With --check it writes nothing and exits 1 if the committed files differ from what it would write.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mdlm_tasks import arith, formats, tokenizer  # noqa: E402

VOCAB_SEED = 99  #: seed of the problems whose words make up the vocabulary
VOCAB_PROBLEMS = 20000
EMBEDDING_SIZE = 256
NUMBERS_EMBEDDING_SIZE = 1536  #: 1100 number strings + the 256-row vocabulary, rounded up to a multiple of 512
FILES = ("arith_test.jsonl", "tokenizer.json", "tokenizer_numbers.json")


def build_tokenizer(number_tokens=False):
    problems = arith.generate(VOCAB_SEED, VOCAB_PROBLEMS)
    texts = [p["question"] + "\n" + arith.reasoning_text(p["steps"]) + arith.ANSWER_DELIMITER for p in problems]
    size = NUMBERS_EMBEDDING_SIZE if number_tokens else EMBEDDING_SIZE
    return tokenizer.build(texts, size, formats.format_spec(), number_tokens=number_tokens)


def write_all(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    arith.write_jsonl(os.path.join(out_dir, "arith_test.jsonl"), arith.generate(arith.TEST_SEED, arith.TEST_SIZE))
    build_tokenizer().save(os.path.join(out_dir, "tokenizer.json"))
    build_tokenizer(number_tokens=True).save(os.path.join(out_dir, "tokenizer_numbers.json"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not args.check:
        write_all(args.out_dir)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_all(tmp)
        bad = []
        for name in FILES:
            with open(os.path.join(tmp, name), "rb") as a, open(os.path.join(args.out_dir, name), "rb") as b:
                if a.read() != b.read():
                    bad.append(name)
    if bad:
        print("make_data --check: differs from the generator: " + ", ".join(bad))
        return 1
    print("make_data --check: committed files match the generator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
