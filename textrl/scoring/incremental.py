"""Exact incremental BLEU/ROUGE for dense per-token rewards.

:class:`IncrementalScorer` holds one example's references and the current hypothesis text. Each
``update(text)`` returns every metric of ``text`` with exactly the values
:class:`textrl.scoring.sentence.SentenceScorer` (that is, rouge-score and sacrebleu) gives for
``text``,
but updated from the previous text instead of re-scored:

- The metric tokens of the new text are compared with the old ones; only the changed tail is
  popped and pushed. When the old text ends with white space and the new text extends it (the
  common case), only the appended part is tokenized, by the libraries' own tokenizers: rouge-score
  tokens never span white space, and sacrebleu's 13a rules look at one neighbouring character at
  most, so a white-space boundary isolates them, except a line break after ``-`` (13a joins
  ``-\\n``) and ``<skipped>`` markers, for which (and for the ``zh`` tokenizer) the whole text is
  re-tokenized. Otherwise the whole text is re-tokenized and the token lists diffed.
- ROUGE-N and BLEU n-gram matches are clipped counts updated per token (push and pop);
  ROUGE-L's LCS is a bit-parallel row per reference (Hyyrö 2004), one big-int update per token.
- Final values use the libraries' own arithmetic: ``rouge_score.scoring.fmeasure`` on the same
  integer counts, and :func:`sentence_bleu_from_stats`, which repeats
  ``sacrebleu.BLEU.compute_bleu``'s operations in order on the same statistics, so results are
  bit-identical, not merely close (the tests compare with ``==``). ROUGE-Lsum (rarely dense)
  calls rouge-score's summary-level LCS on the cached sentence tokens whenever the text changes.

The reward of the environment, a weighted sum of these metrics, is
:class:`textrl.scoring.reward.RewardSpec`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from rouge_score.scoring import fmeasure
from sacrebleu.metrics import BLEU

from textrl.scoring import library
from textrl.scoring.sentence import METRICS, MetricConfig, lsum_text, rouge_tokenize_fn

_BLEU_ORDER = 4


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class _NgramMatcher:
    """Clipped n-gram overlap of a growing token list against fixed reference counts.

    ``refs[r][g]`` is reference ``r``'s count of n-gram ``g`` (for BLEU: one merged "reference"
    holding the maximum count over references, as sacrebleu does). ``overlap[r][n-1]`` is
    sum over g of min(hyp[g], refs[r][g]) for n-grams of order n, ``total[n-1]`` the number of
    hypothesis n-grams of order n.
    """

    def __init__(self, refs: list[Counter], orders: Sequence[int]) -> None:
        self.refs = refs
        self.orders = tuple(orders)
        self.hyp: Counter = Counter()
        self.overlap = [[0] * len(self.orders) for _ in refs]
        self.total = [0] * len(self.orders)

    def clear(self) -> None:
        self.hyp.clear()
        self.overlap = [[0] * len(self.orders) for _ in self.refs]
        self.total = [0] * len(self.orders)

    def push(self, tokens: Sequence[str], i: int) -> None:
        """Account for token ``tokens[i]`` appended after ``tokens[:i]``."""
        for k, n in enumerate(self.orders):
            if i + 1 < n:
                continue
            g = tuple(tokens[i + 1 - n : i + 1])
            c = self.hyp[g] + 1
            self.hyp[g] = c
            self.total[k] += 1
            for r, ref in enumerate(self.refs):
                if c <= ref.get(g, 0):
                    self.overlap[r][k] += 1

    def pop(self, tokens: Sequence[str], i: int) -> None:
        """Undo :meth:`push` of ``tokens[i]`` (the last token pushed)."""
        for k, n in enumerate(self.orders):
            if i + 1 < n:
                continue
            g = tuple(tokens[i + 1 - n : i + 1])
            c = self.hyp[g]
            self.hyp[g] = c - 1
            self.total[k] -= 1
            for r, ref in enumerate(self.refs):
                if c <= ref.get(g, 0):
                    self.overlap[r][k] -= 1


class _LcsRows:
    """Bit-parallel LCS length of a growing token list against each reference (Hyyrö 2004).

    Bit j of ``row`` is 0 where reference position j is matched; LCS = m - popcount(row).
    ``rows[t]`` is the row after t hypothesis tokens, so popping is truncation.
    """

    def __init__(self, refs: list[list[str]]) -> None:
        self.lengths = [len(r) for r in refs]
        self.masks = [(1 << m) - 1 for m in self.lengths]
        self.match: list[dict[str, int]] = []
        for ref in refs:
            bits: dict[str, int] = {}
            for j, tok in enumerate(ref):
                bits[tok] = bits.get(tok, 0) | (1 << j)
            self.match.append(bits)
        self.rows: list[list[int]] = [list(self.masks)]

    def push(self, token: str) -> None:
        prev = self.rows[-1]
        row = []
        for v, bits, mask in zip(prev, self.match, self.masks):
            u = v & bits.get(token, 0)
            row.append(((v + u) | (v - u)) & mask)
        self.rows.append(row)

    def truncate(self, n_tokens: int) -> None:
        del self.rows[n_tokens + 1 :]

    def lcs(self) -> list[int]:
        return [m - v.bit_count() for m, v in zip(self.lengths, self.rows[-1])]


class IncrementalScorer:
    """Every requested metric of a growing hypothesis against one example's references.

    ``update(text)`` returns ``{metric: value}`` equal to ``SentenceScorer(metrics,
    config).score(text, references)``: ROUGE F1 in [0, 1], BLEU in sacrebleu's 0-100 scale.
    """

    def __init__(
        self,
        references: Sequence[str],
        metrics: Sequence[str] = METRICS,
        config: MetricConfig | None = None,
        *,
        _shared: _SharedTools | None = None,
    ) -> None:
        if isinstance(references, str) or not references:
            raise ValueError(f"references: expected a non-empty list of str, got {references!r}")
        self.metrics = tuple(metrics)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics: unknown {unknown}; expected some of {METRICS}")
        self.config = config or MetricConfig()
        tools = _shared or _SharedTools(self.config)
        self._tools = tools
        self.references = list(references)
        self._rouge_n = [int(m[5:]) for m in self.metrics if m in ("rouge1", "rouge2")]
        self._want_l = "rougeL" in self.metrics
        self._want_lsum = "rougeLsum" in self.metrics
        self._want_bleu = "bleu" in self.metrics
        self._want_rouge_tokens = bool(self._rouge_n) or self._want_l

        ref_tokens = [tools.rouge_tokenize(r) for r in self.references]
        self._ref_ngram_totals = {
            n: [max(len(t) - n + 1, 0) for t in ref_tokens] for n in self._rouge_n
        }
        self._rouge = _NgramMatcher(
            [Counter(g for n in self._rouge_n for g in _ngrams(t, n)) for t in ref_tokens],
            self._rouge_n,
        )
        self._lcs = _LcsRows(ref_tokens) if self._want_l else None
        self._rtokens: list[str] = []
        self._text = ""

        if self._want_lsum:
            self._ref_sents = [
                [tools.rouge_tokenize(s) for s in lsum_text(r, self.config).split("\n") if s]
                for r in self.references
            ]
        if self._want_bleu:
            bleu = tools.bleu
            info = library.bleu_reference_info(bleu, self.references)
            self._ref_lens: list[int] = info["ref_lens"]
            self._bleu = _NgramMatcher([info["ref_ngrams"]], range(1, _BLEU_ORDER + 1))
            self._btokens: list[str] = []
        self.values = self._empty_values = self._compute()

    # -- updating ---------------------------------------------------------------------------

    def reset_text(self) -> dict[str, float]:
        """Back to the empty hypothesis (references kept), without popping token by token."""
        self._rouge.clear()
        if self._lcs is not None:
            self._lcs.truncate(0)
        self._rtokens = []
        if self._want_bleu:
            self._bleu.clear()
            self._btokens = []
        self._text = ""
        self.values = self._empty_values
        return self.values

    def update(self, text: str) -> dict[str, float]:
        """Score ``text`` (usually the previous text plus a few words) and return the values."""
        if text == self._text:
            return self.values
        if self._want_rouge_tokens:
            if text.startswith(self._text) and (not self._text or self._text[-1].isspace()):
                new = self._rtokens + self._tools.rouge_tokenize(text[len(self._text) :])
                keep = len(self._rtokens)
            else:
                new = self._tools.rouge_tokenize(text)
                keep = _common_prefix(self._rtokens, new)
            self._sync_rouge(new, keep)
        if self._want_bleu:
            bleu = self._tools.bleu
            if self._bleu_extends(text):
                new = self._btokens + bleu.tokenizer(text[len(self._text) :].rstrip()).split()
                keep = len(self._btokens)
            else:
                new = library.bleu_preprocess(bleu, text).split()
                keep = _common_prefix(self._btokens, new)
            self._sync_bleu(new, keep)
        self._text = text
        self.values = self._compute()
        return self.values

    def _bleu_extends(self, text: str) -> bool:
        """Whether 13a tokens of ``text`` are those of the old text plus those of the rest."""
        old = self._text
        if not old or self.config.cjk or not text.startswith(old) or not old[-1].isspace():
            return False
        tail = old[len(old.rstrip()) :]
        return "\n" not in tail and "<skipped>" not in text

    def _sync_rouge(self, new: list[str], keep: int) -> None:
        old = self._rtokens
        for i in range(len(old) - 1, keep - 1, -1):
            self._rouge.pop(old, i)
        if self._lcs is not None:
            self._lcs.truncate(keep)
        for i in range(keep, len(new)):
            self._rouge.push(new, i)
            if self._lcs is not None:
                self._lcs.push(new[i])
        self._rtokens = new

    def _sync_bleu(self, new: list[str], keep: int) -> None:
        old = self._btokens
        for i in range(len(old) - 1, keep - 1, -1):
            self._bleu.pop(old, i)
        for i in range(keep, len(new)):
            self._bleu.push(new, i)
        self._btokens = new

    # -- values -----------------------------------------------------------------------------

    def _compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        n_hyp = len(self._rtokens)
        for k, n in enumerate(self._rouge_n):
            pred_total = max(n_hyp - n + 1, 0)
            best = None
            for r, ref_total in enumerate(self._ref_ngram_totals[n]):
                inter = self._rouge.overlap[r][k]
                f = fmeasure(inter / max(pred_total, 1), inter / max(ref_total, 1))
                if best is None or f > best:
                    best = f
            out[f"rouge{n}"] = float(best)
        if self._lcs is not None:
            best = None
            for lcs, m in zip(self._lcs.lcs(), self._lcs.lengths):
                f = 0.0 if not m or not n_hyp else fmeasure(lcs / n_hyp, lcs / m)
                if best is None or f > best:
                    best = f
            out["rougeL"] = float(best)
        if self._want_lsum:
            out["rougeLsum"] = self._lsum()
        if self._want_bleu:
            sys_len = len(self._btokens)
            ref_len = self._tools.bleu._get_closest_ref_len(sys_len, self._ref_lens)
            out["bleu"] = sentence_bleu_from_stats(
                self._bleu.overlap[0], self._bleu.total, sys_len, ref_len
            )
        return {m: out[m] for m in self.metrics}

    def _lsum(self) -> float:
        sents = [
            self._tools.rouge_tokenize_cached(s)
            for s in lsum_text(self._text, self.config).split("\n")
            if s
        ]
        best = None
        for ref_sents in self._ref_sents:
            f = library.summary_level_lcs_f1(ref_sents, sents)
            if best is None or f > best:
                best = f
        return float(best)


class _SharedTools:
    """Tokenizers shared by every scorer of one environment (their caches are worth keeping)."""

    def __init__(self, config: MetricConfig) -> None:
        self.rouge_tokenize = rouge_tokenize_fn(config)
        self.bleu = BLEU(effective_order=True, tokenize="zh" if config.cjk else "13a")
        self._sent_cache: dict[str, list[str]] = {}

    def rouge_tokenize_cached(self, sentence: str) -> list[str]:
        toks = self._sent_cache.get(sentence)
        if toks is None:
            if len(self._sent_cache) > 100_000:
                self._sent_cache.clear()
            toks = self._sent_cache[sentence] = self.rouge_tokenize(sentence)
        return toks


def sentence_bleu_from_stats(
    correct: Sequence[int], total: Sequence[int], sys_len: int, ref_len: int
) -> float:
    """``sacrebleu.BLEU.compute_bleu(..., smooth_method="exp", effective_order=True).score``.

    The same floating-point operations in the same order (so bit-identical; the tests compare
    with sacrebleu), without building a ``BLEUScore`` object on every token.
    """
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    if not any(correct):
        return 0.0
    precisions = [0.0] * _BLEU_ORDER
    smooth_mteval = 1.0
    eff_order = _BLEU_ORDER
    for n in range(1, _BLEU_ORDER + 1):
        if total[n - 1] == 0:
            break
        eff_order = n
        if correct[n - 1] == 0:
            smooth_mteval *= 2
            precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    return bp * math.exp(sum([_floored_log(p) for p in precisions[:eff_order]]) / eff_order)


def _floored_log(p: float) -> float:
    return -9999999999 if p == 0.0 else math.log(p)


def _ngrams(tokens: Sequence[str], n: int):
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def shared_tools(config: MetricConfig) -> _SharedTools:
    """One set of tokenizers (with caches) to pass to many :class:`IncrementalScorer`."""
    return _SharedTools(config)
