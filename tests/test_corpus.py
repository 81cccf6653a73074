"""Tests for the built-in synthetic summarisation corpus (textrl.data.builtin_corpus)."""

from __future__ import annotations

import random
import re
import statistics
import time

import pytest
from rouge_score import rouge_scorer

from textrl.data.builtin_corpus import SPLIT_SIZES, SPLITS, builtin_split

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENT_SPLIT.split(text.strip()) if s]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[tuple[str, list[str]]]]:
    return {split: builtin_split(split) for split in SPLITS}


def test_api_constants() -> None:
    assert SPLITS == ("train", "validation", "test")
    assert set(SPLIT_SIZES) == set(SPLITS)
    assert SPLIT_SIZES["train"] >= 3000


def test_split_sizes_and_types(corpus) -> None:
    for split in SPLITS:
        data = corpus[split]
        assert len(data) == SPLIT_SIZES[split]
        for doc, refs in data[:50]:
            assert isinstance(doc, str)
            assert isinstance(refs, list) and len(refs) == 1 and isinstance(refs[0], str)


def test_deterministic(corpus) -> None:
    assert builtin_split("validation") == corpus["validation"]
    assert builtin_split("test", seed=7) == builtin_split("test", seed=7)


def test_different_seeds_differ(corpus) -> None:
    other = builtin_split("test", seed=1)
    same = sum(a == b for a, b in zip(corpus["test"], other, strict=True))
    assert same == 0


def test_splits_do_not_overlap(corpus) -> None:
    docs = {split: {doc for doc, _ in corpus[split]} for split in SPLITS}
    for split in SPLITS:
        assert len(docs[split]) == SPLIT_SIZES[split], f"duplicate documents in {split}"
    assert not docs["train"] & docs["validation"]
    assert not docs["train"] & docs["test"]
    assert not docs["validation"] & docs["test"]


def test_document_shape(corpus) -> None:
    for split in SPLITS:
        for doc, _ in corpus[split]:
            assert "\n" not in doc
            assert 5 <= len(_sentences(doc)) <= 10, doc
            assert 80 <= len(doc.split()) <= 250, doc


def test_reference_shape(corpus) -> None:
    for split in SPLITS:
        for _, (ref,) in corpus[split]:
            assert "\n" not in ref
            assert len(_sentences(ref)) == 1, ref
            assert ref.endswith(".")
            assert 12 <= len(ref.split()) <= 30, ref


def test_vocabulary_in_the_thousands(corpus) -> None:
    vocab: set[str] = set()
    for split in SPLITS:
        for doc, (ref,) in corpus[split]:
            vocab.update(re.findall(r"[a-z]+", (doc + " " + ref).lower()))
    assert 2000 <= len(vocab) <= 20000, len(vocab)


def test_key_sentence_position_varies(corpus) -> None:
    """The best-matching sentence is first only in a minority of documents."""
    first = 0
    sample = corpus["validation"][:200]
    for doc, (ref,) in sample:
        ref_words = set(ref.lower().split())
        overlaps = [len(ref_words & set(s.lower().split())) for s in _sentences(doc)]
        first += overlaps.index(max(overlaps)) == 0
    assert 0.2 <= first / len(sample) <= 0.5


def test_unknown_split_raises() -> None:
    with pytest.raises(ValueError, match="dev") as info:
        builtin_split("dev")
    assert "validation" in str(info.value)


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    for split in SPLITS:
        builtin_split(split, seed=3)
    assert time.perf_counter() - start < 2.0


def test_baseline_ordering(corpus) -> None:
    """random < lead-1 < oracle on ROUGE-1, with the documented rough magnitudes."""
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    rng = random.Random(0)
    scores: dict[str, list[float]] = {"random": [], "lead": [], "oracle": []}
    for doc, (ref,) in corpus["test"][:120]:
        sents = _sentences(doc)
        rand = " ".join(rng.choices(doc.split(), k=20))
        scores["random"].append(scorer.score(ref, rand)["rouge1"].fmeasure)
        scores["lead"].append(scorer.score(ref, sents[0])["rouge1"].fmeasure)
        best = max(scorer.score(ref, s)["rouge1"].fmeasure for s in sents)
        scores["oracle"].append(best)
        assert best < 1.0
    mean = {k: statistics.mean(v) for k, v in scores.items()}
    assert mean["random"] < mean["lead"] < mean["oracle"], mean
    assert 0.10 <= mean["random"] <= 0.25, mean
    assert 0.25 <= mean["lead"] <= 0.40, mean
    assert mean["oracle"] >= 0.55, mean
