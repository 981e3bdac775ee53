#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the committed task files: the test split (data/arith_test.jsonl) and the tokenizer
(data/tokenizer.json). Deterministic: rerunning reproduces both files byte for byte.

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


def build_tokenizer():
    problems = arith.generate(VOCAB_SEED, VOCAB_PROBLEMS)
    texts = [p["question"] + "\n" + arith.reasoning_text(p["steps"]) + arith.ANSWER_DELIMITER for p in problems]
    return tokenizer.build(texts, EMBEDDING_SIZE, formats.format_spec())


def write_all(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    arith.write_jsonl(os.path.join(out_dir, "arith_test.jsonl"), arith.generate(arith.TEST_SEED, arith.TEST_SIZE))
    build_tokenizer().save(os.path.join(out_dir, "tokenizer.json"))


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
        for name in ("arith_test.jsonl", "tokenizer.json"):
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
