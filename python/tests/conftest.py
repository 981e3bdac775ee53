# SPDX-License-Identifier: MIT
import os
import sys

ROOT = os.environ.get("MDLM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))  # torch_models.py
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
