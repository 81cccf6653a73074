"""What corpus scoring returns: :class:`CorpusScores` and :class:`PairedComparison`.

Plain result objects with their JSON (``to_dict``), terminal (``rows``) and Markdown
(``to_markdown``) forms; :mod:`textrl.scoring.corpus` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["METRIC_LABELS", "CorpusScores", "MetricComparison", "PairedComparison"]

METRIC_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rougeLsum": "ROUGE-Lsum",
}


@dataclass
class CorpusScores:
    """Corpus-level scores (x100) under both reference protocols; see the module docstring."""

    metrics: dict[str, float]
    """Against the first reference of each document."""
    metrics_max_ref: dict[str, float]
    """ROUGE: best reference per document; BLEU/chrF: corpus score with all references."""
    signatures: dict[str, str]
    """sacrebleu signatures (``bleu``, ``bleu_max_ref``, ``chrf``, ...) and ``rouge``."""
    n_documents: int
    n_references: int
    """References in all, over all documents."""
    n_empty_hypotheses: int
    """Hypotheses that are empty or white space only (they score 0 and are included)."""
    max_ref: str
    """How the ROUGE best reference is chosen: ``per_metric`` or ``rouge1``."""
    per_document: list[dict[str, Any]] | None = None
    confidence: dict[str, Any] | None = None
    """``{"metrics": {m: [low, high]}, "metrics_max_ref": {...}, "level", "n_samples",
    "seed"}`` when bootstrapped."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report: ``metrics``, ``metrics_max_ref``, counts, signatures, confidence."""
        out: dict[str, Any] = {
            "metrics": dict(self.metrics),
            "metrics_max_ref": dict(self.metrics_max_ref),
            "n_documents": self.n_documents,
            "n_references": self.n_references,
            "n_empty_predictions": self.n_empty_hypotheses,
            "max_ref": self.max_ref,
            "signatures": dict(self.signatures),
        }
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out

    def rows(self) -> list[tuple[str, str, str]]:
        """(label, first-reference value, best-reference value) per metric, 2 decimals, with
        the confidence interval in brackets when bootstrapped."""
        out = []
        for m in self.metrics:
            cells = []
            for key, values in (
                ("metrics", self.metrics),
                ("metrics_max_ref", self.metrics_max_ref),
            ):
                cell = f"{values[m]:.2f}"
                if self.confidence is not None:
                    low, high = self.confidence[key][m]
                    cell += f" [{low:.2f}, {high:.2f}]"
                cells.append(cell)
            out.append((METRIC_LABELS[m], cells[0], cells[1]))
        return out

    def to_markdown(self) -> str:
        """A Markdown table of both protocols with the counts and signatures under it."""
        best = (
            "best reference: per metric"
            if self.max_ref == "per_metric"
            else "best reference: by ROUGE-1"
        )
        lines = [
            f"| metric | first reference | {best} (BLEU/chrF: all references) |",
            "|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows()]
        lines += [
            "",
            f"{self.n_documents} documents, {self.n_references} references, "
            f"{self.n_empty_hypotheses} empty predictions (scored 0).",
        ]
        if self.confidence is not None:
            lines.append(
                f"Brackets: {100 * self.confidence['level']:.0f}% bootstrap confidence "
                f"interval ({self.confidence['n_samples']} resamples, "
                f"seed {self.confidence['seed']})."
            )
        lines += ["", "Signatures:", ""] + [f"- {k}: `{v}`" for k, v in self.signatures.items()]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MetricComparison:
    """One metric of a paired comparison; ``difference = b - a`` (x100 scale)."""

    a: float
    b: float
    difference: float
    ci: tuple[float, float]
    """95% percentile-bootstrap interval of ``b - a``."""
    p_value: float
    """Paired bootstrap p-value of ``|b - a|`` (sacrebleu / Moses)."""


@dataclass
class PairedComparison:
    """Paired bootstrap comparison of two systems on the same documents and references."""

    metrics: dict[str, MetricComparison]
    metrics_max_ref: dict[str, MetricComparison]
    n_documents: int
    n_samples: int
    seed: int | None
    signatures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def block(d: dict[str, MetricComparison]) -> dict[str, dict[str, Any]]:
            return {
                m: {
                    "a": c.a,
                    "b": c.b,
                    "difference": c.difference,
                    "ci": list(c.ci),
                    "p_value": c.p_value,
                }
                for m, c in d.items()
            }

        return {
            "metrics": block(self.metrics),
            "metrics_max_ref": block(self.metrics_max_ref),
            "n_documents": self.n_documents,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "signatures": dict(self.signatures),
        }
