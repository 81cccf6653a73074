"""The environment's reward: a weighted sum of metrics, parsed from an expression.

``"rougeL"``, ``"rouge1+rouge2"``, ``"0.5*rouge1 + 0.5*bleu"`` or ``"rouge"`` (the mean of
ROUGE-1, ROUGE-2 and ROUGE-L). BLEU enters divided by 100, so every term lies in [0, 1]. Imports
no metric library: configuration code validates reward expressions with it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from textrl.scoring.sentence import METRICS

__all__ = ["ALIASES", "RewardSpec"]

_TERM_RE = re.compile(
    r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*\*\s*)?(?P<m>[A-Za-z0-9]+)\s*$"
)
ALIASES = {"rouge": {"rouge1": 1 / 3, "rouge2": 1 / 3, "rougeL": 1 / 3}}


@dataclass(frozen=True)
class RewardSpec:
    """A reward as a weighted sum of metrics; BLEU enters divided by 100.

    Parse from ``"rougeL"``, ``"rouge1+rouge2"``, ``"0.5*rouge1 + 0.5*bleu"``, ``"rouge"``
    (the mean of ROUGE-1, ROUGE-2 and ROUGE-L) or a mapping ``{"rouge1": 0.5, "bleu": 0.5}``.
    """

    weights: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str | Mapping[str, float] | RewardSpec) -> RewardSpec:
        if isinstance(spec, RewardSpec):
            return spec
        if isinstance(spec, Mapping):
            items = list(spec.items())
        elif isinstance(spec, str) and spec.strip():
            items = []
            for term in spec.split("+"):
                m = _TERM_RE.match(term)
                if m is None:
                    raise ValueError(
                        f"reward: cannot parse term {term!r} of {spec!r}; expected "
                        f"'metric' or 'weight*metric' with metrics {METRICS}"
                    )
                w = float(m["w"]) if m["w"] else 1.0
                if m["m"] in ALIASES:
                    items += [(k, w * v) for k, v in ALIASES[m["m"]].items()]
                else:
                    items.append((m["m"], w))
        else:
            raise ValueError(f"reward: expected a metric expression or mapping, got {spec!r}")
        merged: dict[str, float] = {}
        for name, w in items:
            if name not in METRICS:
                raise ValueError(
                    f"reward: unknown metric {name!r}; expected one of {METRICS} "
                    f"or {sorted(ALIASES)}"
                )
            if not isinstance(w, (int, float)) or w != w:
                raise ValueError(f"reward: weight of {name!r} must be a number, got {w!r}")
            merged[name] = merged.get(name, 0.0) + float(w)
        return cls(tuple(merged.items()))

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.weights)

    def __call__(self, values: Mapping[str, float]) -> float:
        total = 0.0
        for m, w in self.weights:
            total += w * (values[m] / 100.0 if m == "bleu" else values[m])
        return total

    def __str__(self) -> str:
        return " + ".join(f"{w:g}*{m}" for m, w in self.weights)
