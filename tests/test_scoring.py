"""Tests for the corpus scoring layer (textrl.scoring): equality with sacrebleu and rouge-score,
the SciTLDR lead-1 baselines, per-document agreement with SentenceScorer, bootstrap and paired
comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from textrl.scoring.corpus import (
    CORPUS_METRICS,
    CorpusScorer,
    normalize_inputs,
    paired_comparison,
    reference_streams,
    score_corpus,
)
from textrl.scoring.sentence import MetricConfig, SentenceScorer, lsum_text

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scitldr-a"
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# Inline pairs: multi-sentence text, punctuation, stemming, a variable number of references.
TOY_HYPS = [
    "The cat sat on the mat. It was happy!",
    "Researchers propose a new method for training networks.",
    "",
    "testing one",
]
TOY_REFS = [
    ["A cat was sitting on the mat.", "The cat sat on a mat and was happy."],
    ["We propose a method that trains deep networks faster. It is new."],
    ["Nothing was predicted here."],
    ["testing one two", "testing", "one two three"],
]


@pytest.fixture(scope="module")
def scitldr() -> list[dict]:
    path = DATA / "test.jsonl"
    if not path.exists():
        pytest.skip(f"SciTLDR-A data not found at {path} (present on developer machines and CI)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def lead1(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["source"][0] for r in rows], [list(r["target"]) for r in rows]


def library_scores(hyps: list[str], refs: list[list[str]]) -> tuple[dict, dict]:
    """Both protocols computed by calling sacrebleu and rouge-score directly."""
    config = MetricConfig()
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(max(map(len, refs)))]
    first = {
        "bleu": BLEU().corpus_score(hyps, [[r[0] for r in refs]]).score,
        "chrf": CHRF().corpus_score(hyps, [[r[0] for r in refs]]).score,
    }
    best = {
        "bleu": BLEU().corpus_score(hyps, streams).score,
        "chrf": CHRF().corpus_score(hyps, streams).score,
    }
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    f1: dict[str, list[float]] = {m: [] for m in ROUGE}
    fmax: dict[str, list[float]] = {m: [] for m in ROUGE}
    for hyp, doc_refs in zip(hyps, refs):
        lsum_refs, lsum_hyp = [lsum_text(r, config) for r in doc_refs], lsum_text(hyp, config)
        one = {**plain.score(doc_refs[0], hyp), **lsum.score(lsum_refs[0], lsum_hyp)}
        multi = {**plain.score_multi(doc_refs, hyp), **lsum.score_multi(lsum_refs, lsum_hyp)}
        for m in ROUGE:
            f1[m].append(one[m].fmeasure)
            fmax[m].append(multi[m].fmeasure)
    for m in ROUGE:
        first[m] = 100 * float(np.mean(f1[m]))
        best[m] = 100 * float(np.mean(fmax[m]))
    return first, best


# ------------------------------------------------------------------------------ real data
def test_equals_sacrebleu_and_rouge_score_on_scitldr(scitldr) -> None:
    hyps, refs = lead1(scitldr)
    assert {len(r) for r in refs} == {2, 3, 4}  # variable references per document
    scores = score_corpus(hyps, refs)
    first, best = library_scores(hyps, refs)
    assert scores.metrics == first  # bit-identical, every metric
    assert scores.metrics_max_ref == best
    assert list(scores.metrics) == list(CORPUS_METRICS)
    assert scores.n_documents == 618 and scores.n_references == 1967
    assert scores.signatures["bleu"].startswith("nrefs:1|")
    assert scores.signatures["bleu_max_ref"].startswith("nrefs:var|")
    assert "stem" in scores.signatures["rouge"]


def test_reproduces_scitldr_lead1_baselines(scitldr) -> None:
    """SciTLDR-A README: lead-1 25.8/9.3/20.1 (author), 31.3/11.4/24.1 (multi-max = the
    reference with the highest ROUGE-1, its R-1/R-2/R-L)."""
    hyps, refs = lead1(scitldr)
    scores = score_corpus(hyps, refs, max_ref="rouge1")
    r = ("rouge1", "rouge2", "rougeL")
    assert tuple(round(scores.metrics[m], 1) for m in r) == (25.8, 9.3, 20.1)
    assert tuple(round(scores.metrics_max_ref[m], 1) for m in r) == (31.3, 11.4, 24.1)
    # The per-metric best reference (rouge-score's score_multi) is a different protocol: the
    # ROUGE-1 column agrees, ROUGE-2/L are higher.
    per_metric = score_corpus(hyps, refs).metrics_max_ref
    assert round(per_metric["rouge1"], 1) == 31.3
    assert per_metric["rouge2"] > scores.metrics_max_ref["rouge2"] + 0.5


def test_reproduces_scitldr_oracle_baseline(scitldr) -> None:
    """README: oracle sentence 42.3/22.0/34.8 (author), 44.4/22.8/36.0 (multi-max)."""
    hyps = [r["source"][r["source_labels"].index(1)] for r in scitldr]
    scores = score_corpus(hyps, [r["target"] for r in scitldr], metrics=ROUGE[:3], max_ref="rouge1")
    r = ("rouge1", "rouge2", "rougeL")
    assert tuple(round(scores.metrics[m], 1) for m in r) == (42.3, 22.0, 34.8)
    assert tuple(round(scores.metrics_max_ref[m], 1) for m in r) == (44.4, 22.8, 36.0)


@pytest.mark.parametrize(
    "config",
    [MetricConfig(), MetricConfig(use_stemmer=False), MetricConfig(lsum_split="newline")],
    ids=str,
)
def test_per_document_equals_sentence_scorer_on_scitldr(scitldr, config) -> None:
    rows = scitldr[:80]
    hyps = [" ".join(r["source"][:2]) for r in rows]  # two sentences: Lsum differs from L
    refs = [r["target"] for r in rows]
    check_per_document(hyps, refs, config)


# ---------------------------------------------------------------------------- inline data
def check_per_document(hyps: list[str], refs: list[list[str]], config: MetricConfig) -> None:
    scores = score_corpus(hyps, refs, config=config, per_document=True)
    sentence = SentenceScorer(config=config)
    for row, hyp, doc_refs in zip(scores.per_document, hyps, refs):
        best, first = sentence.score(hyp, doc_refs), sentence.score(hyp, doc_refs[:1])
        for m in ROUGE:
            assert row[m] == 100 * first[m], (m, hyp)
            assert row[m + "_max_ref"] == 100 * best[m], (m, hyp)
        assert row["bleu"] == first["bleu"] and row["bleu_max_ref"] == best["bleu"]
        assert row["chrf"] == CHRF().sentence_score(hyp, doc_refs[:1]).score
        assert row["chrf_max_ref"] == CHRF().sentence_score(hyp, doc_refs).score
        assert row["n_references"] == len(doc_refs)
        assert row["empty_prediction"] == (not hyp.strip())


@pytest.mark.parametrize(
    "config",
    [MetricConfig(), MetricConfig(use_stemmer=False), MetricConfig(lsum_split="newline")],
    ids=str,
)
def test_per_document_equals_sentence_scorer_inline(config) -> None:
    check_per_document(TOY_HYPS, TOY_REFS, config)


def test_cjk_opt_in() -> None:
    hyps = ["我们提出了一种新的方法。它很快。", "猫坐在垫子上"]
    refs = [["我们提出一种快速的新方法。"], ["猫在垫子上睡觉", "一只猫"]]
    check_per_document(hyps, refs, MetricConfig(cjk=True))
    plain = score_corpus(hyps, refs)
    cjk = score_corpus(hyps, refs, config=MetricConfig(cjk=True))
    assert plain.metrics["rouge1"] == 0.0  # rouge-score drops non-ASCII letters
    assert cjk.metrics["rouge1"] > 30
    assert "tok:zh" in cjk.signatures["bleu"] and "cjk" in cjk.signatures["rouge"]


def test_golden_values_traced_to_the_libraries() -> None:
    # sacrebleu test/test_sentence_bleu.py, issue #98 pair: sentence BLEU (exp) 8.493.
    ref = "producţia de zahăr brut se exprimă în zahăr alb;"
    hyp = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"
    row = score_corpus([hyp], [ref], metrics=["bleu"], per_document=True).per_document[0]
    assert abs(row["bleu"] - 8.493) < 1e-3
    # rouge-score rouge_scorer_test.py: "testing one" vs "testing one two": R-1 F 4/5,
    # R-2 F 2/3, R-L F 4/5.
    scores = score_corpus(["testing one"], [["testing one two"]], metrics=ROUGE)
    assert scores.metrics["rouge1"] == pytest.approx(80.0)
    assert scores.metrics["rouge2"] == pytest.approx(200 / 3)
    assert scores.metrics["rougeL"] == pytest.approx(80.0)


def test_variable_references_and_streams() -> None:
    streams = reference_streams([tuple(r) for r in TOY_REFS])
    assert len(streams) == 3 and streams[1] == [
        "The cat sat on a mat and was happy.",
        None,
        None,
        "testing",
    ]
    scores = score_corpus(TOY_HYPS, TOY_REFS, metrics=["bleu", "chrf"])
    assert scores.metrics_max_ref["bleu"] == BLEU().corpus_score(TOY_HYPS, streams).score
    assert scores.metrics["chrf"] == CHRF().corpus_score(TOY_HYPS, [[r[0] for r in TOY_REFS]]).score
    # A single string is one reference.
    single = score_corpus(TOY_HYPS, [r[0] for r in TOY_REFS])
    assert single.metrics == score_corpus(TOY_HYPS, [r[:1] for r in TOY_REFS]).metrics


def test_max_ref_selection_by_rouge1_uses_one_reference_per_document() -> None:
    hyp = ["alpha beta gamma delta"]
    refs = [["alpha beta gamma zeta", "alpha gamma beta delta"]]
    # Reference 2 has all four unigrams (best R-1) but none of the bigrams; reference 1 has
    # three unigrams and two of the three bigrams (best R-2).
    per_metric = score_corpus(hyp, refs, metrics=ROUGE[:3]).metrics_max_ref
    by_r1 = score_corpus(hyp, refs, metrics=ROUGE[:3], max_ref="rouge1").metrics_max_ref
    assert per_metric["rouge1"] == by_r1["rouge1"] == 100.0
    assert by_r1["rouge2"] == 0.0
    assert per_metric["rouge2"] == pytest.approx(200 / 3)


def test_empty_predictions_score_zero_and_are_counted() -> None:
    scores = score_corpus(["", "   ", "a cat"], ["a cat", "a dog", "a cat"], per_document=True)
    assert scores.n_empty_hypotheses == 2
    assert scores.to_dict()["n_empty_predictions"] == 2
    for row in scores.per_document[:2]:
        assert all(row[m] == 0.0 for m in ROUGE) and row["bleu"] == 0.0
    assert scores.per_document[2]["rouge1"] == 100.0


def test_metric_subsets() -> None:
    only_bleu = score_corpus(TOY_HYPS, TOY_REFS, metrics=["bleu"], bootstrap=20)
    assert list(only_bleu.metrics) == ["bleu"] and "rouge" not in only_bleu.signatures
    only_lsum = score_corpus(TOY_HYPS, TOY_REFS, metrics=["rougeLsum"], per_document=True)
    assert list(only_lsum.metrics) == ["rougeLsum"]
    full = score_corpus(TOY_HYPS, TOY_REFS)
    assert only_lsum.metrics["rougeLsum"] == full.metrics["rougeLsum"]


def test_to_dict_and_markdown() -> None:
    scores = score_corpus(TOY_HYPS, TOY_REFS, bootstrap=50)
    d = scores.to_dict()
    assert {
        "metrics",
        "metrics_max_ref",
        "signatures",
        "n_documents",
        "n_empty_predictions",
        "confidence",
    } <= set(d)
    json.dumps(d)
    md = scores.to_markdown()
    assert "| ROUGE-Lsum |" in md and "bootstrap" in md and "nrefs:var" in md


# ------------------------------------------------------------------------------ bootstrap
def test_bootstrap_ci_contains_estimate_and_is_seeded(scitldr) -> None:
    hyps, refs = lead1(scitldr[:150])
    a = score_corpus(hyps, refs, bootstrap=300, seed=7)
    for key, values in (("metrics", a.metrics), ("metrics_max_ref", a.metrics_max_ref)):
        for m, v in values.items():
            low, high = a.confidence[key][m]
            assert low < v < high, (key, m)
    assert score_corpus(hyps, refs, bootstrap=300, seed=7).confidence == a.confidence
    assert score_corpus(hyps, refs, bootstrap=300, seed=8).confidence != a.confidence
    assert "bs:300|seed:7" in a.signatures["bleu"]


def test_bleu_bootstrap_reuses_sacrebleu_resampling(monkeypatch) -> None:
    """With sacrebleu's seed, the BLEU resamples are exactly sacrebleu's own."""
    from sacrebleu.significance import _bootstrap_resample

    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    hyps, refs = TOY_HYPS * 5, TOY_REFS * 5
    scorer = CorpusScorer(["bleu"])
    h, r = normalize_inputs(hyps, refs)
    scored = scorer._score_documents(h, r)
    from textrl.scoring.corpus import _resample_indices

    ours = scorer._resampled(scored, _resample_indices(len(h), 200, 12345))
    metric = BLEU()
    stats = metric._extract_corpus_statistics(hyps, reference_streams(r))
    _, theirs = _bootstrap_resample(stats, metric, 200)
    assert list(ours["metrics_max_ref"]["bleu"]) == [s.score for s in theirs]


def test_paired_comparison_on_a_clearly_better_system(scitldr) -> None:
    rows = scitldr[:200]
    oracle = [r["source"][r["source_labels"].index(1)] for r in rows]
    last = [r["source"][-1] for r in rows]
    refs = [r["target"] for r in rows]
    cmp = paired_comparison(last, oracle, refs, n_samples=300)
    for block in (cmp.metrics, cmp.metrics_max_ref):
        for m, c in block.items():
            assert c.difference == c.b - c.a > 0, m
            assert c.ci[0] > 0 and c.p_value < 0.01, m
    reverse = paired_comparison(oracle, last, refs, n_samples=300)
    assert reverse.metrics["rouge1"].difference < 0 and reverse.metrics["rouge1"].ci[1] < 0
    json.dumps(cmp.to_dict())


def test_paired_bleu_p_value_equals_sacrebleu(scitldr) -> None:
    from sacrebleu.significance import Result, _paired_bs_test

    rows = scitldr[:120]
    a = [r["source"][0] for r in rows]
    b = [r["source"][1] if len(r["source"]) > 1 else "" for r in rows]
    refs = [[r["target"][0]] for r in rows]
    ours = paired_comparison(a, b, refs, metrics=["bleu", "chrf"], n_samples=200, seed=3)
    for name, cls in (("bleu", BLEU), ("chrf", CHRF)):
        metric = cls()
        streams = [[r[0] for r in refs]]
        bl_stats = metric._extract_corpus_statistics(a, streams)
        bl = Result(metric._aggregate_and_compute(bl_stats).score)
        _, res = _paired_bs_test(
            {name: (bl_stats, bl)}, "b", b, streams, {name: metric}, n_samples=200, seed=3
        )
        assert ours.metrics[name].p_value == res[name].p_value
        assert ours.metrics[name].b == res[name].score


def test_paired_comparison_toy_is_offline() -> None:
    refs = [["the quick brown fox jumps over the lazy dog"], ["a b c d e f"]] * 10
    good = [r[0] for r in refs]
    bad = ["nothing in common here", "z y x"] * 10
    cmp = paired_comparison(bad, good, refs, n_samples=100, seed=1)
    assert all(c.difference > 0 for c in cmp.metrics.values())


# --------------------------------------------------------------------------------- errors
def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"one entry per hypothesis \(2\), got 3"):
        score_corpus(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="sacrebleu-style reference streams"):
        score_corpus(["a", "b", "c"], [["a", "b", "c"], ["x", "y", "z"]])
    with pytest.raises(TypeError, match=r"document 1: hypothesis: expected str"):
        score_corpus(["a", None], ["a", "b"])
    with pytest.raises(TypeError, match="document 0: references"):
        score_corpus(["a"], [[]])
    with pytest.raises(ValueError, match="at least one hypothesis"):
        score_corpus([], [])
    with pytest.raises(TypeError, match="expected a list of strings"):
        score_corpus("a cat", ["a cat"])
    with pytest.raises(ValueError, match="unknown \\['meteor'\\]"):
        score_corpus(["a"], ["a"], metrics=["meteor"])
    with pytest.raises(ValueError, match="must include 'rouge1'"):
        score_corpus(["a"], ["a"], metrics=["rouge2"], max_ref="rouge1")
    with pytest.raises(ValueError, match="max_ref"):
        score_corpus(["a"], ["a"], max_ref="best")
    with pytest.raises(ValueError, match="bootstrap: expected an integer >= 0, got -1"):
        score_corpus(["a"], ["a"], bootstrap=-1)
    with pytest.raises(ValueError, match="n_samples"):
        paired_comparison(["a"], ["a"], ["a"], n_samples=0)


def test_scores_are_finite_and_scaled() -> None:
    scores = score_corpus(TOY_HYPS, TOY_REFS)
    for values in (scores.metrics, scores.metrics_max_ref):
        assert all(math.isfinite(v) and 0 <= v <= 100 for v in values.values())
