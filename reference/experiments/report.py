#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the experiment report (markdown tables + PNG plots) from the result files of run.sh.

    /usr/bin/python3 reference/experiments/report.py --results reference/experiments/results \\
        --doc docs/results.md --img docs/img

Only settings whose result file exists are reported; every figure is read from the files (nothing is
typed in by hand). Plots use Debian's python3-matplotlib (Agg backend).
"""

import argparse
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(results):
    out = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        if lines:
            out[name] = json.loads(lines[-1])
    return out


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def num(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


def eval_table(r, rows, title, extra=()):
    lines = [f"### {title}", "", "| setting | command options | problems | accuracy % | all steps correct % | mean NFE | "
             "exit rate % | ms / problem | tokens/s |" + "".join(f" {h} |" for h, _ in extra),
             "|---|---|---|---|---|---|---|---|---|" + "---|" * len(extra)]
    for name, label, opts in rows:
        s = r.get(name)
        if s is None:
            continue
        cells = [label, f"`{opts}`", str(s["problems"]), pct(s["accuracy"]), pct(s["all_steps_correct"]), num(s["mean_nfe"]),
                 pct(s["exit_rate"]), num(1000 * s["mean_wall_s"]), num(s["tokens_per_s"], 0)]
        cells += [f(s) for _, f in extra]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["" if any(name in r for name, _, _ in rows) else "(no results)", ""]
    return lines


def targets(r, t5):
    """The issue's three targets, each read from result files on the same (first N) test problems."""
    md = ["## Targets", "", "| target | measured | status |", "|---|---|---|"]
    ltr, k1, k2 = r.get("t7_left_to_right"), r.get("t1_entropy_k1"), r.get("t1_entropy_k2")
    if ltr:
        md.append(f"| left-to-right one-token accuracy ≥ 90 % | {pct(ltr['accuracy'])} % on {ltr['problems']} problems | "
                  f"{'met' if ltr['accuracy'] >= 0.9 else 'MISSED'} |")
    if k1:
        best = None
        for n in sorted(k for k in r if k.startswith("t2_exit_med0.2_")):
            s = r[n]
            if s["problems"] != k1["problems"] or s["mean_nfe"] <= 0:
                continue
            ratio, loss = k1["mean_nfe"] / s["mean_nfe"], 100 * (k1["accuracy"] - s["accuracy"])
            ok = ratio >= 3.3 and loss <= 0.5
            key = (ok, ratio if ok else -loss)
            if best is None or key > best[0]:
                best = (key, n, s, ratio, loss, ok)
        if best:
            _, n, s, ratio, loss, ok = best
            md.append(f"| MED + early exit: ≥ 3.3× fewer calls than one-token entropy decoding at ≤ 0.5 points loss | "
                      f"MED 0.2 + exit γ = {s['early_exit_gamma']:g}: {num(k1['mean_nfe'])} → {num(s['mean_nfe'])} calls "
                      f"({ratio:.2f}×), accuracy {pct(k1['accuracy'])} → {pct(s['accuracy'])} % ({-loss:+.1f} points), "
                      f"{s['problems']} problems | {'met' if ok else 'MISSED'} |")
    if k1 and k2 and k1["problems"] == k2["problems"]:
        gap = 100 * (k1["accuracy"] - k2["accuracy"])
        md.append(f"| fixed k = 2 at least 3 points worse than k = 1 | k = 1: {pct(k1['accuracy'])} %, k = 2: "
                  f"{pct(k2['accuracy'])} % ({gap:.1f} points) on {k1['problems']} problems | "
                  f"{'met' if gap >= 3 else 'MISSED'} |")
    ans = r.get("t7_answer_only")
    if ltr and ans and ltr["problems"] == ans["problems"]:
        gap = 100 * (ltr["accuracy"] - ans["accuracy"])
        md.append(f"| answering without reasoning at least 30 points worse (left-to-right) | with reasoning "
                  f"{pct(ltr['accuracy'])} %, answer block only {pct(ans['accuracy'])} % ({gap:.1f} points) on "
                  f"{ltr['problems']} problems | {'met' if gap >= 30 else 'MISSED'} |")
    if t5 and t5["base_traces"]:
        share = t5["base_traces_all_steps_correct"] / t5["base_traces"]
        md.append(f"| post-training base: at least 60 % of its posterior traces have every step correct | "
                  f"{t5['base_traces_all_steps_correct']} of {t5['base_traces']} ({pct(share)} %) | "
                  f"{'met' if share >= 0.6 else 'MISSED'} |")
    return md + [""]


def _correct_by_id(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.strip():
            j = json.loads(line)
            out[j["id"]] = 1.0 if j["answer_correct"] else 0.0
    return out


def paired_difference(a, b):
    """Mean and standard error of the per-problem difference a_i - b_i (0/1 correctness) over the
    problems both evaluations share: SE = sd(d) / sqrt(n), the paired standard error (the same
    problems are scored under both models, so their common difficulty cancels)."""
    ids = sorted(set(a) & set(b))
    n = len(ids)
    if n < 2:
        return None
    d = [a[i] - b[i] for i in ids]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    return {"n": n, "mean": mean, "se": (var / n) ** 0.5}


def posttrain_summary(results):
    """Table 5's derived figures: how many posterior traces of the weaker base have every step
    correct, and the paired accuracy differences of the three evaluations. Computed from run.sh's raw
    files (posttrain/base_posterior.jsonl and t5_*.records.jsonl, not committed) when they exist and
    written to RESULTS/t5_summary.json, which is committed, so the report can be rebuilt without them."""
    cache = os.path.join(results, "t5_summary.json")
    post = os.path.join(results, "posttrain", "base_posterior.jsonl")
    recs = {n: os.path.join(results, f"t5_{n}.records.jsonl") for n in ("base", "ft_posterior", "ft_gold")}
    if not (os.path.exists(post) and all(os.path.exists(p) for p in recs.values())):
        if os.path.exists(cache):
            with open(cache, encoding="utf-8") as f:
                return json.load(f)
        return None
    tr = [json.loads(line) for line in open(post, encoding="utf-8") if line.strip()]
    c = {n: _correct_by_id(p) for n, p in recs.items()}
    out = {"base_traces": len(tr), "base_traces_all_steps_correct": sum(t["all_steps_correct"] for t in tr),
           "base_traces_answer_matches": sum(t["trace_answer_matches"] for t in tr),
           "differences": {"ft_posterior - base": paired_difference(c["ft_posterior"], c["base"]),
                           "ft_gold - base": paired_difference(c["ft_gold"], c["base"]),
                           "ft_posterior - ft_gold": paired_difference(c["ft_posterior"], c["ft_gold"])}}
    for n in ("ft_posterior", "ft_gold"):
        state = os.path.join(results, "posttrain", n, "train_state.json")
        if os.path.exists(state):
            with open(state, encoding="utf-8") as f:
                st = json.load(f)
            out.setdefault("finetune", {})[n] = {"examples": st["examples"], "steps": st["steps"],
                                                 "seconds": st["seconds"], "batch_size": st["args"]["batch_size"]}
    with open(cache, "w", encoding="utf-8") as f:
        f.write(json.dumps(out) + "\n")  # one line: load() reads every RESULTS/*.json as its last line
    return out


def frontier_plot(r, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    fams = [("f4_med_", "MED", "o"), ("f4_eb_", "EB-Sampler", "s"), ("f4_fast_dllm_", "Fast-dLLM threshold", "^"),
            ("t1_entropy_k", "entropy, fixed k", "x")]
    for prefix, label, marker in fams:
        pts = sorted((s["mean_nfe"], s["accuracy"]) for n, s in r.items() if n.startswith(prefix))
        if pts:
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker=marker, label=label)
    ax.set_xlabel("mean model calls (NFE)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs NFE (reasoning template, no exit)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def exit_plot(r, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    for prefix, label in (("t2_exit_entropy_", "entropy k=1 + exit"), ("t2_exit_med0.2_", "MED 0.2 + exit")):
        pts = sorted((s["mean_nfe"], s["accuracy"], s["early_exit_gamma"]) for n, s in r.items() if n.startswith(prefix))
        if pts:
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=label)
            for x, y, g in pts:
                ax.annotate(f"γ={g:g}", (x, 100 * y), fontsize=7)
    base = r.get("t1_entropy_k1")
    if base:
        ax.scatter([base["mean_nfe"]], [100 * base["accuracy"]], marker="*", s=120, color="k", label="entropy k=1, no exit")
    ax.set_xlabel("mean model calls (NFE)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Early exit on H_UB < γ")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def score_plot(results, name, path, title):
    curves = os.path.join(results, name + ".curves.jsonl")
    if not os.path.exists(curves):
        return False
    recs = [json.loads(line) for line in open(curves, encoding="utf-8") if line.strip()]
    if not recs:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for lab, color in ((True, "tab:green"), (False, "tab:red")):
        xs = [x["mean_phi"] for x in recs if x["label"] == lab]
        if xs:
            ax.hist(xs, bins=30, alpha=0.5, color=color, label=f"{'correct' if lab else 'incorrect'} ({len(xs)})")
    ax.set_xlabel("mean answer score φ over the trace (nats)")
    ax.set_ylabel("traces")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--img", required=True)
    ap.add_argument("--note", help="a paragraph placed under the title (e.g. the state of the model)")
    args = ap.parse_args()
    r = load(args.results)
    os.makedirs(args.img, exist_ok=True)
    rel = os.path.relpath(args.img, os.path.dirname(os.path.abspath(args.doc)))
    md = ["# Results on the shipped arithmetic model", "",
          "Generated by `reference/experiments/report.py` from the result files of `reference/experiments/run.sh`",
          f"(`{args.results}`). Model: `reference/models/arith-llada-3m` (see its MODEL_CARD.md). Accuracy = exact",
          "answer match; \"all steps correct\" = every reasoning line is arithmetically exact (reference/tasks",
          "checker). NFE = model calls. Wall times are on the machine that ran the script (see the card).", ""]
    if args.note:
        md += [args.note, ""]
    t5 = posttrain_summary(args.results)
    md += targets(r, t5)
    md += eval_table(r, [(f"t1_entropy_k{k}", f"entropy, k = {k}", f"--policy entropy --k {k}") for k in (1, 2, 4)],
                     "Table 1: fixed k tokens per call")
    analytics = (("leftmost %", lambda s: pct(s["leftmost_fraction"])),
                 ("dist. from leftmost", lambda s: num(s["mean_distance_from_leftmost"], 2)),
                 ("non-EOS tokens", lambda s: num(s["mean_non_eos_tokens"], 1)),
                 ("answer step", lambda s: num(s["mean_answer_step"], 1)))
    md += eval_table(r, [("t7_left_to_right", "left-to-right", "--policy left-to-right"),
                         ("t7_answer_only", "left-to-right, answer block only (no reasoning)",
                          "--policy left-to-right --answer-only"),
                         ("t7_entropy_block8", "block any-order, 8", "--policy entropy --block-length 8"),
                         ("t7_entropy_block32", "block any-order, 32", "--policy entropy --block-length 32"),
                         ("t1_entropy_k1", "pure any-order", "--policy entropy")],
                     "Tables 7 and 8: decoding order, with decoding analytics", analytics)
    rows = []
    for prefix, label, opt in (("f4_med_", "MED λ = {}", "--policy med --lambda {}"),
                               ("f4_eb_", "EB γ = {}", "--policy eb --gamma {}"),
                               ("f4_fast_dllm_", "Fast-dLLM τ = {}", "--policy fast-dllm-threshold --tau {}")):
        for n in sorted(k for k in r if k.startswith(prefix)):
            v = n[len(prefix):]
            rows.append((n, label.format(v), opt.format(v)))
    md += eval_table(r, [("t1_entropy_k1", "entropy, k = 1", "--policy entropy"),
                         ("t1_entropy_k2", "entropy, k = 2", "--policy entropy --k 2")] + rows,
                     "Table 6 / figure 4: MED vs EB-Sampler vs Fast-dLLM",
                     (("KL bound vs one-token (nats)", lambda s: num(s.get("mean_kl_bound"), 3)),))
    md += ["KL bound: per problem, the sum over steps of sum_i H_i - max_i H_i over the positions unmasked together",
           "(EB-Sampler's bound, include/mdlm/bounds.hpp) -- an upper bound on the KL each parallel step loses against",
           "unmasking those positions one at a time, estimated on the model's own conditionals; 0 for one-token decoding.", ""]
    if any(k.startswith("f4_") for k in r):
        frontier_plot(r, os.path.join(args.img, "frontier.png"))
        md += [f"![accuracy vs NFE]({rel}/frontier.png)", ""]
    rows = [("t2_no_template", "no template, entropy k = 1", "--policy entropy --no-template"),
            ("t1_entropy_k1", "template, entropy k = 1", "--policy entropy")]
    for prefix, label, opt in (("t2_exit_entropy_", "template + exit γ = {}, entropy", "--policy entropy --early-exit {}"),
                               ("t2_exit_med0.2_", "template + exit γ = {}, MED 0.2",
                                "--policy med --lambda 0.2 --early-exit {}")):
        for n in sorted((k for k in r if k.startswith(prefix)), key=lambda k: float(k[len(prefix):])):
            v = n[len(prefix):]
            rows.append((n, label.format(v), opt.format(v)))
    rows += [("t2_prophet_entropy", "template + Prophet exit, entropy", "--policy entropy --prophet"),
             ("t2_prophet_med0.2", "template + Prophet exit, MED 0.2", "--policy med --lambda 0.2 --prophet")]
    md += eval_table(r, rows, "Table 2: template, early exit, Prophet")
    if any(k.startswith("t2_exit") for k in r):
        exit_plot(r, os.path.join(args.img, "early_exit.png"))
        md += [f"![early exit]({rel}/early_exit.png)", ""]
    md += ["### Figures 5 and 6: posterior traces and answer scores", ""]
    post = os.path.join(args.results, "posterior_wrong.jsonl")
    if os.path.exists(post):
        tr = [json.loads(line) for line in open(post, encoding="utf-8") if line.strip()]
        if tr:
            ok = sum(t["all_steps_correct"] for t in tr)
            md += [f"Posterior traces p(r | c, a*) (left-to-right, temperature 1) for the {len(tr)} test problems that "
                   f"one-token entropy decoding gets wrong: {ok} ({pct(ok / len(tr))} %) have every step arithmetically "
                   f"correct (graded exactly), {sum(t['trace_answer_matches'] for t in tr)} end in the gold answer.", ""]
    for name, title in (("score_posterior", "posterior traces, label = every step correct"),
                        ("score_own", "model's own traces (entropy k = 1), label = answer correct, gold answer scored")):
        s = r.get(name)
        if s:
            md += [f"- {title}: {s['traces']} traces ({s['positives']} positive, {s['negatives']} negative); AUC of mean φ "
                   f"{num(s['auc_mean_phi'], 3)}, of final φ {num(s['auc_final_phi'], 3)}, of −mean H_UB "
                   f"{num(s['auc_neg_mean_h_ub'], 3)}; φ after 25 / 50 / 75 % of the trace: {num(s['auc_phi_at_25'], 3)} / "
                   f"{num(s['auc_phi_at_50'], 3)} / {num(s['auc_phi_at_75'], 3)}."]
            if score_plot(args.results, name, os.path.join(args.img, name + ".png"), title):
                md += ["", f"![{name}]({rel}/{name}.png)", ""]
    md += [""]
    md += eval_table(r, [("t5_base", "weaker base", "--model reference/models/arith-llada-3m-base"),
                         ("t5_ft_posterior", "base + FT on own posterior traces", "--model .../ft_posterior"),
                         ("t5_ft_gold", "base + FT on gold traces", "--model .../ft_gold")],
                     "Table 5: post-training on posterior traces vs gold traces")
    if t5:
        md += [f"The weaker base wrote {t5['base_traces']} posterior traces p(r | c, a*) of held-out training-stream "
               f"problems (`mdlm posterior --policy entropy --temperature 0`), the fine-tuning data of the second "
               f"row; the third row is fine-tuned on the gold traces of the same problems. "
               f"{t5['base_traces_all_steps_correct']} "
               f"({pct(t5['base_traces_all_steps_correct'] / max(t5['base_traces'], 1))} %) of the traces have every step correct, "
               f"{t5['base_traces_answer_matches']} end in the gold answer. Paired accuracy differences on the same test "
               f"problems (mean ± standard error of the per-problem difference):", ""]
        for name, ft in t5.get("finetune", {}).items():
            md.append(f"- {name}: fine-tuned on {ft['examples']} examples for {ft['steps']} steps of batch "
                      f"{ft['batch_size']} ({ft['seconds']:.0f} s)")
        md.append("")
        for name, d in t5["differences"].items():
            if d:
                md.append(f"- {name}: {100 * d['mean']:+.1f} ± {100 * d['se']:.1f} points ({d['n']} problems)")
        md.append("")
    with open(args.doc, "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    print(f"report: {len(r)} result files -> {args.doc}")


if __name__ == "__main__":
    main()
