# SPDX-License-Identifier: MIT
"""The examples of examples/python run here, so they cannot rot."""
import pytest


def test_llada_example():
    pytest.importorskip("torch")
    import llada_med_early_exit

    r, ex = llada_med_early_exit.main()
    assert r.ok and r.nfe > 0 and ex["nfe"] == r.nfe


def test_dream_example():
    pytest.importorskip("torch")
    import dream_entropy

    r = dream_entropy.main()
    assert r.nfe == 16 and r.status in ("completed", "incomplete")


def test_posterior_example():
    import posterior

    scores, a = posterior.main()
    assert 0.0 <= a <= 1.0 and len(scores["right"]) == 4
