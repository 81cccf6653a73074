"""Building a text run's parts from its :class:`~textrl.text.config.TextConfig`.

The one place that turns settings into an environment (:func:`make_env`), a Q-network
(:func:`build_network`) and, with ``init_encoder``, a pretrained encoder whose shape and
tokenizer the settings take over (:func:`apply_init_encoder`). Training, evaluation and
decoding all build through here, so a run is rebuilt from its ``config.json`` exactly.
"""

from __future__ import annotations

from typing import Any

from textrl.envs.summarize import SummarizeEnv
from textrl.text.config import TextConfig
from textrl.text.qnetwork import QNetConfig, QNetwork

__all__ = ["apply_init_encoder", "build_network", "check_reward_signal", "make_env"]


def make_env(
    cfg: TextConfig,
    split: str,
    tokenizer: Any = None,
    action_mask: str | None = None,
    data: Any = None,
) -> SummarizeEnv:
    """The training/evaluation environment of ``cfg`` (``data`` overrides ``cfg.data``)."""
    return SummarizeEnv(
        data=cfg.data if data is None else data,
        split=split,
        reward=cfg.reward,
        dense=True,
        max_new_tokens=cfg.max_new_tokens,
        max_source_tokens=cfg.max_source_tokens,
        tokenizer=tokenizer if tokenizer is not None else cfg.tokenizer,
        vocab_size=cfg.vocab_size,
        action_mask=action_mask or cfg.action_mask,
        final_scores="reward",
        document_column=cfg.document_column,
        summary_column=cfg.summary_column,
        holdout=cfg.holdout,
        use_stemmer=cfg.use_stemmer,
        cjk=cfg.cjk,
        lsum_split=cfg.lsum_split,
    )


def build_network(cfg: TextConfig, env: SummarizeEnv) -> QNetwork:
    """The Q-network of ``cfg`` over ``env``'s tokenizer and action table."""
    return QNetwork(
        QNetConfig(
            vocab_size=env.tokenizer.vocab_size,
            action_token_ids=env.action_token_ids.tolist(),
            pad_id=env.pad_id,
            sep_id=env.tokenizer.sep_id,
            d_model=cfg.d_model,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_ff=cfg.d_ff,
            max_source_tokens=cfg.max_source_tokens,
            max_new_tokens=cfg.max_new_tokens,
            head="dueling" if cfg.dueling else cfg.q_head,
            tau=cfg.soft_tau,
            copy=cfg.copy and not cfg.dueling and cfg.q_head == "soft",
            copy_features=cfg.copy_features,
            post_ln=cfg.post_ln,
            ln_eps=cfg.ln_eps,
            activation=cfg.activation,
        )
    )


def apply_init_encoder(cfg: TextConfig) -> Any:
    """With ``cfg.init_encoder``: load the encoder, copy its shape (and, unless one is given,
    its tokenizer) into ``cfg``, and return it for :func:`textrl.text.pretrained.
    load_encoder_weights`; else ``None``."""
    if not cfg.init_encoder:
        return None
    from textrl.text.pretrained import encoder_settings, load_encoder

    encoder = load_encoder(cfg.init_encoder)
    for name, value in encoder_settings(encoder).items():
        setattr(cfg, name, value)
    cfg.tokenizer = cfg.tokenizer or cfg.init_encoder
    return encoder


def check_reward_signal(env: SummarizeEnv, n: int = 100) -> float:
    """The mean reward of the first ``n`` examples' references scored against themselves.

    A reference is a perfect summary of its own example, so this is near the best reward there
    is; when it is 0, the metric settings cannot see the text (e.g. Chinese under rouge-score's
    ASCII tokenizer without ``cjk``) and every reward of the run would be 0. That is warned
    about loudly (a ``UserWarning`` and a line on stderr); the value is returned.
    """
    import sys
    import warnings

    from textrl.scoring.sentence import SentenceScorer

    scorer = SentenceScorer(env.reward_spec.metrics, env.metric_config)
    examples = list(env.examples[:n])
    values = [env.reward_spec(scorer.score(e.references[0], list(e.references))) for e in examples]
    mean = sum(values) / max(len(values), 1)
    if mean <= 1e-9:
        message = (
            f"reward: the references of {len(values)} training examples score {mean:g} against "
            f"themselves under reward {str(env.reward_spec)!r} with {env.metric_config}; every "
            "reward of this run would be 0. For Chinese, Japanese or Korean text pass --cjk; "
            "otherwise check --reward and the data's columns"
        )
        print(f"textrl: WARNING: {message}", file=sys.stderr)
        warnings.warn(message, stacklevel=2)
    return mean
