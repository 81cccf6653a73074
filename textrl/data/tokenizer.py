"""The tokenizer that defines the action space: a fast subword tokenizer and its special ids.

Default: a BPE tokenizer trained with ``tokenizers`` on the training split's documents and
references (``vocab_size`` 4096 by default), with a SentencePiece-style ``Metaspace``
pre-tokenizer (a word-initial piece carries ``▁``), so decoding is piece concatenation and the
decoded text of a prefix of subword ids is a prefix of the decoded text of the whole. It falls
back to bytes: a character no subword covers (an emoji, a rare script) is spelled as UTF-8 byte
tokens ``<0xNN>``, so every character can be generated and ``<unk>`` never appears (a character
being spelled shows as U+FFFD until its last byte). It is cached on disk
under ``$TEXTRL_CACHE`` (default ``~/.cache/textrl``) keyed by a hash of the training text and the
settings, and saved in Hugging Face format: ``transformers.AutoTokenizer.from_pretrained(path)``
loads it.

Alternatively any Hugging Face *fast* tokenizer by local path or hub name
(``trust_remote_code`` stays off). Missing special tokens are added to it.

Built-in ids: ``</s>`` = 0 (end of sequence, always a legal action), the byte tokens 1-256, the
subwords, and last the three tokens that are never generated: ``<pad>`` (observation padding),
``<sep>`` (source/target separator for models) and ``<unk>``. So with the built-in tokenizer
action ``a`` emits token id ``a``. :meth:`TextTokenizer.action_token_ids` lists the ids that can
be generated: every id except the special tokens other than end of sequence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, EOS, SEP, UNK = "<pad>", "</s>", "<sep>", "<unk>"
FORMAT_VERSION = 2  # bump when the trained tokenizer's recipe changes (invalidates caches)
# 2: byte fallback, and ids laid out so that action a emits token id a


def cache_root() -> Path:
    """Where trained tokenizers (and other derived artefacts) are cached."""
    return Path(os.environ.get("TEXTRL_CACHE", Path.home() / ".cache" / "textrl"))


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the special ids the environment and agent rely on.

    ``encode`` adds no special tokens; ``decode`` skips them. ``vocab_size`` counts added tokens.
    It also answers to the Hugging Face names users reach for: ``eos_token_id``,
    ``pad_token_id``, ``sep_token_id``, ``unk_token_id``, ``len(tokenizer)``,
    ``encode(text, add_special_tokens=False)`` and ``decode(ids, skip_special_tokens=True)``.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        name: str = "custom",
        *,
        pad: str = PAD,
        eos: str = EOS,
        sep: str = SEP,
        unk: str = UNK,
    ) -> None:
        self.backend = tokenizer
        self.name = name
        self.special_tokens = {
            "pad_token": pad,
            "eos_token": eos,
            "sep_token": sep,
            "unk_token": unk,
        }
        missing = [
            t for t in dict.fromkeys((pad, eos, sep, unk)) if tokenizer.token_to_id(t) is None
        ]
        if missing:
            tokenizer.add_special_tokens(missing)
        self.pad_id: int = tokenizer.token_to_id(pad)
        self.eos_id: int = tokenizer.token_to_id(eos)
        self.sep_id: int = tokenizer.token_to_id(sep)
        self.unk_id: int = tokenizer.token_to_id(unk)
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        specials = {self.pad_id, self.eos_id, self.sep_id, self.unk_id}
        for tok in tokenizer.get_added_tokens_decoder().values():
            if tok.special:
                specials.add(tokenizer.token_to_id(tok.content))
        self.special_ids: frozenset[int] = frozenset(specials)

    def action_token_ids(self) -> list[int]:
        """Token ids an agent may generate, ascending: all but the non-EOS special tokens."""
        banned = self.special_ids - {self.eos_id}
        return [i for i in range(self.vocab_size) if i not in banned]

    eos_token_id = property(lambda self: self.eos_id, doc="Hugging Face name of ``eos_id``.")
    pad_token_id = property(lambda self: self.pad_id, doc="Hugging Face name of ``pad_id``.")
    sep_token_id = property(lambda self: self.sep_id, doc="Hugging Face name of ``sep_id``.")
    unk_token_id = property(lambda self: self.unk_id, doc="Hugging Face name of ``unk_id``.")

    def __len__(self) -> int:
        return self.vocab_size

    def encode(
        self, text: str, max_length: int | None = None, add_special_tokens: bool = False
    ) -> list[int]:
        """Token ids of ``text``, truncated to ``max_length``. No special tokens are added
        (``add_special_tokens=True`` is refused: this tokenizer has no template to add)."""
        if add_special_tokens:
            raise ValueError("add_special_tokens: this tokenizer adds none; pass False")
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return ids if max_length is None else ids[:max_length]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Detokenised text of ``ids``; special tokens are skipped unless asked otherwise."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id)

    def save(self, path: str | os.PathLike) -> Path:
        """Save in Hugging Face format (``tokenizer.json`` + ``tokenizer_config.json``)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(path / "tokenizer.json"))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **self.special_tokens,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000,
        }
        (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
        (path / "special_tokens_map.json").write_text(json.dumps(self.special_tokens, indent=2))
        return path

    @classmethod
    def load(
        cls, name_or_path: str | os.PathLike, trust_remote_code: bool = False
    ) -> TextTokenizer:
        """Load a saved textrl tokenizer, or any Hugging Face fast tokenizer by path or hub name."""
        path = Path(name_or_path).expanduser()
        if (path / "tokenizer.json").is_file() and (path / "special_tokens_map.json").is_file():
            specials = json.loads((path / "special_tokens_map.json").read_text())
            ours = {"pad_token": PAD, "eos_token": EOS, "sep_token": SEP, "unk_token": UNK}
            if all(specials.get(k) == v for k, v in ours.items()):
                return cls(Tokenizer.from_file(str(path / "tokenizer.json")), name=str(path))
        if str(name_or_path).startswith((".", "/", "~")) and not path.exists():
            raise FileNotFoundError(f"tokenizer: path {str(name_or_path)!r} does not exist")
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"tokenizer: {str(name_or_path)!r} has no fast (Rust) tokenizer; "
                "textrl needs a tokenizers-backed one"
            )
        # Reuse the model's own special tokens where it has them; add ours where it lacks one.
        eos = hf.eos_token or hf.sep_token or EOS
        return cls(
            Tokenizer.from_str(backend.to_str()),
            name=str(name_or_path),
            pad=hf.pad_token or PAD,
            eos=eos,
            sep=hf.sep_token or SEP,
            unk=hf.unk_token or UNK,
        )


MIN_VOCAB_SIZE = 320
"""The byte tokens and special tokens take 260 ids; the rest is learned subwords."""


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2
) -> TextTokenizer:
    """Train the built-in BPE tokenizer (see the module docstring) on ``texts``.

    A BPE with ``vocab_size - 256`` entries is learned with ``tokenizers``; the final vocabulary
    then lays out ids so that action ``a`` emits token id ``a``: end-of-sequence first (0), the
    256 byte tokens ``<0x00>``..``<0xFF>`` (1-256, byte fallback: any character the subwords
    lack is spelled in UTF-8 bytes, never ``<unk>``), the learned subwords, and last the three
    tokens no action emits (``<pad>``, ``<sep>``, ``<unk>``).
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size: expected at least {MIN_VOCAB_SIZE}, got {vocab_size}")
    learned = Tokenizer(models.BPE(unk_token=UNK))
    learned.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 256,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD, SEP, UNK],
        show_progress=False,
    )
    learned.train_from_iterator(texts, trainer=trainer)
    model = json.loads(learned.to_str())["model"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    specials = {EOS, PAD, SEP, UNK}
    subwords = [
        t
        for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])
        if t not in specials and t not in byte_tokens
    ]
    order = [EOS, *byte_tokens, *subwords, PAD, SEP, UNK]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    tok = Tokenizer(
        models.BPE({t: i for i, t in enumerate(order)}, merges, unk_token=UNK, byte_fallback=True)
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Sequence(
        [
            decoders.ByteFallback(),
            decoders.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    tok.add_special_tokens([EOS, PAD, SEP, UNK])
    return TextTokenizer(tok, name="builtin-bpe")


def training_texts(documents: Sequence[str], references: Sequence[Sequence[str]]) -> list[str]:
    return list(documents) + [r for refs in references for r in refs]


def cached_trained_tokenizer(
    texts: Sequence[str], vocab_size: int = 4096, min_frequency: int = 2
) -> TextTokenizer:
    """Train once per (texts, settings) and reuse the copy cached on disk."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT_VERSION, vocab_size, min_frequency]).encode())
    for t in texts:
        digest.update(t.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    target = cache_root() / "tokenizers" / digest.hexdigest()[:24]
    if (target / "tokenizer.json").is_file():
        return TextTokenizer.load(target)
    tok = train_tokenizer(texts, vocab_size=vocab_size, min_frequency=min_frequency)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        tok.save(tmp)
        try:
            os.replace(tmp, target)  # atomic: readers see a whole tokenizer or none
        except OSError:  # another process won the race; use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return TextTokenizer.load(target)


def get_tokenizer(
    tokenizer: str | TextTokenizer | None = None,
    *,
    data: str = "builtin",
    vocab_size: int = 4096,
    **data_kwargs,
) -> TextTokenizer:
    """The tokenizer for ``data``: given, loaded by name/path, or trained on its train split."""
    if isinstance(tokenizer, TextTokenizer):
        return tokenizer
    if tokenizer is not None:
        return TextTokenizer.load(tokenizer)
    from textrl.data import load_examples

    try:
        train = load_examples(data, "train", **data_kwargs)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(
            f"tokenizer: the built-in tokenizer is trained on the data's train split, which "
            f"could not be loaded ({exc}); provide a train split, or pass a saved tokenizer "
            "(tokenizer=PATH, --tokenizer PATH)"
        ) from exc
    return cached_trained_tokenizer(
        training_texts(train.documents, train.references), vocab_size=vocab_size
    )
