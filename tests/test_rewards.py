"""Exactness of the incremental BLEU/ROUGE scorer against rouge-score and sacrebleu themselves."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from textrl.scoring.incremental import (
    IncrementalScorer,
    _LcsRows,
    sentence_bleu_from_stats,
    shared_tools,
)
from textrl.scoring.reward import RewardSpec
from textrl.scoring.sentence import METRICS, MetricConfig, SentenceScorer, split_sentences

ADVERSARIAL = [
    "The U.S. economy grew 3.5 % in 2019 , i.e. 60,000 jobs ... really?!",
    "well-\nknown results -- state-of-the-art (SOTA) [1] {x} <b>bold</b> don't shoot-out",
    "Fish &amp; chips &lt;tag&gt; &quot;quoted&quot; & more &amp;lt; nested",
    "Café naïve résumé Über straße façade — “curly quotes” and ‘single’ … ellipsis",
    "emoji 😀👍🏽 mixed with text 🚀 rockets and ❤️ hearts",
    "中文文本没有空格。这是第二句！还有第三句？ mixed 中英 text",
    "日本語のテキスト、カタカナとひらがな。한국어 문장도 있다.",
    "Punctuation runs!!! ??? ... ,,, ;;; ::: --- /// \\\\ ||| @@@ ### $$$ %%% ^^^",
    "numbers 1.5e-3 -2.0 3.14.15 1,000,000 10:30 2020-01-01 v1.2.3 -5 .5 5.",
    "Line one.\nLine two continues\n\nafter blank lines.\n- bullet\n* star <skipped> gone",
    "KELVIN \u212a sign and dotted \u0130stanbul and final \u03a3\u03a3 sigma \u03a3.",
    "  leading and trailing spaces\t\ttabs \u00a0nbsp\u2003em-space  ",
    "a",
    "",
    ". , ; : ! ?",
    "hyphen-\n joins and -\n\n dangling - \n",
]

REFERENCES = [
    ["The U.S. economy grew by 3.5% in 2019, adding 60,000 jobs."],
    ["Well-known state-of-the-art results don't shoot out.", "SOTA results are well known."],
    ['Fish & chips and more <tag> "quoted".'],
    ["Café and résumé are naïve words; Über façade."],
    ["Text with emoji 😀 and rockets 🚀."],
    ["中文文本。第二句！", "mixed 中英 text 没有空格"],
    ["日本語のテキスト。한국어 문장."],
    ["Punctuation runs ... and more!"],
    ["Numbers like 1,000,000 and 3.14 and 2020-01-01."],
    ["Line one. Line two continues after blank lines.\nBullet star gone."],
    ["Kelvin sign in Istanbul with sigma."],
    ["leading and trailing spaces tabs"],
    ["a"],
    ["empty"],
    ["punctuation only"],
    ["hyphen joins and dangling"],
]


def grow(text: str, rng: random.Random, retract: float = 0.1) -> list[str]:
    """Prefixes of ``text`` cut at random places, with occasional retractions."""
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, 12)))
    out = [text[:c] for c in cuts] + [text]
    for i in range(len(out)):
        if rng.random() < retract:
            out[i] = out[i][: rng.randrange(len(out[i]) + 1)]
    return out


def whitespace_prefixes(text: str) -> list[str]:
    """The stable prefixes the environment scores: up to each white-space character."""
    return [text[: i + 1] for i, ch in enumerate(text) if ch.isspace()] + [text]


@pytest.mark.parametrize("cjk", [False, True])
def test_adversarial_text_matches_libraries_at_every_prefix(cjk: bool) -> None:
    config = MetricConfig(cjk=cjk)
    library = SentenceScorer(METRICS, config)
    tools = shared_tools(config)
    rng = random.Random(7)
    checked = 0
    for text, refs in zip(ADVERSARIAL, REFERENCES):
        scorer = IncrementalScorer(refs, METRICS, config, _shared=tools)
        for prefix in whitespace_prefixes(text) + grow(text, rng):
            assert scorer.update(prefix) == library.score(prefix, refs), (prefix, refs)
            checked += 1
        # reusing the scorer for a new episode starts from the empty text
        assert scorer.reset_text() == library.score("", refs)
    assert checked > 200


def test_default_rouge_drops_non_ascii_and_cjk_opt_in_scores_chinese() -> None:
    hyp, refs = "中文文本没有空格", ["中文文本没有空格"]
    assert SentenceScorer(["rouge1"]).score(hyp, refs)["rouge1"] == 0.0  # rouge-score semantics
    cjk = SentenceScorer(["rouge1", "bleu"], MetricConfig(cjk=True)).score(hyp, refs)
    assert cjk["rouge1"] == pytest.approx(1.0) and cjk["bleu"] == pytest.approx(100.0)


def test_library_semantics_are_the_libraries_own() -> None:
    # rouge-score takes the target first; SentenceScorer takes the hypothesis first.
    hyp, ref = "the cat sat on the mat", "the cat was on the mat today"
    ours = SentenceScorer(["rouge1", "rougeL", "bleu"]).score(hyp, [ref])
    theirs = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(ref, hyp)
    assert ours["rouge1"] == theirs["rouge1"].fmeasure
    assert ours["rougeL"] == theirs["rougeL"].fmeasure
    assert ours["bleu"] == BLEU(effective_order=True).sentence_score(hyp, [ref]).score


@pytest.mark.parametrize(
    "hyp, ref, expected",
    [
        # Golden values from sacrebleu's test/test_sentence_bleu.py: the pair of its issue #98
        # (exp smoothing, 13a) and the zero-match pair of its issue #141.
        (
            "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;",
            "producţia de zahăr brut se exprimă în zahăr alb;",
            8.493,
        ),
        ("this is a cat", "okay thanks", 0.0),
    ],
)
def test_sacrebleu_golden_sentence_bleu(hyp: str, ref: str, expected: float) -> None:
    assert SentenceScorer(["bleu"]).score(hyp, [ref])["bleu"] == pytest.approx(expected, abs=1e-3)
    words = hyp.split(" ")
    scorer = IncrementalScorer([ref], ["bleu"])
    for k in range(1, len(words)):  # word by word, as the environment feeds it
        scorer.update(" ".join(words[:k]) + " ")
    assert scorer.update(hyp)["bleu"] == pytest.approx(expected, abs=1e-3)


def test_bleu_from_stats_is_bit_identical_to_sacrebleu() -> None:
    rng = random.Random(0)
    for _ in range(3000):
        sys_len = rng.randrange(0, 40)
        total = [max(sys_len - n, 0) for n in range(4)]
        correct = [rng.randrange(0, t + 1) if t else 0 for t in total]
        ref_len = rng.randrange(1, 40)
        expected = BLEU.compute_bleu(
            list(correct), list(total), sys_len, ref_len, smooth_method="exp", effective_order=True
        ).score
        assert sentence_bleu_from_stats(correct, total, sys_len, ref_len) == expected


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    rng = random.Random(1)
    for _ in range(300):
        ref = [rng.choice("abcde") for _ in range(rng.randrange(0, 70))]
        hyp = [rng.choice("abcdef") for _ in range(rng.randrange(0, 40))]
        rows = _LcsRows([ref])
        for tok in hyp:
            rows.push(tok)
        table = rouge_scorer._lcs_table(ref, hyp)
        assert rows.lcs() == [table[-1][-1]]


def test_13a_chunk_tokenization_matches_whole_text_fuzz() -> None:
    # The BLEU fast path tokenizes only the appended text after a white-space boundary; random
    # strings over the characters 13a treats specially must give sacrebleu's tokens exactly.
    rng = random.Random(3)
    alphabet = "ab1 2.,-\n&;<>'\"$%/:é中 "
    tools = shared_tools(MetricConfig())
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        refs = ["a b 1 2 . , - & ; < >"]
        scorer = IncrementalScorer(refs, ["bleu"], _shared=tools)
        for prefix in whitespace_prefixes(text):
            scorer.update(prefix)
            assert scorer._btokens == tools.bleu._preprocess_segment(prefix).split(), prefix


def test_real_pairs_every_prefix(scitldr_rows) -> None:
    library = SentenceScorer()
    tools = shared_tools(MetricConfig())
    rng = random.Random(11)
    for row in scitldr_rows["test"][:60]:
        refs = row["target"]
        hyp = " ".join(rng.sample(row["source"], 1))
        scorer = IncrementalScorer(refs, _shared=tools)
        for prefix in whitespace_prefixes(hyp):
            assert scorer.update(prefix) == library.score(prefix, refs)


def test_sentence_split_for_rouge_lsum() -> None:
    assert split_sentences("One. Two!  Three?\nFour 3.5 x") == [
        "One.",
        "Two!",
        "Three?",
        "Four 3.5 x",
    ]
    assert split_sentences("中文。第二句！") == ["中文。", "第二句！"]
    assert split_sentences("  \n ") == []


def test_reward_spec_parsing_and_errors() -> None:
    spec = RewardSpec.parse("0.5*rouge1 + 0.5*bleu")
    assert spec.weights == (("rouge1", 0.5), ("bleu", 0.5))
    assert spec({"rouge1": 0.4, "bleu": 20.0}) == pytest.approx(0.3)
    mean = RewardSpec.parse("rouge")
    assert dict(mean.weights) == pytest.approx({"rouge1": 1 / 3, "rouge2": 1 / 3, "rougeL": 1 / 3})
    assert RewardSpec.parse({"rougeL": 2}).weights == (("rougeL", 2.0),)
    with pytest.raises(ValueError, match="unknown metric 'meteor'"):
        RewardSpec.parse("meteor")
    with pytest.raises(ValueError, match="cannot parse term"):
        RewardSpec.parse("rouge1 * 0.5")
    with pytest.raises(ValueError, match="references"):
        IncrementalScorer("a single string", ["rouge1"])
