# SPDX-License-Identifier: MIT
"""A small vocabulary tokenizer with greedy longest-match encoding, stored as ``tokenizer.json``.

File format (``"format": "mdlm-greedy-vocab-1"``):

* ``tokens``: the id -> string table. Ids 0.. are the special tokens, then ``"\\n"``, then every
  printable ASCII character (0x20..0x7E), then whole words (with their leading space when they follow
  one, e.g. ``" apples"``). Digits are single characters, so numbers are spelled digit by digit;
  a vocabulary built with ``number_tokens=True`` also holds every string of 2 or 3 digits ("00" ..
  "999", leading zeros included), so greedy longest match splits a number into groups of up to three
  digits from the left, as LLaMA-3-style tokenizers do (``\p{N}{1,3}``): "63" is one token, "1234" is
  "123" "4". Every value of the arithmetic task (<= 200) is then a single token.
* ``special_tokens``: {"bos", "eos", "mask"} -> id. Special tokens are never produced by ``encode``.
  ``eos`` also pads (LLaDA's SFT pads the response with EOS).
* ``embedding_size``: rows of the model's embedding (>= len(tokens)); the rows past the table are
  unused padding, as in LLaDA's checkpoint.
* ``format_spec``: how a problem is written for the model (see ``formats.py``).

Encoding: from the current position, take the longest non-special token string that the text starts
with; repeat. Every printable ASCII character and newline is a token, so every such text encodes;
any other character is an error. Decoding concatenates the token strings (special tokens are
dropped by default). ``decode(encode(s)) == s`` for every encodable ``s``. The C++ tokenizer
(reference/include/mdlm/reference/tasks/tokenizer.hpp) implements the same rules.
"""

import json
import re

FORMAT = "mdlm-greedy-vocab-1"
SPECIALS = ("<|bos|>", "<|eos|>", "<|mask|>")
_WORD = re.compile(r" ?[A-Za-z]+")


class Tokenizer:
    def __init__(self, tokens, special_tokens, embedding_size, format_spec=None):
        self.tokens = list(tokens)
        self.special = dict(special_tokens)
        self.embedding_size = int(embedding_size)
        self.format_spec = dict(format_spec or {})
        if self.embedding_size < len(self.tokens):
            raise ValueError(f"embedding_size {self.embedding_size} < {len(self.tokens)} tokens")
        for name in ("bos", "eos", "mask"):
            if name not in self.special:
                raise ValueError(f"special token {name!r} missing")
        self.bos, self.eos, self.mask = self.special["bos"], self.special["eos"], self.special["mask"]
        self._special_ids = set(self.special.values())
        self._by_string = {}
        self.max_len = 0
        for i, s in enumerate(self.tokens):
            if i in self._special_ids:
                continue
            if not s:
                raise ValueError(f"token {i} is empty")
            if s in self._by_string:
                raise ValueError(f"token string {s!r} appears twice (ids {self._by_string[s]} and {i})")
            self._by_string[s] = i
            self.max_len = max(self.max_len, len(s))

    # -- file I/O ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: format {d.get('format')!r} is not {FORMAT!r}")
        return cls(d["tokens"], d["special_tokens"], d["embedding_size"], d.get("format_spec"))

    def save(self, path):
        d = {"format": FORMAT, "special_tokens": self.special, "embedding_size": self.embedding_size,
             "format_spec": self.format_spec, "tokens": self.tokens}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, indent=1, ensure_ascii=True)
            f.write("\n")

    # -- encode / decode --------------------------------------------------------------------------
    def encode(self, text):
        ids = []
        i, n = 0, len(text)
        while i < n:
            for length in range(min(self.max_len, n - i), 0, -1):
                tid = self._by_string.get(text[i : i + length])
                if tid is not None:
                    ids.append(tid)
                    i += length
                    break
            else:
                raise ValueError(f"character {text[i]!r} at position {i} is not in the vocabulary")
        return ids

    def decode(self, ids, skip_special=True):
        out = []
        for t in ids:
            t = int(t)
            if t < 0 or t >= len(self.tokens):
                raise ValueError(f"token id {t} is outside the table of {len(self.tokens)} tokens")
            if skip_special and t in self._special_ids:
                continue
            out.append(self.tokens[t])
        return "".join(out)

    def __len__(self):
        return len(self.tokens)


def number_strings():
    """Every string of 2 or 3 decimal digits, "00" .. "99" then "000" .. "999" (1100 strings)."""
    return [f"{n:02d}" for n in range(100)] + [f"{n:03d}" for n in range(1000)]


def build(corpus_texts, embedding_size, format_spec, min_count=1, number_tokens=False):
    """Vocabulary from texts: specials, newline, printable ASCII, then every word (regex
    `` ?[A-Za-z]+``) seen at least ``min_count`` times and longer than one character, sorted; with
    ``number_tokens``, then every 2- and 3-digit string (``number_strings``)."""
    counts = {}
    for text in corpus_texts:
        for w in _WORD.findall(text):
            counts[w] = counts.get(w, 0) + 1
    chars = ["\n"] + [chr(c) for c in range(0x20, 0x7F)]
    words = sorted(w for w, c in counts.items() if c >= min_count and len(w) > 1 and w not in chars)
    tokens = list(SPECIALS) + chars + words + (number_strings() if number_tokens else [])
    special = {"bos": 0, "eos": 1, "mask": 2}
    return Tokenizer(tokens, special, embedding_size, format_spec)
