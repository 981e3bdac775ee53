# SPDX-License-Identifier: MIT
"""Posterior sampling: reasoning given a known answer, scored by phi (answer score), then AUC.

Run: PYTHONPATH=build/dev/python /usr/bin/python3 examples/python/posterior.py
"""
import mdlm

model = mdlm.reference.random_hmm(states=4, vocab=6, length=14, seed=3)  # an exact model


def main():
    t = mdlm.make_template([1, 2], reasoning_length=8, delimiter=[5], answer_length=3, mask_id=model.mask_id)
    right, wrong = [0, 1, 2], [4, 4, 4]
    scores = {}
    for name, answer in (("right", right), ("wrong", wrong)):
        post = mdlm.posterior_template(t, answer, model.mask_id)  # the answer is given, reasoning masked
        traces = [mdlm.decode(model, template=post, sequence=s, seed=9, choice=mdlm.TokenChoice(temperature=1.0))
                  for s in range(4)]
        r0, r1 = t.reasoning
        scores[name] = [mdlm.score_trace(model, t, tr.tokens[r0:r1], right)["mean_phi"] for tr in traces]
    a = mdlm.auc(scores["right"], scores["wrong"])
    print(f"mean phi of traces sampled given the right answer {scores['right']}, given a wrong one "
          f"{scores['wrong']}, AUC {a:.2f}")
    return scores, a


if __name__ == "__main__":
    main()
