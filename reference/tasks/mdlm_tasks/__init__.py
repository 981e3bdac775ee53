# SPDX-License-Identifier: MIT
"""mdlm's synthetic reasoning task: GSM8k-style arithmetic word problems with checkable reasoning.

Modules:

* ``arith``: the seeded problem generator, the fixed train/test splits and the checker.
* ``tokenizer``: the greedy longest-match vocabulary tokenizer stored as ``tokenizer.json``.
* ``formats``: how a problem becomes model input (prompt, reasoning template, plain reasoning).
"""
