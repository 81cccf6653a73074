"""Smoke tests of ``textrl score``: the real command in a subprocess on small files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from textrl.scoring import score_corpus

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scitldr-a"

HYPS = ["The cat sat on the mat.", "", "Researchers propose a new method."]
REFS = [
    ["A cat sat on the mat.", "The cat was on a mat."],
    ["Nothing here."],
    ["We propose a new method for training. It is fast."],
]


def textrl_score(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "textrl.cli", "score", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "pred_txt": write_lines(tmp_path / "pred.txt", HYPS),
        "pred_jsonl": write_lines(
            tmp_path / "pred.jsonl",
            [json.dumps({"prediction": h, "id": i}) for i, h in enumerate(HYPS)],
        ),
        "refs_jsonl": write_lines(
            tmp_path / "refs.jsonl", [json.dumps(r if len(r) > 1 else r[0]) for r in REFS]
        ),
        "refs_txt": write_lines(tmp_path / "refs.txt", [r[0] for r in REFS]),
    }


def test_table_json_markdown_and_csv(files, tmp_path) -> None:
    out, per_doc = tmp_path / "out" / "report.json", tmp_path / "out" / "docs.csv"
    proc = textrl_score(
        files["pred_txt"], "--refs", files["refs_jsonl"], "--out", out, "--csv", per_doc
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("BLEU", "chrF", "ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"):
        assert label in proc.stdout
    assert "3 documents" in proc.stdout and "1 empty predictions" in proc.stdout

    report = json.loads(out.read_text())
    assert {
        "metrics",
        "metrics_max_ref",
        "signatures",
        "n_documents",
        "n_empty_predictions",
    } <= set(report)
    assert report["n_documents"] == 3 and report["n_empty_predictions"] == 1
    expected = score_corpus(HYPS, REFS)
    assert report["metrics"] == expected.metrics
    assert report["metrics_max_ref"] == expected.metrics_max_ref
    assert "| ROUGE-1 |" in out.with_suffix(".md").read_text()

    with per_doc.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert rows[1]["empty_prediction"] == "True" and float(rows[1]["rouge1"]) == 0.0
    assert rows[0]["n_references"] == "2" and "rougeLsum_max_ref" in rows[0]


def test_jsonl_predictions_and_text_references(files) -> None:
    proc = textrl_score(
        files["pred_jsonl"], "--refs", files["refs_txt"], "--metrics", "rouge1,bleu"
    )
    assert proc.returncode == 0, proc.stderr
    expected = score_corpus(HYPS, [r[0] for r in REFS], metrics=["rouge1", "bleu"])
    assert f"{expected.metrics['rouge1']:.2f}" in proc.stdout
    assert "ROUGE-2" not in proc.stdout


def test_several_reference_files_give_several_references(files, tmp_path) -> None:
    second = write_lines(tmp_path / "refs2.txt", [r[1] if len(r) > 1 else "" for r in REFS])
    out = tmp_path / "r.json"
    proc = textrl_score(files["pred_txt"], "--refs", files["refs_txt"], second, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (
        json.loads(out.read_text())["metrics_max_ref"] == score_corpus(HYPS, REFS).metrics_max_ref
    )


def test_bootstrap_and_options(files, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = textrl_score(
        files["pred_txt"],
        "--refs",
        files["refs_jsonl"],
        "--out",
        out,
        "--bootstrap",
        "50",
        "--seed",
        "3",
        "--no-stemmer",
        "--lsum-split",
        "newline",
        "--max-ref",
        "rouge1",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["confidence"]["n_samples"] == 50 and report["confidence"]["seed"] == 3
    assert (
        "nostem" in report["signatures"]["rouge"]
        and "max_ref:rouge1" in report["signatures"]["rouge"]
    )
    assert "[" in proc.stdout  # intervals in the table


def test_builtin_data_references(tmp_path) -> None:
    from textrl.data import load_examples

    examples = load_examples("builtin", "test")
    pred = write_lines(tmp_path / "lead.txt", [e.document.split(". ")[0] for e in examples])
    proc = textrl_score(pred, "--data", "builtin", "--split", "test", "--metrics", "rouge1")
    assert proc.returncode == 0, proc.stderr
    assert f"{len(examples)} documents" in proc.stdout


def test_count_mismatch_names_both_counts_and_files(files, tmp_path) -> None:
    short = write_lines(tmp_path / "short.txt", HYPS[:2])
    proc = textrl_score(short, "--refs", files["refs_jsonl"])
    assert proc.returncode == 2
    assert proc.stderr.startswith("textrl score: error: count mismatch")
    assert "short.txt has 2 predictions" in proc.stderr
    assert "refs.jsonl has 3 reference rows" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_error(files, tmp_path, content) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(content)
    proc = textrl_score(empty, "--refs", files["refs_jsonl"])
    assert proc.returncode == 2
    assert "textrl score: error: predictions: file" in proc.stderr and "is empty" in proc.stderr


def test_bad_encoding_error(files, tmp_path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok line\ncaf\u00e9 au lait\n".encode("latin-1"))
    proc = textrl_score(bad, "--refs", files["refs_jsonl"])
    assert proc.returncode == 2
    assert "latin1.txt" in proc.stderr and "not valid UTF-8" in proc.stderr
    assert "offset 11 (line 2)" in proc.stderr


def test_missing_file_and_bad_jsonl_errors(files, tmp_path) -> None:
    proc = textrl_score(tmp_path / "nope.txt", "--refs", files["refs_jsonl"])
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    bad = write_lines(tmp_path / "bad.jsonl", ['{"prediction": "a"}', '{"output": "b"}'])
    proc = textrl_score(bad, "--refs", files["refs_jsonl"])
    assert proc.returncode == 2
    assert "line 2" in proc.stderr and "'prediction'" in proc.stderr
    gap = write_lines(tmp_path / "gap.jsonl", ['"a"', "", '"c"'])
    proc = textrl_score(gap, "--refs", files["refs_jsonl"])
    assert proc.returncode == 2 and "line 2" in proc.stderr and "blank" in proc.stderr
    no_ref = write_lines(tmp_path / "noref.jsonl", ['"a"', "[]", '"c"'])
    proc = textrl_score(files["pred_txt"], "--refs", no_ref)
    assert proc.returncode == 2 and "row 2" in proc.stderr


def test_requires_a_reference_source(files) -> None:
    proc = textrl_score(files["pred_txt"])
    assert proc.returncode == 2 and "--refs" in proc.stderr


def test_lead1_baseline_command(tmp_path) -> None:
    """The documented reproduction of the SciTLDR-A lead-1 baseline (README of the data):
    ``textrl score lead1.txt --data ../shared/data/scitldr-a --split test --max-ref rouge1``."""
    path = DATA / "test.jsonl"
    if not path.exists():
        pytest.skip(f"SciTLDR-A data not found at {path} (present on developer machines and CI)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    # One prediction per line: white space (including newlines inside a sentence) collapsed.
    pred = write_lines(tmp_path / "lead1.txt", [" ".join(r["source"][0].split()) for r in rows])
    out = tmp_path / "lead1.json"
    proc = textrl_score(
        pred,
        "--data",
        DATA,
        "--split",
        "test",
        "--max-ref",
        "rouge1",
        "--out",
        out,
        "--metrics",
        "rouge1,rouge2,rougeL",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    r = ("rouge1", "rouge2", "rougeL")
    assert tuple(round(report["metrics"][m], 1) for m in r) == (25.8, 9.3, 20.1)
    assert tuple(round(report["metrics_max_ref"][m], 1) for m in r) == (31.3, 11.4, 24.1)
