"""Loading summarisation data: built-in corpus, local files and folders, hub presets, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from textrl.data import Example, load_examples
from textrl.data import loading as data_mod


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_builtin_splits_are_disjoint_and_aliases_work() -> None:
    train = load_examples("builtin", "train")
    val = load_examples("builtin", "dev")
    test = load_examples()
    assert val.split == "validation" and len(train) >= 3000
    assert test is load_examples("builtin", "train")  # cached in-process
    assert not set(train.documents) & set(val.documents)
    assert all(isinstance(e, Example) and len(e.references) == 1 for e in val)
    with pytest.raises(ValueError, match="unknown split 'nope'"):
        load_examples("builtin", "nope")


def test_scitldr_folder_loads_as_is_with_all_references(scitldr_dir, scitldr_rows) -> None:
    dev = load_examples(str(scitldr_dir), "dev")
    assert len(dev) == len(scitldr_rows["dev"])
    assert sum(len(e.references) for e in dev) == sum(len(r["target"]) for r in scitldr_rows["dev"])
    first = scitldr_rows["dev"][0]
    assert dev[0].document == " ".join(first["source"])
    assert list(dev[0].references) == first["target"]
    assert load_examples(str(scitldr_dir), "validation").documents == dev.documents
    assert len(load_examples(str(scitldr_dir / "test.jsonl"), "test", limit=7)) == 7


def test_local_formats(tmp_path: Path) -> None:
    rows = [{"document": f"Document number {i}.", "summary": f"Summary {i}."} for i in range(4)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "d.csv"))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    for name in ("d.jsonl", "d.csv", "d.parquet"):
        loaded = load_examples(str(tmp_path / name))
        assert [e.references for e in loaded] == [(f"Summary {i}.",) for i in range(4)]
    custom = [{"body": "Some text here.", "tldr": ["one", "two"]}]
    write_jsonl(tmp_path / "c.jsonl", custom)
    loaded = load_examples(str(tmp_path / "c.jsonl"), document_column="body", summary_column="tldr")
    assert loaded[0].references == ("one", "two")


def test_bad_input_messages(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data: path './missing.jsonl' does not exist"):
        load_examples("./missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_examples(str(tmp_path / "empty.jsonl"))
    (tmp_path / "folder").mkdir()
    write_jsonl(tmp_path / "folder" / "train.jsonl", [{"article": "a", "highlights": "b"}])
    with pytest.raises(ValueError, match=r"split: 'test' not found .* has split files \['train'\]"):
        load_examples(str(tmp_path / "folder"), "test")
    write_jsonl(tmp_path / "cols.jsonl", [{"body": "a", "tldr": "b"}])
    with pytest.raises(ValueError, match=r"columns are \['body', 'tldr'\]; pass document_column"):
        load_examples(str(tmp_path / "cols.jsonl"))
    with pytest.raises(ValueError, match="column 'text' not found"):
        load_examples(str(tmp_path / "cols.jsonl"), document_column="text", summary_column="tldr")
    write_jsonl(tmp_path / "num.jsonl", [{"document": 3, "summary": "x"}])
    with pytest.raises(TypeError, match="column 'document' of row 0 .* must be a string"):
        load_examples(str(tmp_path / "num.jsonl"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        load_examples(str(tmp_path / "notes.txt"))


def test_empty_rows_are_skipped_counted_and_warned(tmp_path: Path) -> None:
    rows = [
        {"document": "Good document.", "summary": ["ok", ""]},
        {"document": "  ", "summary": "orphan"},
        {"document": "No summary here.", "summary": ""},
        {"document": "Fine again.", "summary": "fine"},
    ]
    write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.warns(UserWarning, match="skipped or dropped"):
        loaded = load_examples(str(tmp_path / "mixed.jsonl"))
    assert len(loaded) == 2
    assert loaded.skipped == {"empty_document": 1, "no_reference": 1, "empty_reference_dropped": 1}


def test_shards_are_every_nth_row_and_cover_the_split(scitldr_dir, tmp_path: Path) -> None:
    """An Ape-X actor's shard: every n-th row from row i, for a folder (datasets' own shard of
    the Arrow table), the built-in corpus and a single file with a holdout carve."""
    single = _rows_file(tmp_path / "all.jsonl", 23)
    for data, split, kw in (
        (str(scitldr_dir), "train", {}),
        ("builtin", "train", {}),
        (str(single), "train", {"holdout": 0.1}),
    ):
        whole = load_examples(data, split, **kw)
        shards = [load_examples(data, split, shard=(i, 3), **kw) for i in range(3)]
        for i, part in enumerate(shards):
            assert part.documents == whole.documents[i::3]
            assert f"shard {i} of 3" in part.source
        assert sum(len(p) for p in shards) == len(whole)
    for bad in ((3, 3), (-1, 2), (0, 0), [0, 2], (0.0, 2), (True, 2)):
        with pytest.raises(ValueError, match="shard: expected"):
            load_examples("builtin", "train", shard=bad)


def test_hub_presets_map_columns(monkeypatch) -> None:
    calls = []

    def fake_load_dataset(path, config=None, split=None, **kwargs):
        calls.append((path, config, split, kwargs))
        return datasets.Dataset.from_list(
            [
                {
                    "source": ["First sentence.", "Second one."],
                    "target": ["tldr a", "tldr b"],
                    "paper_id": "x",
                }
            ]
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data_mod._load_cached.cache_clear()
    loaded = load_examples("allenai/scitldr", "dev")
    assert calls == [("allenai/scitldr", "Abstract", "validation", {})]
    assert loaded[0].document == "First sentence. Second one."
    assert loaded[0].references == ("tldr a", "tldr b")
    assert loaded.source == "hub:allenai/scitldr/Abstract"
    load_examples("cnn_dailymail", "train", document_column="source", summary_column="target")
    assert calls[-1][:2] == ("abisee/cnn_dailymail", "3.0.0")
    data_mod._load_cached.cache_clear()


def test_hub_failure_says_what_was_tried(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    data_mod._load_cached.cache_clear()
    with pytest.raises(RuntimeError, match="not an existing local path.*ConnectionError"):
        load_examples("someone/some-dataset")
    data_mod._load_cached.cache_clear()


# --------------------------------------------------------------------------------------------
# A single file is one split; holdout carves validation and test from it


def _rows_file(path: Path, n: int) -> Path:
    rows = [
        {"document": f"document number {i} about a river", "summary": f"river {i}"}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_single_file_is_one_split(tmp_path: Path) -> None:
    file = _rows_file(tmp_path / "all.jsonl", 30)
    assert len(load_examples(str(file))) == 30  # no split named: it is the train split
    for split in ("test", "validation", "bogus"):
        with pytest.raises(ValueError, match=r"single file, so it is one split, 'train'.*holdout"):
            load_examples(str(file), split)
    test_file = _rows_file(tmp_path / "test.jsonl", 5)
    assert len(load_examples(str(test_file), "test")) == 5  # its name says which split
    with pytest.raises(ValueError, match="one split, 'test'"):
        load_examples(str(test_file), "train")


def test_holdout_carves_disjoint_seeded_splits(tmp_path: Path) -> None:
    file = _rows_file(tmp_path / "all.jsonl", 50)
    parts = {s: load_examples(str(file), s, holdout=0.1) for s in ("train", "validation", "test")}
    assert [len(p) for p in parts.values()] == [40, 5, 5]
    docs = {s: set(p.documents) for s, p in parts.items()}
    assert not (
        docs["train"] & docs["validation"]
        or docs["train"] & docs["test"]
        or docs["validation"] & docs["test"]
    )
    assert set().union(*docs.values()) == set(load_examples(str(file)).documents)
    assert "holdout 0.1, seed 0: train/validation/test 40/5/5" in parts["test"].source
    data_mod._load_cached.cache_clear()
    data_mod._file_examples.cache_clear()
    assert load_examples(str(file), "test", holdout=0.1).documents == parts["test"].documents
    with pytest.raises(ValueError, match="already has its splits"):
        load_examples("builtin", "train", holdout=0.1)
    with pytest.raises(ValueError, match=r"holdout: expected a number in \[0, 0.5\)"):
        load_examples(str(file), "train", holdout=0.5)


def test_non_utf8_file_names_the_byte_and_line(tmp_path: Path) -> None:
    file = tmp_path / "latin1.jsonl"
    file.write_bytes(
        b'{"document": "ok", "summary": "s"}\n{"document": "caf\xe9", "summary": "s"}\n'
    )
    with pytest.raises(ValueError, match=r"not valid UTF-8: byte 0xe9 at offset 52 \(line 2\)"):
        load_examples(str(file))


def test_local_files_print_no_progress_bars(tmp_path: Path, capfd) -> None:
    load_examples(str(_rows_file(tmp_path / "quiet.jsonl", 3)))
    assert "Generating" not in capfd.readouterr().err
