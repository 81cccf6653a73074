"""Scoring text against references with sacrebleu's and rouge-score's own numbers. No torch.

- :mod:`~textrl.scoring.sentence`: one hypothesis against its references by the libraries
  themselves (:class:`SentenceScorer`, :class:`MetricConfig`); the single source of truth.
- :mod:`~textrl.scoring.incremental`: the same values updated token by token, bit-identical and
  cheap (:class:`IncrementalScorer`): the environment's dense rewards.
- :mod:`~textrl.scoring.reward`: the reward as a weighted sum of metrics (:class:`RewardSpec`).
- :mod:`~textrl.scoring.corpus`: corpus BLEU/chrF/ROUGE under both reference protocols,
  bootstrap intervals and paired tests (:func:`score_corpus`, :func:`paired_comparison`),
  returning :mod:`~textrl.scoring.results` (:class:`CorpusScores`, :class:`PairedComparison`).
- :mod:`~textrl.scoring.library`: every private sacrebleu/rouge-score call, fenced in one place.
"""

from textrl.scoring.corpus import CORPUS_METRICS, CorpusScorer, paired_comparison, score_corpus
from textrl.scoring.incremental import IncrementalScorer
from textrl.scoring.results import CorpusScores, PairedComparison
from textrl.scoring.reward import RewardSpec
from textrl.scoring.sentence import METRICS, MetricConfig, SentenceScorer, split_sentences

__all__ = [
    "CORPUS_METRICS",
    "METRICS",
    "CorpusScorer",
    "CorpusScores",
    "IncrementalScorer",
    "MetricConfig",
    "PairedComparison",
    "RewardSpec",
    "SentenceScorer",
    "paired_comparison",
    "score_corpus",
    "split_sentences",
]
