"""Summarisation data: (document, references) examples from the built-in corpus, the Hugging Face
hub, or local files.

Every source ends in the same shape, an :class:`ExampleSet` of :class:`Example` (one document,
one or more reference summaries). ``data`` is resolved in this order:

1. ``"builtin"`` (the default everywhere): the offline, seeded corpus of
   :mod:`textrl.data.builtin_corpus`.
2. An existing local path: a folder holding one file per split (``train.jsonl``,
   ``dev.jsonl``/``validation.jsonl``, ``test.jsonl``, ...; also ``.json``/``.csv``/
   ``.parquet``), or a single such file. Read through ``datasets``. **A single file is one
   split**: the one its name says (``test.jsonl`` is the test split, ``dev.csv`` validation),
   or ``train`` when its name says none. Asking it for another split is an error, never the same
   documents again, unless ``holdout`` carves validation and test from it: ``holdout=0.1`` puts a
   seeded 10% of the examples in each (:data:`HOLDOUT_SEED`; the same file always gives the
   same split) and the rest in ``train``.
3. Anything that looks like a path but does not exist is an error (never a hub request).
4. Otherwise a Hugging Face hub dataset name, loaded with ``datasets.load_dataset``; known
   summarisation sets have presets (:data:`PRESETS`) for their config and columns.

Columns are taken from ``document_column``/``summary_column`` when given, else from a preset,
else detected from the common pairs in :data:`COLUMN_PAIRS`. A document may be a string or a list
of sentences (joined with one space, as SciTLDR's ``source``); a summary may be a string or a list
of references (all kept, as SciTLDR's ``target``). Rows whose document is empty, or with no
non-empty reference, are skipped, counted in :attr:`ExampleSet.skipped` and reported with one
warning; empty references inside a non-empty list are dropped and counted too.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN = "builtin"
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}

HOLDOUT_SEED = 0
"""Seed of the permutation that carves validation and test from a single file (``holdout``)."""

# Canonical split name -> names accepted for it (first one is the canonical name).
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "dev", "val", "valid"),
    "test": ("test",),
}


@dataclass(frozen=True)
class Preset:
    """How to read one hub summarisation dataset."""

    path: str
    config: str | None
    document_column: str
    summary_column: str


PRESETS: dict[str, Preset] = {}
for _aliases, _preset in [
    (
        ("cnn_dailymail", "abisee/cnn_dailymail"),
        Preset("abisee/cnn_dailymail", "3.0.0", "article", "highlights"),
    ),
    (("xsum", "EdinburghNLP/xsum"), Preset("EdinburghNLP/xsum", None, "document", "summary")),
    (("scitldr", "allenai/scitldr"), Preset("allenai/scitldr", "Abstract", "source", "target")),
    (("samsum", "Samsung/samsum"), Preset("Samsung/samsum", None, "dialogue", "summary")),
]:
    for _alias in _aliases:
        PRESETS[_alias.lower()] = _preset

# Column pairs recognised without a preset, most specific first.
COLUMN_PAIRS = [
    ("source", "target"),
    ("document", "summary"),
    ("article", "highlights"),
    ("dialogue", "summary"),
    ("text", "summary"),
    ("document", "references"),
]


@dataclass(frozen=True)
class Example:
    """One summarisation example: a document and its non-empty reference summaries."""

    document: str
    references: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.document, str) or not self.document.strip():
            raise ValueError(f"Example.document must be a non-empty string, got {self.document!r}")
        if not self.references or not all(
            isinstance(r, str) and r.strip() for r in self.references
        ):
            raise ValueError(
                f"Example.references must be non-empty strings, got {self.references!r}"
            )


@dataclass
class ExampleSet(Sequence[Example]):
    """The examples of one split, with where they came from and what was skipped."""

    examples: list[Example]
    source: str
    split: str
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index):  # type: ignore[override]
        return self.examples[index]

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    @property
    def documents(self) -> list[str]:
        return [e.document for e in self.examples]

    @property
    def references(self) -> list[tuple[str, ...]]:
        return [e.references for e in self.examples]


def canonical_split(split: str) -> str:
    """Map ``dev``/``val``/``valid`` to ``validation``; other names are returned unchanged."""
    for name, aliases in SPLIT_ALIASES.items():
        if split in aliases:
            return name
    return split


def file_split(path: str | Path) -> str:
    """The split a single data file is: the one its name says, else ``train``."""
    stem = Path(path).stem.lower()
    return next((name for name, aliases in SPLIT_ALIASES.items() if stem in aliases), "train")


def _looks_like_path(data: str) -> bool:
    return (
        data.startswith(("/", "./", "../", "~"))
        or os.sep in data
        and data.count("/") > 1
        or Path(data).suffix.lower() in FILE_FORMATS
    )


def load_examples(
    data: str = BUILTIN,
    split: str = "train",
    *,
    document_column: str | None = None,
    summary_column: str | None = None,
    config: str | None = None,
    limit: int | None = None,
    trust_remote_code: bool = False,
    holdout: float = 0.0,
    shard: tuple[int, int] | None = None,
) -> ExampleSet:
    """Load one split of summarisation data as an :class:`ExampleSet` (see the module docstring).

    ``limit`` keeps the first ``limit`` examples. ``holdout`` (single files only, in
    ``[0, 0.5)``): the share of examples carved out for each of validation and test.
    ``shard=(i, n)``: only every n-th row from row i (an Ape-X actor's share of the training
    split). Folders and hub datasets shard the Arrow table with ``datasets.Dataset.shard``
    before any row becomes an :class:`Example`, so a large dataset is never converted whole; the
    built-in corpus and a single file (whose holdout carve needs every row) are sliced after
    loading. Results are cached per arguments in-process.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f"data: expected 'builtin', a path or a hub dataset name, got {data!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: expected a positive integer or None, got {limit!r}")
    if (
        isinstance(holdout, bool)
        or not isinstance(holdout, (int, float))
        or not (0.0 <= holdout < 0.5)
    ):
        raise ValueError(f"holdout: expected a number in [0, 0.5), got {holdout!r}")
    if shard is not None:
        ok = (
            isinstance(shard, tuple)
            and len(shard) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
            and 0 <= shard[0] < shard[1]
        )
        if not ok:
            raise ValueError(
                f"shard: expected (index, num_shards) integers with 0 <= index < num_shards, "
                f"got {shard!r}"
            )
    loaded = _load_cached(
        data,
        split,
        document_column,
        summary_column,
        config,
        trust_remote_code,
        float(holdout),
        shard,
    )
    if limit is not None and limit < len(loaded):
        return ExampleSet(
            loaded.examples[:limit], loaded.source, loaded.split, dict(loaded.skipped)
        )
    return loaded


@functools.lru_cache(maxsize=32)
def _load_cached(
    data: str,
    split: str,
    document_column: str | None,
    summary_column: str | None,
    config: str | None,
    trust_remote_code: bool,
    holdout: float = 0.0,
    shard: tuple[int, int] | None = None,
) -> ExampleSet:
    path = Path(data).expanduser()
    single_file = data != BUILTIN and path.is_file()
    if holdout and not single_file:
        raise ValueError(
            f"holdout: carves validation and test from a single data file, but {data!r} "
            "already has its splits; drop holdout"
        )
    if single_file or data == BUILTIN:
        if single_file:
            whole = _load_single_file(
                path, split, document_column, summary_column, trust_remote_code, holdout
            )
        else:
            from textrl.data.builtin_corpus import builtin_split

            name = canonical_split(split)
            pairs = builtin_split(name)
            whole = ExampleSet([Example(d, tuple(r)) for d, r in pairs], BUILTIN, name)
        if shard is None:
            return whole
        i, n = shard
        return ExampleSet(
            list(whole.examples[i::n]),
            f"{whole.source} (shard {i} of {n})",
            whole.split,
            dict(whole.skipped),
        )
    if path.exists():
        rows, columns, where = _read_local(path, split)
        preset = None
    elif _looks_like_path(data):
        raise FileNotFoundError(
            f"data: path {data!r} does not exist (resolved to {path.resolve()})"
        )
    else:
        preset = PRESETS.get(data.lower())
        rows, columns, where = _read_hub(data, split, config, preset, trust_remote_code)
    doc_col, sum_col = _resolve_columns(columns, document_column, summary_column, preset, where)
    if shard is not None:
        rows = rows.shard(num_shards=shard[1], index=shard[0], contiguous=False)
        where = f"{where} (shard {shard[0]} of {shard[1]})"
    return _to_examples(rows, doc_col, sum_col, where, canonical_split(split))


def _load_single_file(
    path: Path,
    split: str,
    document_column: str | None,
    summary_column: str | None,
    trust_remote_code: bool,
    holdout: float,
) -> ExampleSet:
    """One split of a single file: the file itself, or a part of its holdout carve."""
    own, wanted = file_split(path), canonical_split(split)
    if not holdout and wanted != own:
        named = "its name says so" if own != "train" else "its name names no split"
        raise ValueError(
            f"split: {str(path)!r} is a single file, so it is one split, {own!r} ({named}); it "
            f"cannot also be the {split!r} split. Give each split its own file in a folder "
            "(train.jsonl, validation.jsonl, test.jsonl), or carve validation and test from "
            "this file with holdout (--holdout 0.1: a seeded 10% each)"
        )
    if holdout and own != "train":
        raise ValueError(
            f"holdout: {str(path)!r} is the {own!r} split (its name says so); holdout carves "
            "validation and test from a training file only"
        )
    if holdout and wanted not in SPLIT_ALIASES:
        raise ValueError(f"split: {split!r} is not one of the holdout splits {list(SPLIT_ALIASES)}")
    full = _file_examples(str(path), document_column, summary_column)
    if not holdout:
        return full
    import numpy as np

    n = len(full)
    n_out = max(1, round(holdout * n))
    if n - 2 * n_out < 1:
        raise ValueError(
            f"holdout: {holdout} of {n} examples leaves no training example in {str(path)!r}"
        )
    order = np.random.default_rng(HOLDOUT_SEED).permutation(n)
    parts = {
        "validation": order[:n_out],
        "test": order[n_out : 2 * n_out],
        "train": order[2 * n_out :],
    }
    chosen = sorted(parts[wanted].tolist())  # keep the file's order inside each part
    sizes = "/".join(str(len(parts[k])) for k in ("train", "validation", "test"))
    where = (
        f"{full.source} (holdout {holdout:g}, seed {HOLDOUT_SEED}: train/validation/test {sizes})"
    )
    return ExampleSet([full.examples[i] for i in chosen], where, wanted, dict(full.skipped))


@functools.lru_cache(maxsize=8)
def _file_examples(
    path: str, document_column: str | None, summary_column: str | None
) -> ExampleSet:
    """All examples of a single data file (the split :func:`file_split` names)."""
    rows, columns, where = _read_local(Path(path), file_split(path))
    doc_col, sum_col = _resolve_columns(columns, document_column, summary_column, None, where)
    return _to_examples(rows, doc_col, sum_col, where, file_split(path))


def _read_local(path: Path, split: str) -> tuple[Iterable[Mapping[str, Any]], list[str], str]:
    import datasets

    if path.is_dir():
        wanted = SPLIT_ALIASES.get(canonical_split(split), (split,))
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in FILE_FORMATS)
        matches = [p for p in found if p.stem in wanted]
        if not matches:
            have = sorted({p.stem for p in found})
            raise ValueError(
                f"split: {split!r} not found in folder {str(path)!r}; it has split files "
                f"{have} (expected one of {[a + '.jsonl' for a in wanted]} or .json/.csv/.parquet)"
            )
        file = matches[0]
    else:
        file = path
    fmt = FILE_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"data: unsupported file type {file.suffix!r} for {str(file)!r}; "
            f"expected one of {sorted(FILE_FORMATS)}"
        )
    if file.stat().st_size == 0:
        raise ValueError(f"data: file {str(file)!r} is empty")
    if fmt in ("json", "csv"):  # pyarrow keeps invalid bytes and fails row by row later
        check_utf8(file, "data")
    try:
        quiet = not datasets.are_progress_bars_disabled()
        if quiet:  # a local file loads in seconds: no "Generating train split" bar
            datasets.disable_progress_bars()
        try:
            ds = datasets.load_dataset(fmt, data_files=str(file), split="train")
        finally:
            if quiet:
                datasets.enable_progress_bars()
    except Exception as exc:  # datasets wraps parse errors in several exception types
        raise ValueError(f"data: could not read {str(file)!r} as {fmt}: {exc}") from exc
    return ds, list(ds.column_names), str(file)


def check_utf8(path: str | Path, what: str) -> None:
    """Raise ``ValueError`` naming the byte, offset and line where ``path`` is not UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, exc.start) + 1
                raise ValueError(
                    f"{what}: {str(path)!r} is not valid UTF-8: byte {chunk[exc.start]:#04x} at "
                    f"offset {offset + exc.start} (line {line}); re-encode the file as UTF-8"
                ) from None
            offset, lines = offset + len(chunk), lines + chunk.count(b"\n")


def _read_hub(
    name: str, split: str, config: str | None, preset: Preset | None, trust_remote_code: bool
) -> tuple[Iterable[Mapping[str, Any]], list[str], str]:
    import datasets

    path = preset.path if preset else name
    config = config if config is not None else (preset.config if preset else None)
    kwargs: dict[str, Any] = {}
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    try:
        ds = datasets.load_dataset(path, config, split=canonical_split(split), **kwargs)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise ValueError(
                f"split: {split!r} is not a split of hub dataset {path!r}: {exc}"
            ) from exc
        raise
    except Exception as exc:  # network, auth, missing dataset: say what was tried
        raise RuntimeError(
            f"data: {name!r} is not an existing local path, and loading it as a Hugging Face hub "
            f"dataset failed ({type(exc).__name__}: {exc})"
        ) from exc
    return ds, list(ds.column_names), f"hub:{path}" + (f"/{config}" if config else "")


def _resolve_columns(
    columns: list[str],
    document_column: str | None,
    summary_column: str | None,
    preset: Preset | None,
    where: str,
) -> tuple[str, str]:
    if document_column is None and summary_column is None and preset is not None:
        document_column, summary_column = preset.document_column, preset.summary_column
    if document_column is None or summary_column is None:
        for doc, summ in COLUMN_PAIRS:
            if (
                document_column in (None, doc)
                and summary_column in (None, summ)
                and doc in columns
                and summ in columns
            ):
                document_column, summary_column = doc, summ
                break
    for arg, col in (("document_column", document_column), ("summary_column", summary_column)):
        if col is None:
            raise ValueError(
                f"data: cannot tell which column of {where} holds the {arg.split('_')[0]}; "
                f"columns are {columns}; pass {arg}=..."
            )
        if col not in columns:
            raise ValueError(
                f"data: column {col!r} not found in {where}; columns are {columns}; pass {arg}=..."
            )
    return document_column, summary_column  # type: ignore[return-value]


def _as_text(value: Any, field_name: str, row: int, where: str, allow_list: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if allow_list and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " ".join(v.strip() for v in value if v.strip())
    raise TypeError(
        f"data: {field_name} of row {row} in {where} must be a string"
        f"{' or a list of strings' if allow_list else ''}, "
        f"got {type(value).__name__}: {value!r:.80}"
    )


def _to_examples(
    rows: Iterable[Mapping[str, Any]], doc_col: str, sum_col: str, where: str, split: str
) -> ExampleSet:
    examples: list[Example] = []
    skipped = {"empty_document": 0, "no_reference": 0, "empty_reference_dropped": 0}
    for i, row in enumerate(rows):
        document = _as_text(row[doc_col], f"column {doc_col!r}", i, where, allow_list=True)
        raw = row[sum_col]
        raw_refs = raw if isinstance(raw, (list, tuple)) else [raw]
        refs = [_as_text(r, f"column {sum_col!r}", i, where, allow_list=False) for r in raw_refs]
        kept = tuple(r.strip() for r in refs if r is not None and r.strip())
        if not document or not document.strip():
            skipped["empty_document"] += 1
            continue
        if not kept:
            skipped["no_reference"] += 1
            continue
        skipped["empty_reference_dropped"] += len(refs) - len(kept)
        examples.append(Example(document.strip(), kept))
    skipped = {k: v for k, v in skipped.items() if v}
    if skipped:
        warnings.warn(
            f"data: {where}: skipped or dropped {skipped} (kept {len(examples)} examples)",
            stacklevel=3,
        )
    if not examples:
        raise ValueError(f"data: {where} has no usable examples (skipped: {skipped})")
    return ExampleSet(examples, where, split, skipped)
