"""Corpus-level scoring of generations against references: the one scoring layer of textrl.

:func:`score_corpus` takes hypotheses and, for each, one or more references, and returns
:class:`CorpusScores` with the numbers of the reference libraries themselves (all x100):

- ``bleu``: sacrebleu corpus BLEU (``sacrebleu.metrics.BLEU()`` defaults: 13a tokenizer, or
  ``zh`` under ``MetricConfig(cjk=True)``; exp smoothing; no effective order), with its signature.
- ``chrf``: sacrebleu corpus chrF (``CHRF()`` defaults: chrF2, character 6-grams).
- ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum``: rouge-score F1, mean over documents
  (stemming on by default). ROUGE-Lsum sees one sentence per line on both sides, as ROUGE-1.5.5
  intends: :func:`textrl.scoring.sentence.split_sentences` breaks at existing newlines, after
  ``.``/``!``/
  ``?`` followed by white space and after the CJK full stops ``。！？``
  (``MetricConfig(lsum_split="newline")`` keeps the text's own newlines only).

Two protocols, each a dict of the metrics above:

- ``metrics``: against the first reference of each document (SciTLDR's "author" protocol).
- ``metrics_max_ref``: ROUGE against the best reference per document (SciTLDR's "multi-max").
  ``max_ref="per_metric"`` (default) picks it per metric by F1, exactly as rouge-score's
  ``RougeScorer.score_multi`` (first reference on ties); ``max_ref="rouge1"`` picks one reference
  per document by ROUGE-1 F1 and reports all ROUGE metrics on it, as the SciTLDR release does
  (its README's multi-max baselines). Corpus BLEU and chrF have no "best reference": they use all
  references natively (clipped n-gram counts over every reference; BLEU takes the closest
  reference length), so their ``metrics_max_ref`` value is the corpus score with all references.

Per-document rows (``per_document=True``) hold the same metrics per document, also x100: ROUGE
equal to ``100 * SentenceScorer(...).score(hyp, refs)`` (``_max_ref``) and of ``.score(hyp,
[refs[0]])``; BLEU and chrF are sacrebleu's sentence scores (BLEU with effective order, as
:class:`textrl.scoring.sentence.SentenceScorer`), computed from the same statistics as the corpus
score.

Uncertainty: ``bootstrap=N`` adds 95% percentile-bootstrap confidence intervals (rouge-score's
``BootstrapAggregator`` method, ROUGE-1.5.5's): BLEU and chrF are recomputed from resampled
sufficient statistics exactly as sacrebleu's ``significance._bootstrap_resample`` does, with the
same seeded indices for every metric. rouge-score's aggregator draws from numpy's global
generator, so the percentile step is done here with a seeded one. :func:`paired_comparison` is
sacrebleu's paired bootstrap test (Koehn 2004, Moses' ``bootstrap-hypothesis-difference-
significance.pl``) for all metrics; its BLEU/chrF p-values equal sacrebleu's ``_paired_bs_test``.
The default seed is sacrebleu's (``SACREBLEU_SEED`` 12345).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textrl.scoring import library
from textrl.scoring.results import CorpusScores, MetricComparison, PairedComparison
from textrl.scoring.sentence import MetricConfig, check_pair, lsum_text, rouge_tokenize_fn

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SACREBLEU_METRICS = ("bleu", "chrf")
CORPUS_METRICS = (*SACREBLEU_METRICS, *ROUGE_TYPES)
MAX_REF_SELECTIONS = ("per_metric", "rouge1")
DEFAULT_SEED = 12345
"""sacrebleu's default bootstrap seed (``SACREBLEU_SEED``), so BLEU intervals match its CLI."""


class _MemoTokenizer:
    """rouge-score's tokenization (``metrics.rouge_tokenize_fn``) with a bounded memo, so a
    hypothesis is tokenized once for all its references, and references once for all systems."""

    def __init__(self, config: MetricConfig, maxsize: int = 1 << 17) -> None:
        tokenize = rouge_tokenize_fn(config)
        self.tokenize = functools.lru_cache(maxsize=maxsize)(lambda text: tuple(tokenize(text)))


@dataclass
class _Scored:
    """Per-document raw scores of one system: ROUGE F1 in [0, 1], sacrebleu statistics."""

    rouge_first: np.ndarray  # (N, R)
    rouge_best: np.ndarray  # (N, R)
    stats: dict[str, list[list[float]]]  # "bleu", "bleu_max_ref", ... -> per-document stats
    n_empty: int


class CorpusScorer:
    """Scores whole corpora; holds the library scorers and the tokenization memo.

    ``metrics`` is a subset of :data:`CORPUS_METRICS`; ``max_ref`` one of
    :data:`MAX_REF_SELECTIONS`. Reuse one instance (or :func:`score_corpus`, which caches them)
    to keep the reference tokenization across calls.
    """

    def __init__(
        self,
        metrics: Sequence[str] = CORPUS_METRICS,
        config: MetricConfig | None = None,
        max_ref: str = "per_metric",
    ) -> None:
        if isinstance(metrics, str):
            metrics = (metrics,)
        unknown = [m for m in metrics if m not in CORPUS_METRICS]
        if unknown or not metrics:
            raise ValueError(
                f"metrics: unknown {unknown or list(metrics)!r}; expected some of "
                f"{list(CORPUS_METRICS)}"
            )
        if max_ref not in MAX_REF_SELECTIONS:
            raise ValueError(
                f"max_ref: expected one of {list(MAX_REF_SELECTIONS)}, got {max_ref!r}"
            )
        self.metrics = tuple(m for m in CORPUS_METRICS if m in metrics)
        self.config = config or MetricConfig()
        self.max_ref = max_ref
        self.rouge_types = tuple(m for m in ROUGE_TYPES if m in self.metrics)
        if max_ref == "rouge1" and self.rouge_types and "rouge1" not in self.rouge_types:
            raise ValueError(
                "max_ref: 'rouge1' chooses the best reference by ROUGE-1, so "
                f"metrics must include 'rouge1'; got {list(self.metrics)}"
            )
        from rouge_score import rouge_scorer
        from sacrebleu.metrics import BLEU, CHRF

        self._tokenizer = _MemoTokenizer(self.config)
        plain = [t for t in self.rouge_types if t != "rougeLsum"]
        self._rouge = rouge_scorer.RougeScorer(plain, tokenizer=self._tokenizer) if plain else None
        self._lsum = (
            rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=self._tokenizer)
            if "rougeLsum" in self.rouge_types
            else None
        )
        tok = "zh" if self.config.cjk else "13a"
        # One sacrebleu object per protocol (its signature records the number of references);
        # the sentence BLEU object only turns statistics into per-document scores.
        self._sacre = {}
        if "bleu" in self.metrics:
            self._sacre["bleu"] = BLEU(tokenize=tok)
            self._sacre["bleu_max_ref"] = BLEU(tokenize=tok)
            self._bleu_sentence = BLEU(tokenize=tok, effective_order=True)
        if "chrf" in self.metrics:
            self._sacre["chrf"] = CHRF()
            self._sacre["chrf_max_ref"] = CHRF()

    # ----------------------------------------------------------------------------- public API
    def score(
        self,
        hypotheses: Sequence[str],
        references: Sequence[str | Sequence[str]],
        *,
        per_document: bool = False,
        bootstrap: int = 0,
        seed: int | None = DEFAULT_SEED,
    ) -> CorpusScores:
        """Score ``hypotheses`` against ``references`` (one entry per hypothesis: a string or a
        list of strings; the numbers may vary per document)."""
        _check_samples("bootstrap", bootstrap, allow_zero=True)
        hyps, refs = normalize_inputs(hypotheses, references)
        scored = self._score_documents(hyps, refs)
        first, best = self._corpus_values(scored)
        result = CorpusScores(
            metrics=first,
            metrics_max_ref=best,
            signatures=self._signatures(bootstrap, seed),
            n_documents=len(hyps),
            n_references=sum(len(r) for r in refs),
            n_empty_hypotheses=scored.n_empty,
            max_ref=self.max_ref,
        )
        if per_document:
            result.per_document = self._document_rows(scored, hyps, refs)
        if bootstrap:
            idx = _resample_indices(len(hyps), bootstrap, seed)
            samples = self._resampled(scored, idx)
            result.confidence = {
                key: {
                    m: [float(x) for x in np.percentile(samples[key][m], [2.5, 97.5])]
                    for m in self.metrics
                }
                for key in ("metrics", "metrics_max_ref")
            }
            result.confidence.update(level=0.95, n_samples=bootstrap, seed=seed)
        return result

    def compare(
        self,
        hypotheses_a: Sequence[str],
        hypotheses_b: Sequence[str],
        references: Sequence[str | Sequence[str]],
        *,
        n_samples: int = 1000,
        seed: int | None = DEFAULT_SEED,
    ) -> PairedComparison:
        """Paired bootstrap comparison of system B against system A (see the module docstring).

        Both systems are resampled with the same seeded document indices; for each metric the
        p-value is sacrebleu's: the share of resamples whose centred ``|b - a|`` exceeds the
        observed one (with +1 smoothing).
        """
        _check_samples("n_samples", n_samples, allow_zero=False)
        hyps_a, refs = normalize_inputs(hypotheses_a, references, name="hypotheses_a")
        hyps_b, _ = normalize_inputs(hypotheses_b, references, name="hypotheses_b")
        scored_a, scored_b = (
            self._score_documents(hyps_a, refs),
            self._score_documents(hyps_b, refs),
        )
        point_a, point_b = self._corpus_values(scored_a), self._corpus_values(scored_b)
        idx = _resample_indices(len(refs), n_samples, seed)
        samples_a, samples_b = self._resampled(scored_a, idx), self._resampled(scored_b, idx)
        blocks: list[dict[str, MetricComparison]] = []
        for k, key in enumerate(("metrics", "metrics_max_ref")):
            block = {}
            for m in self.metrics:
                a, b = point_a[k][m], point_b[k][m]
                sa, sb = samples_a[key][m], samples_b[key][m]
                sample_diffs = np.abs(sb - sa)
                p = library.paired_p_value(sample_diffs - sample_diffs.mean(), abs(a - b))
                low, high = np.percentile(sb - sa, [2.5, 97.5])
                block[m] = MetricComparison(a, b, b - a, (float(low), float(high)), float(p))
            blocks.append(block)
        return PairedComparison(
            blocks[0], blocks[1], len(refs), n_samples, seed, self._signatures(n_samples, seed)
        )

    # ------------------------------------------------------------------------------- internals
    def _score_documents(self, hyps: list[str], refs: list[tuple[str, ...]]) -> _Scored:
        n, r = len(hyps), len(self.rouge_types)
        first, best = np.zeros((n, r)), np.zeros((n, r))
        if r:
            by_rouge1 = self.max_ref == "rouge1"
            plain_types = [t for t in self.rouge_types if t != "rougeLsum"]
            for i, (hyp, doc_refs) in enumerate(zip(hyps, refs)):
                per_ref = []  # one row of F1 per reference, in self.rouge_types order
                hyp_lsum = lsum_text(hyp, self.config) if self._lsum is not None else ""
                for ref in doc_refs:
                    row = []
                    if self._rouge is not None:
                        scores = self._rouge.score(ref, hyp)  # rouge-score: target first
                        row += [scores[t].fmeasure for t in plain_types]
                    if self._lsum is not None:
                        row.append(
                            self._lsum.score(lsum_text(ref, self.config), hyp_lsum)[
                                "rougeLsum"
                            ].fmeasure
                        )
                    per_ref.append(row)
                first[i] = per_ref[0]
                if by_rouge1:
                    best[i] = per_ref[_argmax([row[0] for row in per_ref])]
                else:  # RougeScorer.score_multi: per type, the first reference with max F1
                    best[i] = [per_ref[_argmax([row[j] for row in per_ref])][j] for j in range(r)]
        stats = {}
        if self._sacre:
            first_stream = [[doc_refs[0] for doc_refs in refs]]
            all_streams = reference_streams(refs)
            for key, metric in self._sacre.items():
                streams = all_streams if key.endswith("_max_ref") else first_stream
                stats[key] = library.corpus_statistics(metric, hyps, streams)
        return _Scored(first, best, stats, sum(1 for h in hyps if not h.strip()))

    def _corpus_values(self, scored: _Scored) -> tuple[dict[str, float], dict[str, float]]:
        first: dict[str, float] = {}
        best: dict[str, float] = {}
        for out, suffix, rouge in (
            (first, "", scored.rouge_first),
            (best, "_max_ref", scored.rouge_best),
        ):
            for m in self.metrics:
                if m in SACREBLEU_METRICS:
                    key = m + suffix
                    out[m] = library.aggregate_score(self._sacre[key], scored.stats[key])
                else:
                    out[m] = 100 * float(np.mean(rouge[:, self.rouge_types.index(m)]))
        return first, best

    def _resampled(self, scored: _Scored, idx: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Corpus scores (x100) of every resample: ``{"metrics": {m: (B,)}, ...}``."""
        out: dict[str, dict[str, np.ndarray]] = {"metrics": {}, "metrics_max_ref": {}}
        for key, suffix, rouge in (
            ("metrics", "", scored.rouge_first),
            ("metrics_max_ref", "_max_ref", scored.rouge_best),
        ):
            if self.rouge_types:
                means = _resampled_means(rouge, idx)
                for j, m in enumerate(self.rouge_types):
                    out[key][m] = 100 * means[:, j]
            for m in SACREBLEU_METRICS:
                if m in self.metrics:
                    metric = self._sacre[m + suffix]
                    # As sacrebleu.significance._bootstrap_resample: float32 stats, summed.
                    stats = np.array(scored.stats[m + suffix], dtype="float32")
                    out[key][m] = np.array(
                        [library.score_from_statistics(metric, stats[s].sum(0)) for s in idx]
                    )
        return out

    def _document_rows(
        self, scored: _Scored, hyps: list[str], refs: list[tuple[str, ...]]
    ) -> list[dict[str, Any]]:
        rows = []
        for i, doc_refs in enumerate(refs):
            row: dict[str, Any] = {
                "index": i,
                "n_references": len(doc_refs),
                "empty_prediction": not hyps[i].strip(),
            }
            for suffix, rouge in (("", scored.rouge_first), ("_max_ref", scored.rouge_best)):
                for m in self.metrics:
                    if m == "bleu":
                        stats = scored.stats["bleu" + suffix][i]
                        value = library.score_from_statistics(self._bleu_sentence, stats)
                    elif m == "chrf":
                        stats = scored.stats["chrf" + suffix][i]
                        value = library.score_from_statistics(self._sacre["chrf" + suffix], stats)
                    else:
                        value = 100 * float(rouge[i, self.rouge_types.index(m)])
                    row[m + suffix] = float(value)
            rows.append(row)
        return rows

    def _signatures(self, n_bootstrap: int, seed: int | None) -> dict[str, str]:
        out = {}
        for key, metric in self._sacre.items():
            # Record resampling as sacrebleu's own corpus_score(n_bootstrap=...) would.
            metric.n_bootstrap = n_bootstrap if n_bootstrap > 1 else None
            metric.seed = str(seed).lower() if n_bootstrap > 1 else None
            out[key] = str(metric.get_signature())
        if self.rouge_types:
            out["rouge"] = f"{self.config.signature()}|max_ref:{self.max_ref}|mean_f1_x100"
        return out


@functools.lru_cache(maxsize=8)
def _cached_scorer(metrics: tuple[str, ...], config: MetricConfig, max_ref: str) -> CorpusScorer:
    return CorpusScorer(metrics, config, max_ref)


def score_corpus(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    metrics: Sequence[str] = CORPUS_METRICS,
    config: MetricConfig | None = None,
    max_ref: str = "per_metric",
    per_document: bool = False,
    bootstrap: int = 0,
    seed: int | None = DEFAULT_SEED,
) -> CorpusScores:
    """Corpus BLEU/chrF/ROUGE of ``hypotheses`` against ``references``, both protocols (x100).

    ``references[i]`` is the reference (a string) or the references (a list of strings) of
    ``hypotheses[i]`` — one entry per document, not sacrebleu's reference streams.
    ``bootstrap=N`` adds 95% confidence intervals from ``N`` seeded resamples.
    """
    scorer = _cached_scorer(_metric_tuple(metrics), config or MetricConfig(), max_ref)
    return scorer.score(
        hypotheses, references, per_document=per_document, bootstrap=bootstrap, seed=seed
    )


def paired_comparison(
    hypotheses_a: Sequence[str],
    hypotheses_b: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    metrics: Sequence[str] = CORPUS_METRICS,
    config: MetricConfig | None = None,
    max_ref: str = "per_metric",
    n_samples: int = 1000,
    seed: int | None = DEFAULT_SEED,
) -> PairedComparison:
    """Paired bootstrap test of system B against system A on the same references: per metric
    and protocol, both scores, ``b - a``, its 95% interval and sacrebleu's p-value."""
    scorer = _cached_scorer(_metric_tuple(metrics), config or MetricConfig(), max_ref)
    return scorer.compare(hypotheses_a, hypotheses_b, references, n_samples=n_samples, seed=seed)


def normalize_inputs(
    hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], name: str = "hypotheses"
) -> tuple[list[str], list[tuple[str, ...]]]:
    """Check the inputs and return ``(hypotheses, references as a tuple per document)``."""
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise TypeError(f"{name}: expected a list of strings, got {type(hypotheses).__name__}")
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(
            f"references: expected a list with one entry per hypothesis, "
            f"got {type(references).__name__}"
        )
    if not hypotheses:
        raise ValueError(f"{name}: expected at least one hypothesis, got an empty list")
    if len(references) != len(hypotheses):
        hint = ""
        if references and all(
            not isinstance(s, str) and isinstance(s, Sequence) and len(s) == len(hypotheses)
            for s in references
        ):
            hint = (
                "; this looks like sacrebleu-style reference streams: pass one list of "
                "references per document instead"
            )
        raise ValueError(
            f"references: expected one entry per hypothesis ({len(hypotheses)}), "
            f"got {len(references)}{hint}"
        )
    refs = []
    for i, (hyp, entry) in enumerate(zip(hypotheses, references)):
        doc_refs = (entry,) if isinstance(entry, str) else entry
        try:
            check_pair(hyp, doc_refs)
        except TypeError as exc:
            raise TypeError(f"document {i}: {exc}") from None
        refs.append(tuple(doc_refs))
    return list(hypotheses), refs


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's reference layout: stream ``j`` holds the ``j``-th reference of every
    document, ``None`` where a document has fewer (sacrebleu's variable-reference convention)."""
    n = max(len(r) for r in references)
    return [[r[j] if j < len(r) else None for r in references] for j in range(n)]


def _metric_tuple(metrics: Sequence[str]) -> tuple[str, ...]:
    return (metrics,) if isinstance(metrics, str) else tuple(metrics)


def _argmax(values: list[float]) -> int:
    """Index of the first maximum (``np.argmax``'s tie rule, without numpy's call overhead)."""
    return max(range(len(values)), key=values.__getitem__)


def _check_samples(name: str, value: int, allow_zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise ValueError(f"{name}: expected an integer >= {0 if allow_zero else 1}, got {value!r}")


def _resample_indices(n: int, n_samples: int, seed: int | None) -> np.ndarray:
    """Bootstrap document indices, drawn exactly as sacrebleu's ``_bootstrap_resample``."""
    rng = np.random.default_rng(seed)
    return rng.choice(n, size=(n_samples, n), replace=True)


def _resampled_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Column means of ``values`` (N, R) over each row of resample indices ``idx`` (B, N)."""
    out = np.empty((idx.shape[0], values.shape[1]))
    chunk = max(1, (1 << 22) // max(1, values.size))
    for start in range(0, idx.shape[0], chunk):
        out[start : start + chunk] = values[idx[start : start + chunk]].mean(axis=1)
    return out
