"""Time textrl's scoring layer against calling sacrebleu and rouge-score directly, and reproduce
the SciTLDR lead-1 baselines.

    .venv/bin/python scripts/bench_score.py [--data ../shared/data/scitldr-a] [--repeats 5]

Scores the first sentence of every abstract of SciTLDR-A ``test.jsonl`` (618 documents, 2-4
references each) with all metrics under both protocols (first reference; best reference for
ROUGE / all references for BLEU and chrF). The "libraries directly" column is the plain use of
the libraries that produces the same numbers: ``BLEU().corpus_score`` and ``CHRF().corpus_score``
with the first reference and with all references, and per document rouge-score's
``score(first_ref, hyp)`` and ``score_multi(refs, hyp)`` (ROUGE-Lsum on sentence-split text).
A second, leaner direct path scores each reference once with ``score`` and picks both protocols
from those scores. Each repetition builds fresh scorers (cold caches); the median time is
reported. All paths must give the same numbers, which the script checks before printing.

Prints two Markdown tables: the timing (with the ratio textrl / libraries) and the lead-1
baseline reproduction next to the values in the data folder's README.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from textrl.scoring import CorpusScorer
from textrl.scoring.sentence import MetricConfig, lsum_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "scitldr-a"

# SciTLDR-A README, "first sentence (lead-1)": R-1 / R-2 / R-L F1 x100.
README_LEAD1 = {"author": (25.8, 9.3, 20.1), "multi-max": (31.3, 11.4, 24.1)}


def load_lead1(data: Path) -> tuple[list[str], list[list[str]]]:
    """Lead-1 hypotheses (``source[0]``) and references (``target``) of ``test.jsonl``."""
    path = data / "test.jsonl"
    if not path.exists():
        sys.exit(f"bench_score: {path} not found; pass --data FOLDER with SciTLDR-A test.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["source"][0] for r in rows], [list(r["target"]) for r in rows]


def sacrebleu_direct(
    hyps: list[str], refs: list[list[str]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Corpus BLEU and chrF straight from sacrebleu: first reference, and all references."""
    from sacrebleu.metrics import BLEU, CHRF

    first: dict[str, float] = {}
    best: dict[str, float] = {}
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(max(map(len, refs)))]
    for name, metric_cls in (("bleu", BLEU), ("chrf", CHRF)):
        first[name] = metric_cls().corpus_score(hyps, [[r[0] for r in refs]]).score
        best[name] = metric_cls().corpus_score(hyps, streams).score
    return first, best


def score_with_libraries(
    hyps: list[str], refs: list[list[str]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Both protocols by calling sacrebleu and rouge-score directly (per-metric best ref)."""
    from rouge_score import rouge_scorer

    config = MetricConfig()
    first, best = sacrebleu_direct(hyps, refs)
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    f_first: dict[str, list[float]] = {}
    f_best: dict[str, list[float]] = {}
    for hyp, doc_refs in zip(hyps, refs):
        lsum_refs = [lsum_text(r, config) for r in doc_refs]
        lsum_hyp = lsum_text(hyp, config)
        one = {**plain.score(doc_refs[0], hyp), **lsum.score(lsum_refs[0], lsum_hyp)}
        multi = {**plain.score_multi(doc_refs, hyp), **lsum.score_multi(lsum_refs, lsum_hyp)}
        for k in one:
            f_first.setdefault(k, []).append(one[k].fmeasure)
            f_best.setdefault(k, []).append(multi[k].fmeasure)
    for k in f_first:
        first[k] = 100 * float(np.mean(f_first[k]))
        best[k] = 100 * float(np.mean(f_best[k]))
    return first, best


def score_with_libraries_once(
    hyps: list[str], refs: list[list[str]]
) -> tuple[dict[str, float], dict[str, float]]:
    """As :func:`score_with_libraries`, but each reference scored once per document with
    ``RougeScorer.score`` and both protocols read from those scores (score_multi's rule)."""
    from rouge_score import rouge_scorer

    config = MetricConfig()
    first, best = sacrebleu_direct(hyps, refs)
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    f_first: dict[str, list[float]] = {}
    f_best: dict[str, list[float]] = {}
    for hyp, doc_refs in zip(hyps, refs):
        lsum_hyp = lsum_text(hyp, config)
        per_ref = [
            {**plain.score(r, hyp), **lsum.score(lsum_text(r, config), lsum_hyp)} for r in doc_refs
        ]
        for k in per_ref[0]:
            f_first.setdefault(k, []).append(per_ref[0][k].fmeasure)
            values = [s[k].fmeasure for s in per_ref]
            f_best.setdefault(k, []).append(values[int(np.argmax(values))])
    for k in f_first:
        first[k] = 100 * float(np.mean(f_first[k]))
        best[k] = 100 * float(np.mean(f_best[k]))
    return first, best


def score_with_textrl(
    hyps: list[str], refs: list[list[str]]
) -> tuple[dict[str, float], dict[str, float]]:
    scores = CorpusScorer().score(hyps, refs)
    return scores.metrics, scores.metrics_max_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with SciTLDR-A test.jsonl"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per scorer")
    args = parser.parse_args()
    hyps, refs = load_lead1(args.data)

    scorers = (
        ("libraries", score_with_libraries),
        ("libraries_once", score_with_libraries_once),
        ("textrl", score_with_textrl),
    )
    times: dict[str, list[float]] = {name: [] for name, _ in scorers}
    results = {}
    for _ in range(args.repeats):  # alternate so all see the same machine state
        for name, fn in scorers:
            start = time.perf_counter()
            results[name] = fn(hyps, refs)
            times[name].append(time.perf_counter() - start)
    for name in ("libraries", "libraries_once"):
        for lib, ours in zip(results[name], results["textrl"]):
            for m, value in lib.items():
                if ours[m] != value:
                    sys.exit(f"bench_score: {m}: textrl {ours[m]!r} != {name} {value!r}")

    lib_s, once_s, our_s = (
        statistics.median(times[k]) for k in ("libraries", "libraries_once", "textrl")
    )
    print(
        f"SciTLDR-A test, lead-1, {len(hyps)} documents, {sum(map(len, refs))} references, "
        f"all metrics (BLEU, chrF, ROUGE-1/2/L/Lsum), both protocols; median of "
        f"{args.repeats}; Python {platform.python_version()} on {platform.machine()}\n"
    )
    print("| scorer | time (s) | ratio to direct | ratio to lean direct |")
    print("|---|---|---|---|")
    for label, t in (
        ("sacrebleu corpus_score + rouge-score score + score_multi, directly", lib_s),
        ("lean direct: each reference scored once with rouge-score score", once_s),
        ("textrl.scoring.CorpusScorer().score", our_s),
    ):
        print(f"| {label} | {t:.2f} | {t / lib_s:.2f} | {t / once_s:.2f} |")
    print("\nIdentical numbers on all paths (checked).\n")

    author = CorpusScorer(max_ref="rouge1").score(hyps, refs)
    per_metric = results["textrl"][1]
    print("| lead-1 protocol | R-1 / R-2 / R-L (textrl) | README |")
    print("|---|---|---|")
    for label, values, readme in (
        ("author (first reference)", author.metrics, README_LEAD1["author"]),
        ("multi-max (reference with best R-1)", author.metrics_max_ref, README_LEAD1["multi-max"]),
        ("best reference per metric (score_multi)", per_metric, None),
    ):
        ours = " / ".join(f"{values[m]:.1f}" for m in ("rouge1", "rouge2", "rougeL"))
        print(f"| {label} | {ours} | {' / '.join(str(v) for v in readme) if readme else '-'} |")


if __name__ == "__main__":
    main()
