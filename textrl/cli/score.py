"""``textrl score``: score predictions against references from the command line.

Inputs, aligned row by row:

- ``PRED``: a ``.jsonl`` file (one JSON value per line: a string, or an object whose first
  present field of ``prediction``, ``summary``, ``text`` is a string) or any other file read as
  plain UTF-8 text, one prediction per line (an empty line is an empty prediction: it scores 0
  and is counted).
- ``--refs FILE [FILE ...]``: ``.jsonl`` (per line a string, a list of strings, or an object
  with ``references``, ``target`` or ``summary`` holding either) or plain text, one reference
  per line. Several files give several references per row (as sacrebleu's ``-r a b``); empty
  references are dropped, and every row needs at least one.
- ``--data DATA --split SPLIT``: any dataset :func:`textrl.data.load_examples` loads (built-in,
  hub name, local path); its references, in row order.

Output: a table on the terminal; ``--out report.json`` (keys ``metrics``, ``metrics_max_ref``,
``signatures``, ``n_documents``, ``n_empty_predictions``, ``confidence`` when bootstrapped) with
a Markdown table beside it (``report.md``); ``--csv`` writes one row per document.
See :mod:`textrl.scoring` for what each number is.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from textrl.cli.options import non_negative_int

PREDICTION_FIELDS = ("prediction", "summary", "text")
REFERENCE_FIELDS = ("references", "target", "summary")


def register(subparsers: Any) -> None:
    """Add the ``score`` sub-command to the ``textrl`` parser."""
    from textrl.scoring.corpus import CORPUS_METRICS, DEFAULT_SEED, MAX_REF_SELECTIONS

    p = subparsers.add_parser(
        "score",
        help="score predictions against references (BLEU, chrF, ROUGE)",
        description="Corpus BLEU/chrF (sacrebleu) and ROUGE-1/2/L/Lsum F1 (rouge-score, mean "
        "over documents) x100, against the first reference and against the best reference per "
        "document (BLEU/chrF: all references).",
    )
    p.add_argument(
        "predictions",
        metavar="PRED",
        help="predictions: .jsonl (string, or object with a "
        f"{'/'.join(PREDICTION_FIELDS)} field) or text, one per line",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--refs",
        nargs="+",
        metavar="FILE",
        help="reference file(s): .jsonl (string, list, or object with a "
        f"{'/'.join(REFERENCE_FIELDS)} field) or text, one per line; several "
        "files give several references per row (put PRED before --refs)",
    )
    src.add_argument(
        "--data",
        help="dataset with the references: 'builtin', a hub name or a local path (see textrl.data)",
    )
    p.add_argument(
        "--split",
        default=None,
        help="split of --data (default: a single file's own split, see textrl.data; else test)",
    )
    p.add_argument("--document-column", help="document column of --data")
    p.add_argument("--summary-column", help="reference column of --data")
    p.add_argument("--out", help="write the JSON report here, and a Markdown table beside it")
    p.add_argument("--csv", help="write per-document scores to this CSV file")
    p.add_argument(
        "--metrics",
        default=",".join(CORPUS_METRICS),
        help=f"comma-separated subset of {','.join(CORPUS_METRICS)}",
    )
    p.add_argument(
        "--max-ref",
        choices=MAX_REF_SELECTIONS,
        default="per_metric",
        help="ROUGE best reference: per metric (rouge-score score_multi, default) or "
        "one per document by ROUGE-1 (the SciTLDR multi-max protocol)",
    )
    p.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="add 95%% confidence intervals from N bootstrap resamples",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    p.add_argument("--no-stemmer", action="store_true", help="ROUGE without Porter stemming")
    p.add_argument(
        "--cjk",
        action="store_true",
        help="CJK characters as ROUGE tokens and sacrebleu's zh BLEU tokenizer",
    )
    p.add_argument(
        "--lsum-split",
        choices=("sentences", "newline"),
        default="sentences",
        help="ROUGE-Lsum sentence boundaries: 'sentences' (default) splits at "
        "newlines, after . ! ? followed by white space and after 。！？; 'newline' "
        "keeps the text's own newlines only",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score, print the table, write the requested files; returns the exit code."""
    from textrl.scoring import score_corpus
    from textrl.scoring.sentence import MetricConfig

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    config = MetricConfig(use_stemmer=not args.no_stemmer, cjk=args.cjk, lsum_split=args.lsum_split)
    predictions = read_predictions(args.predictions)
    if args.refs:
        references, ref_source = read_references(args.refs), " + ".join(args.refs)
    else:
        references, ref_source = load_dataset_references(args), f"{args.data} ({args.split})"
    if len(predictions) != len(references):
        raise ValueError(
            f"count mismatch: {args.predictions} has {len(predictions)} predictions "
            f"but {ref_source} has {len(references)} reference rows; they must "
            "align row by row"
        )
    scores = score_corpus(
        predictions,
        references,
        metrics=metrics,
        config=config,
        max_ref=args.max_ref,
        per_document=bool(args.csv),
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    print(format_table(scores, args.predictions, ref_source))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {**scores.to_dict(), "predictions": args.predictions, "references": ref_source}
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        md = out.with_suffix(".md")
        md.write_text(
            f"# Scores of `{args.predictions}` against `{ref_source}`\n\n" + scores.to_markdown(),
            encoding="utf-8",
        )
        print(f"wrote {out} and {md}")
    if args.csv:
        write_csv(Path(args.csv), scores.per_document or [])
        print(f"wrote {args.csv}")
    return 0


def format_table(scores: Any, predictions: str, references: str) -> str:
    """The terminal table of a :class:`textrl.scoring.CorpusScores`."""
    best = "best ref" if scores.max_ref == "per_metric" else "best ref (R-1)"
    rows = [("metric", "first ref", best + " / all refs")] + scores.rows()
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    lines = [f"textrl score: {predictions} vs {references}"]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        f"{scores.n_documents} documents, {scores.n_references} references, "
        f"{scores.n_empty_hypotheses} empty predictions (scored 0)"
    )
    lines += [f"{k}: {v}" for k, v in scores.signatures.items()]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_text(path: str, what: str) -> str:
    """The whole file as strict UTF-8 (a leading BOM is dropped), with errors that name it."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what}: file {path!r} does not exist")
    if p.is_dir():
        raise ValueError(f"{what}: {path!r} is a folder, expected a file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{what}: {path!r} is not valid UTF-8: byte {raw[exc.start]:#04x} at "
            f"offset {exc.start} (line {line}); re-encode the file as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ValueError(f"{what}: file {path!r} is empty")
    return text


def read_lines(path: str, what: str) -> list[str]:
    """One entry per line; only ``\\n`` (and ``\\r\\n``) end a line, a final newline is optional."""
    text = read_text(path, what)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_jsonl(path: str, what: str) -> list[tuple[int, Any]]:
    """``(line number, value)`` per JSON line; blank lines are allowed only at the end."""
    lines = read_lines(path, what)
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(
                f"{what}: line {n} of {path!r} is blank; JSON lines need one value "
                'per line (write "" for an empty one)'
            )
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what}: line {n} of {path!r} is not valid JSON: {exc}") from None
    return out


def _field(value: Any, fields: tuple[str, ...], path: str, n: int, what: str) -> Any:
    if isinstance(value, dict):
        for name in fields:
            if name in value:
                return value[name]
        raise ValueError(
            f"{what}: line {n} of {path!r} is an object without any of the fields "
            f"{list(fields)}; it has {sorted(value)[:10]}"
        )
    return value


def read_predictions(path: str) -> list[str]:
    """Predictions from ``.jsonl`` or plain text (see the module docstring)."""
    if not path.lower().endswith(".jsonl"):
        return read_lines(path, "predictions")
    out = []
    for n, value in read_jsonl(path, "predictions"):
        text = _field(value, PREDICTION_FIELDS, path, n, "predictions")
        if not isinstance(text, str):
            raise TypeError(
                f"predictions: line {n} of {path!r}: expected a string, got "
                f"{type(text).__name__}: {text!r:.60}"
            )
        out.append(text)
    return out


def read_references(paths: list[str]) -> list[list[str]]:
    """Per row, the non-empty references from all files (see the module docstring)."""
    columns = [_read_reference_file(p) for p in paths]
    counts = {p: len(c) for p, c in zip(paths, columns)}
    if len(set(counts.values())) > 1:
        raise ValueError(f"count mismatch between reference files: {counts}")
    rows = [[r for col in columns for r in col[i] if r.strip()] for i in range(len(columns[0]))]
    for i, row in enumerate(rows):
        if not row:
            raise ValueError(
                f"references: row {i + 1} of {' + '.join(paths)} has no non-empty reference"
            )
    return rows


def _read_reference_file(path: str) -> list[list[str]]:
    if not path.lower().endswith(".jsonl"):
        return [[line] for line in read_lines(path, "references")]
    out = []
    for n, value in read_jsonl(path, "references"):
        refs = _field(value, REFERENCE_FIELDS, path, n, "references")
        refs = [refs] if isinstance(refs, str) else refs
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise TypeError(
                f"references: line {n} of {path!r}: expected a string or a list of "
                f"strings, got {refs!r:.60}"
            )
        out.append(refs)
    return out


def load_dataset_references(args: argparse.Namespace) -> list[list[str]]:
    """The references of ``--data``/``--split``; rows the loader skipped would break the row
    alignment, so they are an error."""
    import warnings

    from textrl.data import load_examples
    from textrl.data.loading import file_split

    split = args.split or (file_split(args.data) if Path(args.data).is_file() else "test")
    args.split = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples = load_examples(
            args.data,
            split,
            document_column=args.document_column,
            summary_column=args.summary_column,
        )
    dropped = {k: v for k, v in examples.skipped.items() if k != "empty_reference_dropped"}
    if dropped:
        raise ValueError(
            f"data: {examples.source} has rows without a document or a reference "
            f"({dropped}), so predictions cannot be aligned with its rows; export "
            "the references to a file and pass --refs"
        )
    return [list(r) for r in examples.references]
