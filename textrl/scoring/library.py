"""The one place textrl calls private parts of sacrebleu and rouge-score.

textrl reproduces the libraries' numbers exactly, which sometimes needs their internals: corpus
statistics that can be resampled, a score from summed statistics, the reference information of
sentence BLEU, rouge-score's summary-level LCS and its stemmer. Every such call is a function
here, named for what it does and pinned to the versions ``pyproject.toml`` allows
(sacrebleu >= 2.3, < 3; rouge-score == 0.1.2). When a release moves one of them, this module is
the only one to change; the exactness tests (``tests/test_rewards.py``,
``tests/test_scoring.py``) say at once whether it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "bleu_preprocess",
    "bleu_reference_info",
    "corpus_statistics",
    "paired_p_value",
    "rouge_stemmer",
    "score_from_statistics",
    "summary_level_lcs_f1",
]


def corpus_statistics(
    metric: Any, hypotheses: Sequence[str], reference_streams: Sequence[Sequence[str | None]]
) -> list[list[float]]:
    """Per-document sufficient statistics of a sacrebleu ``BLEU``/``CHRF`` (its own tokenizer,
    n-gram counts and reference handling), which can be summed over any subset of documents."""
    return metric._extract_corpus_statistics(hypotheses, reference_streams)


def aggregate_score(metric: Any, statistics: Sequence[Sequence[float]]) -> float:
    """The corpus score of per-document ``statistics``, as ``metric.corpus_score`` computes it."""
    return float(metric._aggregate_and_compute(statistics).score)


def score_from_statistics(metric: Any, statistics: Any) -> float:
    """The score of one (summed) statistics vector: sacrebleu's bootstrap and sentence scores."""
    return float(metric._compute_score_from_stats(statistics).score)


def paired_p_value(centred_differences: Any, observed_difference: float) -> float:
    """sacrebleu's paired-bootstrap p-value (``significance._compute_p_value``)."""
    from sacrebleu.significance import _compute_p_value

    return float(_compute_p_value(centred_differences, observed_difference))


def bleu_preprocess(bleu: Any, text: str) -> str:
    """The tokenized text sentence BLEU scores (``BLEU._preprocess_segment``)."""
    return bleu._preprocess_segment(text)


def bleu_reference_info(bleu: Any, references: Sequence[str]) -> dict[str, Any]:
    """Reference lengths and merged (max-count) reference n-grams of sentence BLEU."""
    return bleu._extract_reference_info([bleu._preprocess_segment(r) for r in references])


def summary_level_lcs_f1(
    reference_sentences: list[list[str]], hypothesis_sentences: list[list[str]]
) -> float:
    """rouge-score's ROUGE-Lsum F1 on tokenized sentences (``_summary_level_lcs``)."""
    from rouge_score import rouge_scorer

    return float(
        rouge_scorer._summary_level_lcs(reference_sentences, hypothesis_sentences).fmeasure
    )


def rouge_stemmer(tokenizer: Any) -> Callable[[str], str] | None:
    """The stem function a rouge-score ``DefaultTokenizer`` (or ours) applies, or ``None``."""
    stemmer = getattr(tokenizer, "_stemmer", None)
    return None if stemmer is None else stemmer.stem
