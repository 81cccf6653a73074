"""Shared test fixtures: an isolated cache folder and the real SciTLDR-A files when present."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from textrl.data import load_examples

# Trained tokenizers are cached on disk; keep the tests' copies out of the user's cache.
os.environ.setdefault("TEXTRL_CACHE", tempfile.mkdtemp(prefix="textrl-test-cache-"))

SCITLDR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scitldr-a"


@pytest.fixture(scope="session")
def scitldr_dir() -> Path:
    if not (SCITLDR / "test.jsonl").is_file():
        pytest.skip(
            f"SciTLDR-A files not found at {SCITLDR} (they exist on developer and CI machines only)"
        )
    return SCITLDR


@pytest.fixture(scope="session")
def scitldr_rows(scitldr_dir: Path) -> dict[str, list[dict]]:
    return {
        split: [json.loads(line) for line in (scitldr_dir / f"{split}.jsonl").open()]
        for split in ("train", "dev", "test")
    }


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A small jsonl corpus (40/10/10 built-in examples) in train/validation/test files."""
    folder = tmp_path_factory.mktemp("tiny-data")
    for split, n in (("train", 40), ("validation", 10), ("test", 10)):
        rows = [
            {"document": e.document, "summary": e.references[0]}
            for e in load_examples("builtin", split)[:n]
        ]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
