# SPDX-License-Identifier: MIT
"""The Python bindings against the C++ decode on the same inputs, errors, zero copy, threads."""
import gc
import resource
import sys
import threading

import numpy as np
import pytest

import mdlm

HMM = mdlm.reference.random_hmm(3, 6, 16, seed=7)
HMM13 = mdlm.reference.random_hmm(3, 6, 13, seed=8)
POLICIES = [mdlm.MED(), mdlm.MED(lam=0.5, k_max=4), mdlm.EBSampler(gamma=0.1), mdlm.FastDLLMThreshold(tau=0.5),
            mdlm.FastDLLMFactor(), mdlm.LLaDASchedule(), mdlm.DreamSchedule("entropy"), mdlm.DreamSchedule("origin"),
            mdlm.KLASS()]


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_python_model_equals_cpp_decode(policy, temperature):
    # decode entirely in C++ (ExactModel) vs the same model as a Python callable through the bindings
    choice = mdlm.TokenChoice(temperature=temperature)
    steps = 12 if getattr(policy, "scheduled", isinstance(policy, mdlm.DreamOrigin)) else 0
    kw = dict(gen_length=12, block_length=6, policy=policy, choice=choice, steps=steps, seed=5)
    native = mdlm.decode(HMM, [1, 2, 3, 4], **kw)
    via_py = mdlm.decode(lambda t: HMM(t), [1, 2, 3, 4], mask_id=HMM.mask_id, **kw)
    assert native.status == via_py.status
    assert np.array_equal(native.tokens, via_py.tokens)
    assert native.nfe == via_py.nfe and native.nfe > 0
    assert np.array_equal(native.unmask_step, via_py.unmask_step)


def test_batch_equals_single():
    fn = lambda t: np.stack([HMM(row) for row in t])  # noqa: E731
    res = mdlm.decode_batch(fn, [[1, 2, 3, 4], [5, 0, 1, 2]], gen_length=12, mask_id=HMM.mask_id,
                            choice=mdlm.TokenChoice(temperature=1.0), seed=3)
    for b, r in enumerate(res):
        alone = mdlm.decode(HMM, [[1, 2, 3, 4], [5, 0, 1, 2]][b], gen_length=12, sequence=b,
                            choice=mdlm.TokenChoice(temperature=1.0), seed=3)
        assert np.array_equal(r.tokens, alone.tokens) and r.nfe == alone.nfe


def test_dtypes_and_torch():
    torch = pytest.importorskip("torch")
    logits = np.random.default_rng(0).standard_normal((5, 300)).astype(np.float32)
    want = mdlm.select(mdlm.MED(lam=10.0, k_max=5), [0, 1, 2, 3, 4], logits=logits)
    for arr in (torch.from_numpy(logits), logits.astype(np.float16), torch.from_numpy(logits).to(torch.bfloat16)):
        got = mdlm.select(mdlm.MED(lam=10.0, k_max=5), [0, 1, 2, 3, 4], logits=arr)
        assert np.array_equal(np.sort(got[0]), np.sort(want[0]))


def test_step_api_matches_decode_first_step():
    t = np.array([1, 2, 3, 4] + [HMM.mask_id] * 12)
    rows = HMM(t)
    pos, tok = mdlm.select(mdlm.MED(), list(range(4, 16)), logits=rows, mask_id=HMM.mask_id)
    seen = []
    mdlm.decode(HMM, [1, 2, 3, 4], gen_length=12, observers=[lambda e: seen.append(e.unmasked) or True])
    assert sorted(seen[0]) == sorted(pos.tolist())
    # full canvas rows and compact rows agree; precomputed statistics agree
    pos2, tok2 = mdlm.select(mdlm.MED(), list(range(4, 16)), logits=np.ascontiguousarray(rows[4:]))
    assert np.array_equal(pos, pos2) and np.array_equal(tok, tok2)
    z = rows[4:].astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), 1)
    stats = {"token": p.argmax(1), "prob": p.max(1), "entropy": ent}
    pos3, tok3 = mdlm.select(mdlm.MED(), list(range(4, 16)), stats=stats)
    assert np.array_equal(pos, pos3) and np.array_equal(tok, tok3)


def test_bad_input():
    logits = np.zeros((4, 300), dtype=np.float32)
    with pytest.raises(ValueError, match="dtype|format"):
        mdlm.select(mdlm.MED(), [0, 1, 2, 3], logits=logits.astype(np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        mdlm.select(mdlm.MED(), [0, 1, 2, 3], logits=np.zeros((300, 4), dtype=np.float32).T)
    with pytest.raises(ValueError, match="shape"):
        mdlm.decode(lambda t: np.zeros((3, 7), np.float32), [1], gen_length=4, mask_id=6, vocab_size=7)
    with pytest.raises(ValueError, match="lambda = -1 must be >= 0"):
        mdlm.MED(lam=-1)
    with pytest.raises(ValueError, match="block_length = 3 does not divide the generation length 4"):
        mdlm.decode(HMM, [1], gen_length=4, block_length=3)


class Boom(Exception):
    pass


def test_model_exception_propagates_with_traceback():
    def model(t):
        raise Boom("from the model")

    counts = []
    for _ in range(20):
        with pytest.raises(Boom) as info:
            mdlm.decode(model, [1], gen_length=4, mask_id=6, vocab_size=7)
        assert any(tb.name == "model" for tb in info.traceback)
        del info
        gc.collect()
        counts.append(sys.getrefcount(model))
    assert counts[-1] == counts[0], f"references to the model grow per failed decode: {counts}"


def test_nan_logits_status_and_message():
    def model(t):
        out = np.zeros((len(t), 7), np.float32)
        out[2, 3] = np.nan
        return out

    r = mdlm.decode(model, [1], gen_length=4, mask_id=6, vocab_size=7)
    assert r.status == "invalid_logits"
    assert r.message == "the model returned an invalid logit row (NaN, +inf or all -inf) at step 0, position 2"
    with pytest.raises(ValueError, match="invalid logit row"):
        mdlm.select(mdlm.MED(), [1, 2], logits=model([0, 0, 0, 0])[1:3].copy())


def test_zero_copy_large_vocab():
    # [256, 126464] fp32 = 129 MB per call: decode must read it in place (peak memory flat).
    L, V = 256, 126464
    logits = np.full((L, V), -4.0, dtype=np.float32)
    logits[:, 7] = 20.0  # confident everywhere: MED unmasks k_max per step

    def model(t):
        return logits

    mdlm.decode(model, [1], gen_length=L - 1, block_length=0, mask_id=V - 1, vocab_size=V,
                policy=mdlm.MED(k_max=32), max_nfe=2)
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = mdlm.decode(model, [1], gen_length=L - 1, mask_id=V - 1, vocab_size=V, policy=mdlm.MED(k_max=32))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0
    assert r.status == "completed" and r.nfe == 8 and r.interface == "row_choices"
    assert grown_kib < 32 * 1024, f"peak RSS grew by {grown_kib} KiB: the logits were copied"


def test_threads_independent_decodes():
    kw = dict(gen_length=12, choice=mdlm.TokenChoice(temperature=1.0), mask_id=HMM.mask_id)
    want = {s: mdlm.decode(lambda t: HMM(t), [1, 2, 3, 4], seed=s, **kw).tokens for s in range(8)}
    got = {}

    def run(s):
        got[s] = mdlm.decode(lambda t: HMM(t), [1, 2, 3, 4], seed=s, **kw).tokens

    threads = [threading.Thread(target=run, args=(s,)) for s in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(np.array_equal(got[s], want[s]) for s in range(8))


def test_exact_output_distribution_one_token_per_step_is_exact():
    m = mdlm.reference.random_joint_table(2, 3, 0.5, 11)
    c = mdlm.make_canvas([0], 2, m.mask_id)
    d = mdlm.reference.exact_output_distribution(m, c, mdlm.FixedCount(score="random", schedule="per_step"),
                                                 mdlm.TokenChoice(temperature=1.0))
    joint = mdlm.reference.model_output_distribution(m, c)
    assert mdlm.reference.kl_divergence(joint, d["outputs"]) < 1e-12
    assert abs(sum(p for _, p in d["outputs"]) - 1.0) < 1e-12


def test_infilling_scores_and_auc():
    t = mdlm.make_template([1, 2], reasoning_length=8, delimiter=[3], answer_length=2, mask_id=HMM13.mask_id)
    r = mdlm.decode(HMM13, template=t, observers=[mdlm.EarlyExit(t, gamma=0.5)])
    assert r.ok
    phi, h = mdlm.evaluate_answer(HMM13, t.tokens, t, [0, 1])
    s = mdlm.score_trace(HMM13, t, [0] * 8, [0, 1])
    assert len(s["phi"]) == 9 and abs(s["phi"][0] - phi) < 1e-5 and h >= 0
    assert mdlm.auc([1.0, 2.0], [0.0]) == 1.0
    with pytest.raises(ValueError, match="positives is empty"):
        mdlm.auc([], [0.0])
