"""Sentence-level BLEU and ROUGE computed by the reference libraries themselves.

This is the single source of truth for metric values: the environment's end-of-episode scores,
the exactness tests of the incremental rewards and the corpus-level scoring layer all call it.

Semantics (hypothesis first everywhere; rouge-score's target-first order is hidden here):

- ``rouge1``, ``rouge2``, ``rougeL``: F1 from ``rouge_score.rouge_scorer.RougeScorer``
  (stemming on by default) via ``score_multi``: with several references, the best reference
  per metric by F1.
- ``rougeLsum``: the same scorer on sentence-split text, one sentence per line on both sides, as
  ROUGE-1.5.5 intends (:func:`split_sentences`); ``lsum_split="newline"`` keeps the text's own
  newlines only (then, for one-line text, ROUGE-Lsum equals ROUGE-L).
- ``bleu``: ``sacrebleu.BLEU(effective_order=True).sentence_score(hyp, refs).score`` (0-100;
  13a tokenizer, exp smoothing, all references at once, closest reference length).

rouge-score keeps only ``[a-z0-9]`` (accented letters split words, Chinese scores 0). That
library-exact behaviour is the default. ``cjk=True`` is an opt-in for Chinese/Japanese/Korean:
each CJK character is a ROUGE token (other text is tokenized exactly as rouge-score does) and
BLEU uses sacrebleu's ``zh`` tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textrl.scoring import library

ROUGE_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
METRICS = (*ROUGE_METRICS, "bleu")

# CJK Unified Ideographs (+ extension A, compatibility), Hiragana, Katakana, Hangul syllables.
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_TOKEN_RE = re.compile(f"[a-z0-9]+|[{CJK_CHARS}]")
_SENTENCE_BREAK_RE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences for ROUGE-Lsum: at existing newlines, after ``.``/``!``/``?``
    followed by white space, and after the CJK full stops ``。！？``. Empty pieces are dropped.

    A deliberately simple, dependency-free rule (nltk's punkt needs a download): abbreviations
    such as ``e.g. x`` are split, which rarely moves ROUGE-Lsum.
    """
    return [s.strip() for s in _SENTENCE_BREAK_RE.split(text) if s.strip()]


@dataclass(frozen=True)
class MetricConfig:
    """Settings that change metric values; recorded in every signature."""

    use_stemmer: bool = True
    """Porter-stem ROUGE tokens longer than 3 characters (rouge-score ``use_stemmer``)."""
    cjk: bool = False
    """Opt-in: CJK characters as ROUGE tokens and sacrebleu's ``zh`` BLEU tokenizer."""
    lsum_split: str = "sentences"
    """ROUGE-Lsum sentence boundaries: ``sentences`` (:func:`split_sentences`) or ``newline``."""

    def __post_init__(self) -> None:
        if self.lsum_split not in ("sentences", "newline"):
            raise ValueError(
                f"MetricConfig.lsum_split: expected 'sentences' or 'newline', "
                f"got {self.lsum_split!r}"
            )

    def signature(self) -> str:
        import rouge_score  # noqa: F401
        import sacrebleu

        stem = "stem" if self.use_stemmer else "nostem"
        tok = "zh" if self.cjk else "13a"
        return (
            f"rouge-score=0.1.2|{stem}|{'cjk' if self.cjk else 'ascii'}|lsum:{self.lsum_split}"
            f"|sacrebleu={sacrebleu.__version__}|tok:{tok}|smooth:exp|effective_order"
        )


class CJKRougeTokenizer:
    """rouge-score's tokenization for ASCII text, plus one token per CJK character."""

    def __init__(self, use_stemmer: bool) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _CJK_TOKEN_RE.findall(text.lower())
        if self._stemmer is not None:
            stem = self._stemmer.stem
            tokens = [stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]
        return [t for t in tokens if t]


def lsum_text(text: str, config: MetricConfig) -> str:
    """The text ROUGE-Lsum sees: one sentence per line under the config's split rule."""
    if config.lsum_split == "newline":
        return text
    return "\n".join(split_sentences(text))


class SentenceScorer:
    """Scores one hypothesis against its references with the reference libraries.

    ``score`` returns ``{metric: value}``: ROUGE F1 in [0, 1], BLEU in sacrebleu's 0-100 scale.
    """

    def __init__(
        self, metrics: Sequence[str] = METRICS, config: MetricConfig | None = None
    ) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"metrics: unknown {unknown or metrics!r}; expected some of {METRICS}")
        from rouge_score import rouge_scorer
        from sacrebleu.metrics import BLEU

        self.metrics = tuple(metrics)
        self.config = config or MetricConfig()
        self.rouge_tokenizer = make_rouge_tokenizer(self.config)
        plain = [m for m in self.metrics if m in ("rouge1", "rouge2", "rougeL")]
        self._rouge = (
            rouge_scorer.RougeScorer(plain, tokenizer=self.rouge_tokenizer) if plain else None
        )
        self._lsum = (
            rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=self.rouge_tokenizer)
            if "rougeLsum" in self.metrics
            else None
        )
        self.bleu = (
            BLEU(effective_order=True, tokenize="zh" if self.config.cjk else "13a")
            if "bleu" in self.metrics
            else None
        )

    def signature(self) -> str:
        return f"{'+'.join(self.metrics)}|{self.config.signature()}"

    def score(self, hypothesis: str, references: Sequence[str]) -> dict[str, float]:
        check_pair(hypothesis, references)
        out: dict[str, float] = {}
        if self._rouge is not None:
            for name, s in self._rouge.score_multi(list(references), hypothesis).items():
                out[name] = float(s.fmeasure)
        if self._lsum is not None:
            refs = [lsum_text(r, self.config) for r in references]
            s = self._lsum.score_multi(refs, lsum_text(hypothesis, self.config))["rougeLsum"]
            out["rougeLsum"] = float(s.fmeasure)
        if self.bleu is not None:
            out["bleu"] = float(self.bleu.sentence_score(hypothesis, list(references)).score)
        return {m: out[m] for m in self.metrics}


def check_pair(hypothesis: str, references: Sequence[str]) -> None:
    """Raise a clear error for a hypothesis/references pair the metrics cannot score."""
    if not isinstance(hypothesis, str):
        raise TypeError(f"hypothesis: expected str, got {type(hypothesis).__name__}")
    if isinstance(references, str) or not isinstance(references, Sequence) or not references:
        raise TypeError(f"references: expected a non-empty list of str, got {references!r:.80}")
    for i, r in enumerate(references):
        if not isinstance(r, str):
            raise TypeError(f"references[{i}]: expected str, got {type(r).__name__}")


def make_rouge_tokenizer(config: MetricConfig):
    """The tokenizer object rouge-score uses under ``config`` (has ``.tokenize(text)``)."""
    if config.cjk:
        return CJKRougeTokenizer(config.use_stemmer)
    from rouge_score import tokenizers

    return tokenizers.DefaultTokenizer(config.use_stemmer)


def rouge_tokenize_fn(config: MetricConfig) -> Callable[[str], list[str]]:
    """A fast function equal to ``make_rouge_tokenizer(config).tokenize`` (stems cached)."""
    tokenizer = make_rouge_tokenizer(config)
    stem = library.rouge_stemmer(tokenizer)
    if stem is None:
        return tokenizer.tokenize
    stem_cache: dict[str, str] = {}
    find = _CJK_TOKEN_RE.findall if config.cjk else _ASCII_TOKEN_RE.findall

    def tokenize(text: str) -> list[str]:
        out = []
        for t in find(text.lower()):
            if len(t) > 3 and t.isascii():
                s = stem_cache.get(t)
                if s is None:
                    s = stem_cache[t] = stem(t)
                t = s
            out.append(t)
        return [t for t in out if _VALID_TOKEN(t)] if not config.cjk else out

    return tokenize


# rouge-score keeps the maximal [a-z0-9]+ runs of the lower-cased text, then drops stems that
# are not [a-z0-9]+ (the Porter stemmer only shortens or rewrites ASCII letters, so none are).
_ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$").match
