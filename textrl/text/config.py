"""Settings of the text agent: :class:`TextConfig` (``textrl train`` without ``--env``).

:class:`textrl.dqn.config.DQNConfig` plus the data, tokenizer, Q-network, warm start and
demonstration settings, with defaults that train on the built-in corpus in about 10 minutes on
2 CPU cores. Imports neither torch nor numpy (the command line builds ``--help`` from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from textrl.dqn.config import DQNConfig, check_field, option

__all__ = ["SAVED_BEFORE", "WEIGHTS", "TextConfig", "with_old_defaults"]

WEIGHTS = ("best", "final", "mle")
"""Saved weights of a text run: best on the eval split, the last checkpoint, the warm start."""

SAVED_BEFORE: dict[str, Any] = {
    "algo": "dqfd",  # before --algo: the DQfD-style phase (2026-11-23)
    "self_imitation": 0.0,  # before self-imitation and dropout were defaults (11-24 to 12-06)
    "dropout": 0.0,
    "mle_patience": 0,  # before early stopping ended the warm start (12-06)
    "fresh_optimizer": False,  # before the DQN phase started with fresh Adam moments (12-06)
    "no_repeat_ngram": 0,  # before evaluations decoded without repeated 3-grams (12-06)
    "weight_average": 0.0,  # before evaluations decoded averaged weights (12-06)
    "reward_oracle": False,  # before rewards counted the oracle sentence (12-06)
    "eval_share": 0.0,  # before evaluations were spaced by their cost (12-07)
}
"""What a text run's ``config.json`` written before each setting existed ran with."""


def with_old_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a run's ``config.json``) with :data:`SAVED_BEFORE` for the settings it lacks:
    an old run resumes, and is evaluated, as it was trained, not by today's defaults."""
    return {**SAVED_BEFORE, **saved}


@dataclass
class TextConfig(DQNConfig):
    """Settings of ``textrl train`` on text; defaults finish in about 10 minutes on 2 cores."""

    data: str = option(
        "builtin",
        "Training data: 'builtin', a Hugging Face hub dataset name, or a local file/folder.",
    )
    split: str = option("train", "Split to train on.")
    eval_split: str = option("validation", "Split used to choose the best weights during training.")
    holdout: float = option(
        0.0,
        "For a single data file (one split): the share of its examples carved out, seeded, for "
        "each of validation and test (0.1: 10% each); training never sees them.",
    )
    document_column: str | None = option(
        None,
        "Document column for hub/file data (default: detected).",
    )
    summary_column: str | None = option(
        None,
        "Summary column for hub/file data (default: detected).",
    )
    reward: str = option(
        "rouge",
        "Reward: a metric expression: 'rouge' (mean R-1/R-2/R-L), 'rougeL', '0.5*rouge1+0.5*bleu'.",
    )
    use_stemmer: bool = option(True, "ROUGE with Porter stemming (rouge-score use_stemmer).")
    cjk: bool = option(
        False,
        "Chinese/Japanese/Korean text: CJK characters as ROUGE tokens and sacrebleu's zh BLEU "
        "tokenizer (rouge-score alone scores such text 0).",
    )
    lsum_split: Literal["sentences", "newline"] = option(
        "sentences", "ROUGE-Lsum sentence boundaries: 'sentences' or the text's own 'newline's."
    )
    max_new_tokens: int = option(48, "Longest summary in tokens.")
    max_source_tokens: int = option(320, "Documents are truncated to this many tokens.")
    vocab_size: int = option(4096, "Size of the tokenizer trained on the training split.")
    tokenizer: str | None = option(None, "A saved or hub fast tokenizer instead of training one.")
    action_mask: Literal["source", "none"] = option(
        "source",
        "Legal actions: 'source' (document tokens, EOS, function words) or 'none'.",
    )
    init_encoder: str | None = option(
        None,
        "Local Hugging Face encoder folder (BERT/RoBERTa layout) to initialise the Q-network from; "
        "its sizes replace --d-model/--n-layers/--n-heads/--d-ff and its tokenizer is the default "
        "--tokenizer (textrl.pretrained).",
    )
    init_weights: str | None = option(
        None,
        "Q-network weights (.safetensors, same network settings and tokenizer) to start from, e.g. "
        "another run's mle.safetensors with --no-mle to fine-tune its warm start by DQN (then "
        "they are this run's warm start: its mle.safetensors and first candidate for best).",
    )
    d_model: int = option(128, "Transformer width.")
    n_layers: int = option(2, "Transformer layers.")
    n_heads: int = option(4, "Attention heads.")
    d_ff: int = option(512, "Feed-forward width.")
    dropout: float = option(
        0.1,
        "Residual dropout of the transformer layers in the fine-tuning phase's training passes "
        "(not in the warm start; acting, decoding and the frozen anchor run without it). "
        "SciTLDR-A, 60 minutes, seeds 1-3 from the same warm starts: with 0.1 the DQN phase "
        "gained +1.17, +0.77, +0.76 test R-1 over them (p 0.001, 0.031, 0.040), with 0 "
        "+0.87, +0.63, +0.33 (p 0.035, 0.058, 0.156); their last weights gained alike (mean "
        "+0.63 with 0.1, +0.64 with 0), so part of it is dev selection (BENCHMARKS.md).",
    )
    post_ln: bool = option(False, "Post-LayerNorm (BERT) layers; set by --init-encoder.")
    ln_eps: float = option(1e-5, "LayerNorm epsilon; set by --init-encoder.")
    activation: Literal["gelu", "gelu_tanh", "relu"] = option(
        "gelu",
        "Feed-forward activation ('gelu', 'gelu_tanh', 'relu'); set by --init-encoder.",
    )
    q_head: Literal["soft", "dueling", "plain"] = option(
        "soft",
        "Q head: 'soft' (V + tau*log_softmax, see textrl.qnetwork), 'dueling' or 'plain'.",
    )
    soft_tau: float = option(
        0.05,
        "Q / soft_tau are the MLE warm start's logits (soft Q-learning temperature).",
    )
    copy: bool = option(
        True,
        "Pointer-generator copying from the document inside the soft head (See et al. 2017).",
    )
    copy_features: bool = option(
        True,
        "Learned continue/repeat biases in the pointer's scores (see textrl.qnetwork).",
    )
    mle: bool = option(True, "MLE warm start on the references before DQN.")
    mle_epochs: float = option(
        4.0,
        "Upper bound of the warm start in passes over the demonstrations. A warm start that "
        "nearly memorised the training documents left the DQN phase nothing to gain on new ones "
        "(SciTLDR seed 4 at 8 passes, BENCHMARKS.md); early stopping usually ends it first.",
    )
    mle_minutes: float | None = option(
        None,
        "Upper bound of the warm start in minutes. Default: a third of --minutes, at least 5 "
        "and at most 0.6 x --minutes (5 without --minutes). Early stopping (--mle-patience) "
        "usually ends it first: a bound in minutes alone gave a loaded machine's runs half the "
        "updates and long-writing warm starts (BENCHMARKS.md).",
    )
    mle_holdout: float = option(
        0.0,
        "Share of the training documents (drawn with --seed) whose demonstrations the warm "
        "start does not see; the fine-tuning phase then acts on those documents only, where "
        "the warm start is no better than on new ones. 0: both phases use every document.",
    )
    mle_lr: float = option(1e-3, "Learning rate of the warm start.")
    mle_weight_average: float = option(
        0.0,
        "Decay of a moving average of the warm start's weights (as --weight-average for the "
        "fine-tuning phase): its evaluations decode the average and the warm start kept is the "
        "best average. 0: the online weights.",
    )
    mle_dropout: float = option(
        0.0,
        "Residual dropout of the transformer layers in the warm start's cross-entropy updates "
        "(its evaluations decode without it); --dropout is the fine-tuning phase's.",
    )
    mle_eval_every: int = option(
        100,
        "Greedy evaluation on --eval-split every this many warm-start updates; the warm start "
        "keeps its best weights (early stopping: on SciTLDR the dev score peaked after ~250 "
        "updates and fell while the loss kept falling, BENCHMARKS.md). 0: keep the last weights.",
    )
    mle_patience: int = option(
        2,
        "End the warm start after this many evaluations in a row without a new best (its best "
        "weights are kept); 0: run to --mle-epochs or --mle-minutes.",
    )
    mle_value_weight: float = option(
        1.0,
        "Weight of regressing Q(s, a_ref) on the references' returns-to-go during the warm start "
        "(sets the level of Q that cross-entropy leaves free).",
    )
    demo_source: Literal["references", "oracle", "both"] = option(
        "both",
        "What the warm start imitates and replay keeps as demonstrations: 'references', 'oracle' "
        "(the best-scoring document sentence, see textrl.demos) or 'both'.",
    )
    reward_oracle: bool = option(
        True,
        "Reward training episodes against each document's oracle sentence (see --demo-source) "
        "as well as its references, the best of the two as dev and test score several "
        "references (SciTLDR, three 60-minute seeds: agent - warm start +0.44, +0.63, +0.27 "
        "test R-1 against +0.54, -0.08, -0.05 without; BENCHMARKS.md).",
    )
    algo: Literal["anchored", "dqfd", "scst"] = option(
        "anchored",
        "Fine-tuning after the warm start: 'anchored' (DQN of the residual over the frozen warm "
        "start, KL-regularised: see --anchor-eta), 'dqfd' (DQN with DQfD's demonstration losses) "
        "or 'scst' (self-critical policy gradient, Rennie et al. 2017: the baseline).",
    )
    scst_samples: int = option(
        1,
        "--algo scst: summaries sampled per document. 1: the greedy decode is the baseline "
        "(Rennie et al. 2017); K >= 2: each sample's baseline is the mean score of the other "
        "K - 1 (Kool et al. 2019), so advantages are zero-mean per document.",
    )
    scst_temperature: float = option(
        1.0,
        "--algo scst: temperature of the sampled summaries and of the policy whose "
        "log-probabilities the gradient raises or lowers (softmax(Q / (soft_tau * T))); the "
        "greedy decode is the same at every T. At 1 SciTLDR samples score far below greedy "
        "and among them longer ones score higher, so the policy lengthens (BENCHMARKS.md).",
    )
    anchor_eta: float = option(
        0.05,
        "--algo anchored: weight of KL(pi || warm start) per token, in reward units; the policy "
        "is pi ∝ pi_warm * exp(Q / eta), so a smaller eta lets Q move it further.",
    )
    anchor_target: Literal["soft", "hard"] = option(
        "soft",
        "--algo anchored: bootstrap with the soft value eta * log E_warm[exp(Q / eta)] ('soft') "
        "or with Q of the decoding policy's greedy action ('hard', double DQN).",
    )
    explore_temperature: float = option(
        0.0,
        "Exploration of --algo anchored/dqfd: 0 = epsilon-greedy (uniform legal tokens with "
        "probability epsilon); T > 0 = sample each token from the network's soft policy at "
        "temperature T (plausible alternatives instead of uniform ones).",
    )
    relative_reward: bool = option(
        False,
        "--algo anchored/dqfd: subtract the greedy decode's score on the same document from "
        "each episode's last reward (SCST's baseline as reward shaping: returns become 'better "
        "or worse than greedy'); costs one greedy pass per round of episodes.",
    )
    self_imitation: float = option(
        0.0,
        "--algo anchored: weight of self-imitation, a cross-entropy of the policy on elite "
        "episodes added to every DQN update (0: off). Each round, --sil-samples episodes per "
        "document are sampled at --sil-temperature; the best one that ends by EOS (a whole "
        "summary) is kept when it beats the greedy decode's score on that document (Oh et al. "
        "2018's self-imitation; best-of-K as in expert iteration). Costs sil_samples + 1 more "
        "acting passes per round. Off by default: from three early-stopped SciTLDR warm starts "
        "it gained 0, 0, -0.12 R-1 where TD alone gained +1.07, +0.32, +0.21 (BENCHMARKS.md).",
    )
    sil_samples: int = option(4, "--self-imitation: episodes sampled per document and round.")
    sil_temperature: float = option(
        0.5,
        "--self-imitation: sampling temperature of the candidates (SciTLDR warm start, 96 train "
        "documents: the best of 4 at 0.3-0.5 beat greedy on 54-69% of them, at 1.0 on 33%).",
    )
    sil_length_slack: int = option(
        -1,
        "--self-imitation: a candidate may be at most this many tokens longer than the greedy "
        "decode of its document to become an elite (-1: no limit). SciTLDR probes: 0 neither "
        "stopped a long-writing warm start from lengthening nor kept a short one's gain.",
    )
    sil_include_greedy: bool = option(
        False,
        "--self-imitation: the greedy decode is a candidate too (the elite of a document is the "
        "best of the greedy decode and the samples), so documents where no sample beats greedy "
        "imitate the greedy decode instead of nothing (a SciTLDR probe: worse than without).",
    )
    sil_capacity: int = option(
        20_000,
        "--self-imitation: elite transitions kept (the oldest elite episodes go first).",
    )
    demos: bool | None = option(
        None,
        "Keep the demonstrations in replay during DQN (DQfD); default: with --algo dqfd only "
        "(SciTLDR probes: with the anchored DQN they pull the policy towards longer outputs).",
    )
    demo_bonus: float = option(1.0, "Priority bonus of demonstration episodes (DQfD's epsilon_d).")
    margin: float = option(0.1, "DQfD large margin, in reward units (rewards are in [0, 1]).")
    demo_ce_weight: float = option(
        0.1,
        "Weight of the warm start's cross-entropy on demonstration steps during DQN (0: off). "
        "Measured from one warm start (validation 0.328): without it DQN sat at 0.29-0.30 after "
        "240 updates, with 0.1 it came back to 0.32-0.33.",
    )
    value_warmup_updates: int = option(
        50,
        "First DQN updates that train only the value head V(s) (soft/dueling heads).",
    )
    margin_weight: float = option(
        1.0,
        "Weight of the large-margin loss on demonstration steps (0 disables it).",
    )
    td_weight: float = option(
        1.0,
        "Weight of the TD loss in fine-tuning updates; 0 (with --self-imitation) leaves "
        "self-imitation alone, an ablation: best-of-K expert iteration without Q-learning.",
    )
    num_envs: int = option(
        16,
        "Environments acting in lock-step (one batched network step per token).",
    )
    eval_docs: int | None = option(
        None,
        "Documents of --eval-split decoded at each evaluation (default: all of them; batched "
        "greedy decoding of SciTLDR's 619 dev documents takes ~20 s). Fewer is faster but noisy: "
        "200 SciTLDR documents move +-0.01-0.04 between evaluations.",
    )
    eval_share: float = option(
        0.2,
        "Most of the DQN phase's time that its evaluations may take: an evaluation due by "
        "--eval-every waits until the time since the last one ended is at least (1 - share) / "
        "share times the last one's duration. On SciTLDR-A a whole-dev evaluation took as long "
        "as 10k acted and learned tokens, so every 10k tokens it used 45% of the phase "
        "(BENCHMARKS.md). 0: every --eval-every steps, whatever they cost.",
    )
    weight_average: float = option(
        0.99,
        "Evaluate, and keep as best.safetensors, an exponential moving average of the DQN "
        "phase's weights with this decay per gradient step (0.99: ~the last 100 updates; Polyak "
        "averaging) instead of the online weights, which acting keeps using: choosing the best "
        "of noisy online weights on dev picked update-to-update jitter that test did not repeat "
        "(BENCHMARKS.md). 0: the online weights.",
    )
    no_repeat_ngram: int = option(
        3,
        "Decoding of the evaluations that pick the best weights (warm start and DQN phase) and, "
        "by default, of textrl eval and generate: greedy, never repeating a token n-gram "
        "(trigram avoidance, Paulus et al. 2017; end-of-sequence stays legal). 0: the plain "
        "argmax of Q. Acting in training is not constrained.",
    )
    # DQNConfig fields with defaults tuned for text:
    total_steps: int = option(
        3_000_000,
        "Environment steps (tokens) to act in the DQN phase (--minutes usually ends it first).",
    )
    minutes: float | None = option(
        9.5,
        "Wall-clock budget of the whole invocation (warm start included), in minutes.",
    )
    lr: float = option(1e-4, "Adam learning rate of the DQN phase.")
    lr_schedule: Literal["constant", "linear", "cosine"] = option(
        "constant",
        "Learning rate of the DQN phase over its budget: 'constant' (--lr throughout), or "
        "decaying from --lr to zero, 'linear' or 'cosine', as the phase uses its time (what "
        "--minutes leaves after the warm start; a resumed run stretches the rest of the decay "
        "over the new invocation's time) or its --total-steps, whichever is further along. "
        "SciTLDR, seed 3's warm start, two streams: linear from 2e-4 gained +0.21 and +0.35 R-1, "
        "the constant 1e-4 -0.23 and +0.76 (BENCHMARKS.md).",
    )
    fresh_optimizer: bool = option(
        True,
        "Start the DQN phase with fresh Adam moments. Else it keeps the warm start's: its "
        "momentum still pushes along the cross-entropy gradients that early stopping cut, and "
        "its second moments, from those larger gradients, shrink TD steps for ~1000 updates.",
    )
    gamma: float = option(
        1.0,
        "Discount; 1 because the episode's score is what counts (rewards telescope).",
    )
    batch_size: int = option(32, "Episodes per gradient step (all their transitions are learned).")
    buffer_size: int = option(
        200_000,
        "Agent transitions kept in replay (demonstrations are kept on top).",
    )
    learning_starts: int = option(
        0,
        "Environment steps before the first DQN update (demonstrations fill replay at once).",
    )
    gradient_steps: int | None = option(
        None,
        "Gradient steps after each round of --num-envs episodes. Default: 4 with "
        "self-imitation (its elites are most of what is learned), else 1 (without it, 4 "
        "moved the anchored policy down sooner on SciTLDR).",
    )
    target_update: Literal["hard", "polyak"] = option(
        "polyak",
        "Target network update: 'polyak' (with --tau) or 'hard' (every --target-update-interval).",
    )
    tau: float = option(0.02, "Polyak coefficient per gradient step.")
    target_update_interval: int = option(1, "Gradient steps between target updates.")
    n_step: int = option(
        48,
        "n of the n-step returns; >= max_new_tokens: Monte Carlo returns, no bootstrapping (on "
        "SciTLDR n=3 let bootstrapped values overrate continuing: outputs grew 22 -> 29 words).",
    )
    prioritized: bool = option(True, "Prioritized replay over episodes (Schaul et al. 2016).")
    eps_start: float = option(
        0.05,
        "Initial epsilon (exploration inside the mask). Small: with uncorrected n-step returns a "
        "larger one (0.2 measured) teaches that continuing is worse than stopping, and summaries "
        "shrink.",
    )
    eps_end: float = option(0.01, "Final epsilon.")
    eps_fraction: float = option(0.5, "Fraction of --total-steps over which epsilon decays.")
    eval_every: int | None = option(
        None,
        "Greedy evaluation on --eval-split every this many environment steps. Default: 30000 "
        "with self-imitation (whose candidates are environment steps too: ~6 per explored "
        "token), else 10000.",
    )
    checkpoint_every: int = option(30_000, "Checkpoint every this many environment steps.")
    log_every: int = option(5_000, "Log training scalars every this many environment steps.")
    torch_threads: int = option(
        2,
        "torch threads for gradient steps (acting and decoding always use 1). 2 threads learn 1.7x "
        "faster than 1 on an idle 2-core machine, but many times slower as soon as another process "
        "shares the cores (measured): then pass --torch-threads 1.",
    )

    def __post_init__(self) -> None:
        # Defaults that depend on the algorithm are resolved first (the checks see the values
        # used, and config.json records them).
        if self.demos is None:
            self.demos = self.algo == "dqfd"
        if self.mle_minutes is None:
            m = self.minutes
            self.mle_minutes = 5.0 if m is None or m <= 0 else min(max(5.0, m / 3), 0.6 * m)
        sil = bool(self.self_imitation)
        if self.gradient_steps is None:
            self.gradient_steps = 4 if sil else 1
        if self.eval_every is None:
            self.eval_every = 30_000 if sil else 10_000
        super().__post_init__()
        from textrl.scoring.reward import RewardSpec

        RewardSpec.parse(self.reward)  # a bad expression fails here, naming the term
        check_field(
            self,
            "actors",
            not self.actors
            or (self.algo != "scst" and not self.relative_reward and not self.explore_temperature),
            "0 with --algo scst, --relative-reward or --explore-temperature (they need "
            "in-process acting; Ape-X actors act epsilon-greedily)",
        )
        check_field(
            self,
            "self_imitation",
            not self.self_imitation
            or (self.algo == "anchored" and not self.demos and not self.actors),
            "0 unless --algo anchored without --demos and without --actors (the elite episodes "
            "are the only demonstrations, made by in-process acting)",
        )
        check_field(
            self,
            "td_weight",
            self.td_weight > 0 or bool(self.self_imitation),
            "a positive number unless --self-imitation is on (else nothing would be learned)",
        )
        check_field(
            self,
            "mle_holdout",
            0 <= self.mle_holdout < 1 and (not self.mle_holdout or not self.actors),
            "a share in [0, 1), and 0 with --actors (Ape-X actors draw their own documents)",
        )
        for name in ("sil_temperature", "scst_temperature"):
            check_field(self, name, getattr(self, name) > 0, "a positive number")
        check_field(self, "sil_length_slack", self.sil_length_slack >= -1, "an integer >= -1")
        for name in ("dropout", "mle_dropout", "mle_weight_average"):
            check_field(self, name, 0.0 <= getattr(self, name) < 1.0, "a number in [0, 1)")
        check_field(self, "holdout", 0.0 <= self.holdout < 0.5, "a number in [0, 0.5)")
        for name in (
            "max_new_tokens",
            "max_source_tokens",
            "scst_samples",
            "sil_samples",
            "sil_capacity",
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
            "num_envs",
        ):
            check_field(self, name, getattr(self, name) >= 1, "a positive integer")
        check_field(self, "vocab_size", self.vocab_size >= 320, "an integer >= 320")
        check_field(
            self, "eval_docs", self.eval_docs is None or self.eval_docs >= 1, "a positive integer"
        )
        for name in ("soft_tau", "ln_eps", "mle_epochs", "mle_minutes", "mle_lr", "anchor_eta"):
            check_field(self, name, getattr(self, name) > 0, "a positive number")
        check_field(self, "weight_average", 0 <= self.weight_average < 1, "a number in [0, 1)")
        check_field(self, "eval_share", 0 <= self.eval_share < 1, "a number in [0, 1)")
        for name in ("mle_eval_every", "mle_patience", "value_warmup_updates", "no_repeat_ngram"):
            check_field(self, name, getattr(self, name) >= 0, "a non-negative integer")
        for name in (
            "mle_value_weight",
            "demo_bonus",
            "margin",
            "demo_ce_weight",
            "margin_weight",
            "td_weight",
            "explore_temperature",
            "self_imitation",
        ):
            check_field(self, name, getattr(self, name) >= 0, "a non-negative number")
        # A budget the warm start would fill runs no DQN at all (and used to say nothing).
        check_field(
            self,
            "mle_minutes",
            not self.mle or self.minutes is None or self.mle_minutes < self.minutes,
            f"less than minutes={self.minutes} so that the DQN phase runs (lower --mle-minutes, "
            "raise --minutes, or pass --no-mle)",
        )
        check_field(
            self,
            "algo",
            self.algo == "dqfd" or self.q_head == "soft",
            f"'dqfd' with q_head={self.q_head!r} ('anchored' and 'scst' read the soft head's "
            "log-probabilities: keep --q-head soft)",
        )
