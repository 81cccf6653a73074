"""The action-space tokenizer: training, caching, Hugging Face format, special ids, decoding."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from textrl.data import load_examples
from textrl.data.tokenizer import (
    EOS,
    TextTokenizer,
    cached_trained_tokenizer,
    get_tokenizer,
    training_texts,
)


@pytest.fixture(scope="module")
def builtin_tok() -> TextTokenizer:
    return get_tokenizer(data="builtin")


def test_special_ids_and_action_ids(builtin_tok: TextTokenizer) -> None:
    tok = builtin_tok
    assert (tok.eos_id, tok.pad_id, tok.sep_id, tok.unk_id) == (0, 4093, 4094, 4095)
    assert tok.vocab_size == 4096
    actions = tok.action_token_ids()
    assert actions == list(range(4093))  # action a emits token id a; EOS is action 0
    assert not {tok.pad_id, tok.sep_id, tok.unk_id} & set(actions)


def test_every_character_is_generatable(builtin_tok: TextTokenizer) -> None:
    text = "Caf\u00e9 \u00a9 2024 \U0001f600 \u4e2d\u6587 \u05e9\u05dc\u05d5\u05dd na\u00efve"
    ids = builtin_tok.encode(text)
    assert builtin_tok.unk_id not in ids and builtin_tok.decode(ids) == text
    emoji = builtin_tok.encode("\U0001f600")
    assert [builtin_tok.id_to_token(i) for i in emoji[-4:]] == [
        "<0xF0>",
        "<0x9F>",
        "<0x98>",
        "<0x80>",
    ]


def test_cache_is_reused_and_keyed_by_content(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEXTRL_CACHE", str(tmp_path))
    texts = ["alpha beta gamma delta"] * 20 + ["epsilon zeta eta theta"] * 20
    a = cached_trained_tokenizer(texts, vocab_size=400)
    saved = list((tmp_path / "tokenizers").iterdir())
    assert len(saved) == 1 and (saved[0] / "tokenizer.json").is_file()
    mtime = os.stat(saved[0] / "tokenizer.json").st_mtime_ns
    b = cached_trained_tokenizer(texts, vocab_size=400)
    assert os.stat(saved[0] / "tokenizer.json").st_mtime_ns == mtime  # loaded, not retrained
    assert a.encode("alpha gamma") == b.encode("alpha gamma")
    cached_trained_tokenizer(texts, vocab_size=360)
    assert len(list((tmp_path / "tokenizers").iterdir())) == 2
    assert not [p for p in (tmp_path / "tokenizers").iterdir() if p.name.startswith(".tmp")]


def test_saved_tokenizer_loads_with_autotokenizer(builtin_tok: TextTokenizer, tmp_path) -> None:
    from transformers import AutoTokenizer

    builtin_tok.save(tmp_path / "tok")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    text = "The council approved a new bridge in Faby on Monday."
    assert hf(text, add_special_tokens=False)["input_ids"] == builtin_tok.encode(text)
    assert hf.eos_token == EOS and hf.pad_token_id == builtin_tok.pad_id
    again = TextTokenizer.load(tmp_path / "tok")
    assert again.encode(text) == builtin_tok.encode(text)


def test_decoding_a_prefix_gives_a_prefix(builtin_tok: TextTokenizer) -> None:
    rng = random.Random(0)
    docs = load_examples("builtin", "validation").documents[:30]
    for doc in docs:
        ids = builtin_tok.encode(doc)
        assert builtin_tok.decode(ids) == doc
        for _ in range(5):
            k = rng.randrange(1, len(ids))
            assert doc.startswith(builtin_tok.decode(ids[:k]))
    # Subword tokens only: a character spelled in bytes shows as U+FFFD until its last byte.
    subwords = [i for i in builtin_tok.action_token_ids() if i > 256]
    random_ids = [rng.choice(subwords) for _ in range(40)]
    texts = [builtin_tok.decode(random_ids[:k]) for k in range(41)]
    assert all(texts[k + 1].startswith(texts[k]) for k in range(40))


def test_any_fast_tokenizer_folder_gets_missing_specials(tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[SEP]", "hello", "world", "."])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", sep_token="[SEP]"
    )
    hf.save_pretrained(str(tmp_path / "wl"))
    tok = TextTokenizer.load(tmp_path / "wl")
    assert tok.pad_id == 0 and tok.sep_id == 2 and tok.unk_id == 1
    assert tok.eos_id == tok.sep_id  # a model without EOS ends sequences with its separator
    assert tok.encode("hello world .") == [3, 4, 5]
    with pytest.raises(FileNotFoundError, match="tokenizer: path './nowhere' does not exist"):
        TextTokenizer.load("./nowhere")


def test_training_texts_include_references() -> None:
    texts = training_texts(["doc one", "doc two"], [("ref a",), ("ref b", "ref c")])
    assert texts == ["doc one", "doc two", "ref a", "ref b", "ref c"]


def test_tokenizer_answers_to_hugging_face_names() -> None:
    tok = get_tokenizer(data="builtin", vocab_size=600)
    assert (tok.eos_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (
        tok.eos_id,
        tok.pad_id,
        tok.sep_id,
        tok.unk_id,
    )
    assert len(tok) == tok.vocab_size
    ids = tok.encode("The council met.", add_special_tokens=False)
    assert tok.decode(ids + [tok.eos_id], skip_special_tokens=True) == "The council met."
    assert tok.decode([tok.eos_id], skip_special_tokens=False) == "</s>"
    with pytest.raises(ValueError, match="add_special_tokens"):
        tok.encode("x", add_special_tokens=True)
