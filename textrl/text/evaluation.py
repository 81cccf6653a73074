"""Evaluating a text agent: during training (:func:`greedy_scores`) and after it
(:func:`evaluate_run`, what ``textrl eval`` prints).

:func:`greedy_scores` decodes the first documents of a split greedily and scores them with the
libraries (:class:`~textrl.scoring.sentence.SentenceScorer`) under the training reward: the
number that picks the best weights.

Scores come from :mod:`textrl.scoring` (the same layer as ``textrl score``): corpus BLEU with its
signature and ROUGE-1/2/L/Lsum F1 x100, against the first reference (``metrics``) and against
the best reference per document (``metrics_max_ref``). Baselines on the same documents:

- ``random``: tokens drawn uniformly inside each episode's action mask until end-of-sequence or
  ``max_new_tokens`` (seeded);
- ``lead1``: the document's first sentence (:func:`textrl.scoring.sentence.split_sentences`);
- ``mle``: the run's warm-start weights (``mle.safetensors``), decoded like the agent; the
  report's ``agent_vs_mle`` is a paired bootstrap of the agent against it (difference, 95%
  interval, p-value per metric and protocol): whether the DQN phase improved on its warm start.

``against=OTHER_RUN`` decodes the same documents with another run's weights (its own decoding
rule unless ``no_repeat_ngram`` is given), reports its scores as ``against`` and the same paired
bootstrap of this run against it as ``agent_vs_against`` (e.g. DQN against SCST from the same
warm start).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from textrl.data import Example
from textrl.dqn.checkpoints import RunDir, unpack_network_state
from textrl.dqn.core import torch_threads
from textrl.envs.summarize import SummarizeEnv
from textrl.scoring.sentence import MetricConfig, SentenceScorer, split_sentences
from textrl.text.build import build_network, make_env
from textrl.text.config import WEIGHTS, TextConfig, with_old_defaults
from textrl.text.decoding import TextAgent


def greedy_scores(
    agent: TextAgent, env: SummarizeEnv, n_docs: int | None, no_repeat_ngram: int = 0
) -> dict[str, float]:
    """Greedy decoding (without repeated ``no_repeat_ngram``-grams when > 0) of ``env``'s first
    ``n_docs`` documents (all: None), scored by the libraries: ``eval_<metric>`` means,
    ``eval_score`` (the reward) and ``eval_length`` (words)."""
    examples = env.examples[:n_docs]
    with torch_threads(1):
        texts = agent.generate([e.document for e in examples], no_repeat_ngram=no_repeat_ngram)
    scorer = SentenceScorer(env.reward_spec.metrics, env.metric_config)
    values = [scorer.score(t, list(e.references)) for t, e in zip(texts, examples)]
    out = {f"eval_{m}": float(np.mean([v[m] for v in values])) for m in values[0]}
    out["eval_score"] = float(np.mean([env.reward_spec(v) for v in values]))
    out["eval_length"] = float(np.mean([len(t.split()) for t in texts]))
    return out


def run_no_repeat_ngram(cfg: TextConfig, no_repeat_ngram: int | None, beam: int) -> int:
    """``no_repeat_ngram`` when given, else as the run's evaluations decoded: its config's
    value, 0 with beam search (which does not support it)."""
    if no_repeat_ngram is not None:
        return no_repeat_ngram
    return cfg.no_repeat_ngram if beam <= 1 else 0


def load_text_run(
    run_dir: str | Path, weights: str = "best", data: str | None = None, split: str | None = "test"
) -> tuple[TextConfig, SummarizeEnv, TextAgent]:
    """(config, env on ``data``/``split``, agent with the chosen weights) of a text run.

    ``split=None`` loads no data (for decoding given documents only)."""
    from safetensors.torch import load_file

    run = RunDir(run_dir)
    saved = run.load_config()
    if saved.get("kind") != "text":
        raise ValueError(
            f"run: {str(run_dir)!r} is not a text run (config kind "
            f"{saved.get('kind', saved.get('env_id'))!r})"
        )
    saved.pop("kind")
    # Settings the run folder predates take the values it ran with, not today's defaults: a run
    # saved before 2026-12-06 chose its best weights by, and is evaluated with, the plain argmax.
    saved = with_old_defaults(saved)
    # Settings an older textrl wrote and this one no longer has (e.g. gym-only fields) are
    # ignored; settings it did not have take their defaults.
    known = {f.name for f in dataclasses.fields(TextConfig)}
    cfg = TextConfig(**{k: v for k, v in saved.items() if k in known})
    if data is not None and data != cfg.data:
        cfg.data, cfg.holdout = data, 0.0  # the run's holdout carved its own data only
    tokenizer = None
    if (run.path / "tokenizer" / "tokenizer.json").is_file():
        tokenizer = str(run.path / "tokenizer")
    placeholder = [Example("No data loaded.", ("No data loaded.",))] if split is None else None
    env = make_env(cfg, split or "train", tokenizer=tokenizer, data=placeholder)
    net = build_network(cfg, env)
    if weights not in WEIGHTS:
        raise ValueError(f"weights: expected one of {WEIGHTS}, got {weights!r}")
    if weights == "final":
        ckpt = run.load_latest()
        if ckpt is None:
            raise FileNotFoundError(f"run: no checkpoint in {str(run_dir)!r}")
        # the weights its evaluations decode: the moving average when the run keeps one
        state = unpack_network_state(ckpt.model_state, "average") or unpack_network_state(
            ckpt.model_state, "online"
        )
    else:
        path = run.path / f"{weights}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"run: {str(path)!r} not found (weights {weights!r})")
        state = load_file(str(path))
    net.load_state_dict(state)
    net.eval()
    return cfg, env, TextAgent(net, env)


def random_summaries(env, documents: list[str], seed: int = 0) -> list[str]:
    """Uniform random tokens inside each document's action mask (the ``random`` baseline)."""
    rng = np.random.default_rng(seed)
    out = []
    for doc in documents:
        _, mask = env.source_and_mask(doc)
        legal = np.flatnonzero(mask)
        ids = []
        for _ in range(env.max_new_tokens):
            a = int(legal[rng.integers(len(legal))])
            if a == env.eos_action:
                break
            ids.append(int(env.action_token_ids[a]))
        out.append(env.tokenizer.decode(ids))
    return out


def lead1(documents: list[str]) -> list[str]:
    """The first sentence of each document (the ``lead1`` baseline)."""
    return [(split_sentences(d) or [""])[0] for d in documents]


def _blocks(
    predictions: list[str], references: list[tuple[str, ...]], config: MetricConfig
) -> dict[str, Any]:
    from textrl.scoring import score_corpus

    scores = score_corpus(predictions, [list(r) for r in references], config=config)
    d = scores.to_dict()
    return {k: d[k] for k in ("metrics", "metrics_max_ref", "signatures", "n_empty_predictions")}


def _decoding(beam: int, no_repeat_ngram: int) -> str:
    return ("greedy" if beam <= 1 else f"beam-{beam}") + (
        f", no-repeat-{no_repeat_ngram}-gram" if no_repeat_ngram else ""
    )


def _paired(
    baseline: list[str],
    predictions: list[str],
    references: list[tuple[str, ...]],
    config: MetricConfig,
    seed: int,
) -> dict[str, Any]:
    """Paired bootstrap of ``predictions`` minus ``baseline`` on the same documents (R-1/2/L,
    BLEU; both protocols), or ``{"identical": True}`` when the two decoded the same texts."""
    from textrl.scoring import paired_comparison

    if baseline == predictions:  # (sacrebleu's test would say p = 1/(n+1) here)
        return {"identical": True}
    return paired_comparison(
        baseline,
        predictions,
        [list(r) for r in references],
        config=config,
        metrics=("rouge1", "rouge2", "rougeL", "bleu"),
        seed=seed,
    ).to_dict()


def evaluate_run(
    run_dir: str | Path,
    data: str | None = None,
    split: str = "test",
    weights: str = "best",
    beam: int = 1,
    limit: int | None = None,
    baselines: bool = True,
    seed: int = 0,
    out: str | Path | None = None,
    no_repeat_ngram: int | None = None,
    against: str | Path | None = None,
    against_weights: str = "best",
) -> dict[str, Any]:
    """Decode ``split`` with the run's policy, score it and its baselines; write the report.

    ``no_repeat_ngram``: None decodes as the run's evaluations did (its config's
    ``no_repeat_ngram``; 0 with beam search, which does not support it). ``against``: another
    text run, decoded on the same documents with its ``against_weights`` and compared to this
    one by a paired bootstrap (``agent_vs_against``: agent minus it)."""
    for name, value, low in (
        ("limit", limit, 1),
        ("beam", beam, 1),
        ("no_repeat_ngram", no_repeat_ngram, 0),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if against is not None and against_weights not in WEIGHTS:
        raise ValueError(f"against_weights: expected one of {WEIGHTS}, got {against_weights!r}")
    cfg, env, agent = load_text_run(run_dir, weights, data, split)
    other: tuple[TextAgent, int] | None = None
    if against is not None:  # loaded before the long decoding: a wrong path fails at once
        other_cfg, _, other_agent = load_text_run(against, against_weights, split=None)
        other = (other_agent, run_no_repeat_ngram(other_cfg, no_repeat_ngram, beam))
    no_repeat_ngram = run_no_repeat_ngram(cfg, no_repeat_ngram, beam)
    examples = list(env.examples)[:limit] if limit else list(env.examples)
    documents = [e.document for e in examples]
    references = [e.references for e in examples]
    predictions = agent.generate(documents, beam=beam, no_repeat_ngram=no_repeat_ngram)
    config = env.metric_config
    report: dict[str, Any] = {
        "run": str(run_dir),
        "weights": weights,
        "data": cfg.data,
        "split": split,
        "decoding": _decoding(beam, no_repeat_ngram),
        "n_documents": len(examples),
        **_blocks(predictions, references, config),
        "baselines": {},
    }
    if baselines:
        report["baselines"]["random"] = _blocks(
            random_summaries(env, documents, seed), references, config
        )
        report["baselines"]["lead1"] = _blocks(lead1(documents), references, config)
        if weights != "mle" and (Path(run_dir) / "mle.safetensors").is_file():
            _, _, mle_agent = load_text_run(run_dir, "mle", data, split)
            mle_texts = mle_agent.generate(documents, beam=beam, no_repeat_ngram=no_repeat_ngram)
            report["baselines"]["mle"] = _blocks(mle_texts, references, config)
            # Did the DQN phase improve on its own warm start? A paired bootstrap says how sure.
            report["agent_vs_mle"] = _paired(mle_texts, predictions, references, config, seed)
    if other is not None:
        other_agent, other_no_repeat = other
        other_texts = other_agent.generate(documents, beam=beam, no_repeat_ngram=other_no_repeat)
        report["against"] = {
            "run": str(against),
            "weights": against_weights,
            "decoding": _decoding(beam, other_no_repeat),
            **_blocks(other_texts, references, config),
        }
        report["agent_vs_against"] = _paired(other_texts, predictions, references, config, seed)
    report["examples"] = [
        {"document": d[:300], "prediction": p, "references": list(r)}
        for d, p, r in zip(documents[:5], predictions[:5], references[:5])
    ]
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        out.with_suffix(".md").write_text(report_markdown(report), encoding="utf-8")
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """A Markdown table of the agent and baselines, both protocols."""
    cols = ["rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"]
    lines = [
        f"# textrl eval: {report['run']} on {report['data']} / {report['split']} "
        f"({report['n_documents']} documents, {report['decoding']})",
        "",
    ]
    for block, title in (
        ("metrics", "against the first reference"),
        ("metrics_max_ref", "best reference per document (multi-max)"),
    ):
        lines += [
            f"## {title}",
            "",
            "| system | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        rows = [("agent", report)] + list(report.get("baselines", {}).items())
        if "against" in report:
            rows.append((f"against ({report['against']['run']})", report["against"]))
        for name, r in rows:
            vals = r.get(block, {})
            lines.append(
                f"| {name} | "
                + " | ".join(f"{vals[c]:.2f}" if c in vals else "-" for c in cols)
                + " |"
            )
        lines.append("")
    sections = [
        (
            "agent_vs_mle",
            "its MLE warm start",
            "mle",
            "its MLE warm start's (e.g. the best weights are the warm start's)",
        )
    ]
    if "against" in report:
        other = f"the {report['against']['weights']} weights of {report['against']['run']}"
        sections.append(("agent_vs_against", other, "against", "those of " + other))
    for key, title, column, owner in sections:
        lines += _paired_markdown(report.get(key), title, column, owner)
    sig = report.get("signatures")
    if sig:
        lines += ["Signatures: " + "; ".join(f"{k}: {v}" for k, v in sig.items()), ""]
    return "\n".join(lines)


def _paired_markdown(
    paired: dict[str, Any] | None, title: str, column: str, owner: str
) -> list[str]:
    """The report's section for one paired comparison (none when it was not made)."""
    if not paired:
        return []
    if paired.get("identical"):
        return [f"The agent's outputs are identical to {owner}.", ""]
    lines = [
        f"## agent minus {title} (paired bootstrap, {paired['n_samples']} resamples)",
        "",
        f"| protocol | metric | agent − {column} | 95% CI | p |",
        "|---|---|---:|---|---:|",
    ]
    for block, name in (("metrics", "first reference"), ("metrics_max_ref", "multi-max")):
        for metric, c in paired[block].items():
            lines.append(
                f"| {name} | {metric} | {c['difference']:+.2f} | "
                f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}] | {c['p_value']:.3f} |"
            )
    return lines + [""]
