"""Token-level DQN on a summarisation corpus: MLE warm start, then DQN from demonstrations.

The data path: examples -> ``SummarizeEnv`` (exact dense rewards) -> whole episodes in an
:class:`~textrl.replay.EpisodeReplay` -> one forward pass of the :class:`~textrl.qnetwork.QNetwork`
per sampled episode (Q for every step at once) -> n-step double-DQN targets -> update.

1. **Demonstrations** (DQfD, Hester et al. 2018; :mod:`textrl.demos`): every training reference
   and/or each document's best-scoring sentence (``demo_source``) becomes an expert episode;
   its rewards come from the environment itself, and it stays in replay with a priority bonus.
   Its legal actions are the episode's mask plus its own tokens (a reference may use words the
   document lacks).
2. **MLE warm start** (ANCHORS: start from supervised logits): cross-entropy of the references
   with ``Q / soft_tau`` as logits (the soft-Q view of Guo et al. 2021), over each step's legal
   actions, for ``mle_epochs`` or ``mle_minutes``. The resulting weights are kept as the
   ``mle`` baseline of ``textrl eval``.
3. **DQN**: a short value warm-up (only V(s) learns, so Q's level matches the agent's own
   returns), then ``num_envs`` environments act in lock-step, epsilon-greedy inside the action mask,
   on a cached source encoding (one network step per token). After each round, whole episodes
   (agent and demonstrations, by priority) are learned: double-DQN n-step targets (van Hasselt
   et al. 2016; Sutton & Barto ch. 7) from a Polyak-averaged target network, Huber loss with
   importance weights, gradient-norm clipping, plus DQfD's large-margin loss and a small
   cross-entropy anchor on demonstration steps. Greedy decoding on ``eval_split`` picks the
   best weights (``best.safetensors``).

Every ``checkpoint_every`` environment steps, and when the time budget ends, the run is
checkpointed atomically (networks, optimizer, replay, RNGs including each environment's,
counters); ``resume=True`` continues from the latest checkpoint exactly as if never stopped.
``init_encoder`` starts the Q-network from a local pretrained encoder (:mod:`textrl.pretrained`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from textrl.agent import TextAgent, pad_sources
from textrl.config import TrainConfig, check_field, config_to_dict
from textrl.demos import demonstrations
from textrl.dqn import (
    check_finite,
    epsilon_greedy,
    large_margin_loss,
    linear_schedule,
    masked_q,
    nstep_targets,
    polyak_update,
    td_loss,
)
from textrl.envs.summarize import SummarizeEnv
from textrl.metrics import SentenceScorer
from textrl.pretrained import encoder_settings, load_encoder, load_encoder_weights
from textrl.qnetwork import QNetConfig, QNetwork
from textrl.replay import EpisodeReplay, nstep_arrays, stack_padded
from textrl.runs import (
    MetricsLogger,
    ProgressBar,
    RunDir,
    capture_rng_state,
    plot_curves,
    restore_rng_state,
)


@dataclass
class TextTrainConfig(TrainConfig):
    """Settings of ``textrl train`` on text; defaults finish in about 10 minutes on 2 cores."""

    data: str = "builtin"
    """Training data: 'builtin', a Hugging Face hub dataset name, or a local file/folder."""
    split: str = "train"
    """Split to train on."""
    eval_split: str = "validation"
    """Split used to choose the best weights during training."""
    document_column: str | None = None
    """Document column for hub/file data (default: detected)."""
    summary_column: str | None = None
    """Summary column for hub/file data (default: detected)."""
    reward: str = "rouge"
    """Reward: a metric expression: 'rouge' (mean R-1/R-2/R-L), 'rougeL', '0.5*rouge1+0.5*bleu'."""
    max_new_tokens: int = 48
    """Longest summary in tokens."""
    max_source_tokens: int = 320
    """Documents are truncated to this many tokens."""
    vocab_size: int = 4096
    """Size of the tokenizer trained on the training split."""
    tokenizer: str | None = None
    """A saved or hub fast tokenizer instead of training one."""
    action_mask: str = "source"
    """Legal actions: 'source' (document tokens, EOS, function words) or 'none'."""
    init_encoder: str | None = None
    """Local Hugging Face encoder folder (BERT/RoBERTa layout) to initialise the Q-network
    from; its sizes replace --d-model/--n-layers/--n-heads/--d-ff and its tokenizer is the
    default --tokenizer (textrl.pretrained)."""
    init_weights: str | None = None
    """Q-network weights (.safetensors, same network settings and tokenizer) to start from,
    e.g. another run's mle.safetensors with --no-mle to fine-tune its warm start by DQN."""
    d_model: int = 128
    """Transformer width."""
    n_layers: int = 2
    """Transformer layers."""
    n_heads: int = 4
    """Attention heads."""
    d_ff: int = 512
    """Feed-forward width."""
    post_ln: bool = False
    """Post-LayerNorm (BERT) layers; set by --init-encoder."""
    ln_eps: float = 1e-5
    """LayerNorm epsilon; set by --init-encoder."""
    activation: Literal["gelu", "gelu_tanh", "relu"] = "gelu"
    """Feed-forward activation ('gelu', 'gelu_tanh', 'relu'); set by --init-encoder."""
    q_head: Literal["soft", "dueling", "plain"] = "soft"
    """Q head: 'soft' (V + tau*log_softmax, see textrl.qnetwork), 'dueling' or 'plain'."""
    soft_tau: float = 0.05
    """Q / soft_tau are the MLE warm start's logits (soft Q-learning temperature)."""
    copy: bool = True
    """Pointer-generator copying from the document inside the soft head (See et al. 2017)."""
    copy_features: bool = True
    """Learned continue/repeat biases in the pointer's scores (see textrl.qnetwork)."""
    mle: bool = True
    """MLE warm start on the references before DQN."""
    mle_epochs: float = 8.0
    """Upper bound of the warm start in passes over the references."""
    mle_minutes: float = 5.0
    """Upper bound of the warm start in minutes."""
    mle_lr: float = 1e-3
    """Learning rate of the warm start."""
    mle_eval_every: int = 250
    """Greedy evaluation on --eval-split every this many warm-start updates; the warm start
    keeps its best weights (early stopping: on SciTLDR the dev score peaked after 250 updates
    and fell while the loss kept falling, BENCHMARKS.md). 0: keep the last weights."""
    mle_value_weight: float = 1.0
    """Weight of regressing Q(s, a_ref) on the references' returns-to-go during the warm start
    (sets the level of Q that cross-entropy leaves free)."""
    demo_source: Literal["references", "oracle", "both"] = "references"
    """What the warm start imitates and replay keeps as demonstrations: 'references', 'oracle'
    (the best-scoring document sentence, see textrl.demos) or 'both'."""
    demos: bool = True
    """Keep the demonstrations in replay during DQN (DQfD)."""
    demo_bonus: float = 1.0
    """Priority bonus of demonstration episodes (DQfD's epsilon_d)."""
    margin: float = 0.1
    """DQfD large margin, in reward units (rewards are in [0, 1])."""
    demo_ce_weight: float = 0.1
    """Weight of the warm start's cross-entropy on demonstration steps during DQN (0: off).
    Measured from one warm start (validation 0.328): without it DQN sat at 0.29-0.30 after 240
    updates, with 0.1 it came back to 0.32-0.33."""
    value_warmup_updates: int = 50
    """First DQN updates that train only the value head V(s) (soft/dueling heads)."""
    margin_weight: float = 1.0
    """Weight of the large-margin loss on demonstration steps (0 disables it)."""
    num_envs: int = 16
    """Environments acting in lock-step (one batched network step per token)."""
    eval_docs: int = 200
    """Documents of --eval-split decoded at each evaluation."""
    # Overridden generic defaults, tuned for text:
    total_steps: int = 300_000
    """Environment steps (tokens) to act in the DQN phase."""
    minutes: float | None = 9.5
    """Wall-clock budget of the whole invocation (warm start included), in minutes."""
    lr: float = 1e-4
    """Adam learning rate of the DQN phase."""
    gamma: float = 1.0
    """Discount; 1 because the episode's score is what counts (rewards telescope)."""
    batch_size: int = 32
    """Episodes per gradient step (all their transitions are learned)."""
    buffer_size: int = 200_000
    """Agent transitions kept in replay (demonstrations are kept on top)."""
    learning_starts: int = 0
    """Environment steps before the first DQN update (demonstrations fill replay at once)."""
    gradient_steps: int = 1
    """Gradient steps after each round of --num-envs episodes."""
    target_update: str = "polyak"
    """Target network update: 'polyak' (with --tau) or 'hard' (every --target-update-interval)."""
    tau: float = 0.02
    """Polyak coefficient per gradient step."""
    target_update_interval: int = 1
    """Gradient steps between target updates."""
    n_step: int = 3
    """n of the n-step returns."""
    prioritized: bool = True
    """Prioritized replay over episodes (Schaul et al. 2016)."""
    eps_start: float = 0.05
    """Initial epsilon (exploration inside the mask). Small: with uncorrected n-step returns a
    larger one (0.2 measured) teaches that continuing is worse than stopping, and summaries
    shrink."""
    eps_end: float = 0.01
    """Final epsilon."""
    eps_fraction: float = 0.5
    """Fraction of --total-steps over which epsilon decays."""
    eval_every: int = 20_000
    """Greedy evaluation on --eval-split every this many environment steps."""
    checkpoint_every: int = 30_000
    """Checkpoint every this many environment steps."""
    log_every: int = 5_000
    """Log training scalars every this many environment steps."""
    torch_threads: int = 2
    """torch threads for gradient steps (acting and decoding always use 1). 2 threads learn
    1.7x faster than 1 on an idle 2-core machine, but many times slower as soon as another
    process shares the cores (measured): then pass --torch-threads 1."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "soft_tau", self.soft_tau > 0, "a positive number")


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_env(cfg: TextTrainConfig, split: str, tokenizer: Any = None,
             action_mask: str | None = None, data: Any = None) -> SummarizeEnv:
    """The training/evaluation environment of ``cfg`` (``data`` overrides ``cfg.data``)."""
    return SummarizeEnv(
        data=cfg.data if data is None else data, split=split, reward=cfg.reward, dense=True,
        max_new_tokens=cfg.max_new_tokens, max_source_tokens=cfg.max_source_tokens,
        tokenizer=tokenizer if tokenizer is not None else cfg.tokenizer,
        vocab_size=cfg.vocab_size, action_mask=action_mask or cfg.action_mask,
        final_scores="reward", document_column=cfg.document_column,
        summary_column=cfg.summary_column)


def build_network(cfg: TextTrainConfig, env: SummarizeEnv) -> QNetwork:
    return QNetwork(QNetConfig(
        vocab_size=env.tokenizer.vocab_size, action_token_ids=env.action_token_ids.tolist(),
        pad_id=env.pad_id, sep_id=env.tokenizer.sep_id, d_model=cfg.d_model,
        n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_ff=cfg.d_ff,
        max_source_tokens=cfg.max_source_tokens, max_new_tokens=cfg.max_new_tokens,
        head="dueling" if cfg.dueling else cfg.q_head, tau=cfg.soft_tau,
        copy=cfg.copy and not cfg.dueling and cfg.q_head == "soft",
        copy_features=cfg.copy_features, post_ln=cfg.post_ln, ln_eps=cfg.ln_eps,
        activation=cfg.activation))


class TextDQN:
    """The state of one text training run: networks, optimizer, replay, counters."""

    def __init__(self, cfg: TextTrainConfig, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run = RunDir(run_dir)
        encoder = None
        if cfg.init_encoder:  # the encoder's shape and tokenizer, then (below) its weights
            encoder = load_encoder(cfg.init_encoder)
            for name, value in encoder_settings(encoder).items():
                setattr(cfg, name, value)
            cfg.tokenizer = cfg.tokenizer or cfg.init_encoder
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.env = make_env(cfg, cfg.split)
        tok = self.env.tokenizer
        self.envs = [self.env] + [make_env(cfg, cfg.split, tok) for _ in range(cfg.num_envs - 1)]
        self.eval_env = make_env(cfg, cfg.eval_split, tok)
        self.net = build_network(cfg, self.env)
        if encoder is not None:
            load_encoder_weights(self.net, encoder)
        if cfg.init_weights:
            self.load_weights(cfg.init_weights, "init_weights")
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.agent = TextAgent(self.net, self.env)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.mle_lr if cfg.mle else cfg.lr)
        self.value_opt = (torch.optim.Adam(self.net.value.parameters(), lr=cfg.mle_lr)
                          if self.net.value is not None else None)
        self.replay = EpisodeReplay(cfg.buffer_size, demo_capacity=10_000_000,
                                    prioritized=cfg.prioritized, alpha=cfg.per_alpha,
                                    eps=cfg.per_eps, demo_bonus=cfg.demo_bonus)
        self.state: dict[str, Any] = {"phase": "mle" if cfg.mle else "dqn", "env_steps": 0,
                                      "updates": 0, "mle_updates": 0, "episodes": 0,
                                      "mle_seconds": 0.0, "mle_best": -math.inf,
                                      "best_eval": -math.inf, "next_eval": cfg.eval_every,
                                      "next_checkpoint": cfg.checkpoint_every,
                                      "next_log": cfg.log_every, "seeded": False}
        self.action_tokens = torch.as_tensor(self.env.action_token_ids)

    # -- checkpoints ------------------------------------------------------------------------

    def save(self) -> None:
        model = {f"online.{k}": v for k, v in self.net.state_dict().items()}
        model.update({f"target.{k}": v for k, v in self.target.state_dict().items()})
        self.run.save_checkpoint(
            self.state["env_steps"] + self.state["mle_updates"], model,
            extra_tensors={"optimizer": self.opt.state_dict(),
                           **({"value_optimizer": self.value_opt.state_dict()}
                              if self.value_opt is not None else {})},
            replay_state=self.replay.state_dict(),
            rng_state={**capture_rng_state(self.rng, self.gen),
                       "envs": [e.np_random.bit_generator.state for e in self.envs]},
            meta={"state": {k: (v if v != -math.inf else None) for k, v in self.state.items()}},
            keep=self.cfg.keep_checkpoints)

    def restore(self) -> bool:
        ckpt = self.run.load_latest()
        if ckpt is None:
            return False
        online = {k[7:]: v for k, v in ckpt.model_state.items() if k.startswith("online.")}
        target = {k[7:]: v for k, v in ckpt.model_state.items() if k.startswith("target.")}
        self.net.load_state_dict(online)
        self.target.load_state_dict(target)
        self.opt.load_state_dict(ckpt.extra["optimizer"])
        if self.value_opt is not None and "value_optimizer" in ckpt.extra:
            self.value_opt.load_state_dict(ckpt.extra["value_optimizer"])
        if ckpt.replay_state is not None:
            self.replay.load_state_dict(ckpt.replay_state)
        if ckpt.rng_state is not None:
            restore_rng_state(ckpt.rng_state, self.rng, self.gen)
            for env, env_state in zip(self.envs, ckpt.rng_state.get("envs", [])):
                env.np_random.bit_generator.state = env_state  # the next documents drawn
        state = ckpt.meta["state"]
        for key in ("best_eval", "mle_best"):
            state[key] = -math.inf if state.get(key) is None else state[key]
        self.state.update(state)
        return True

    def load_weights(self, path: str | Path, field: str = "weights") -> None:
        """Load Q-network weights from the .safetensors file ``path`` (errors name ``field``)."""
        from safetensors.torch import load_file

        path = Path(path)
        if path.suffix != ".safetensors" or not path.is_file():
            raise FileNotFoundError(f"{field}: expected an existing .safetensors file, "
                                    f"got {str(path)!r}")
        try:
            self.net.load_state_dict(load_file(str(path)))
        except RuntimeError as exc:  # shapes or names differ: say which settings to match
            raise ValueError(f"{field}: {str(path)!r} does not fit this network (same "
                             f"--d-model/--n-layers/--tokenizer/... needed): {exc}") from None

    def save_weights(self, name: str) -> Path:
        from safetensors.torch import save_file

        path = self.run.path / f"{name}.safetensors"
        tmp = path.with_suffix(".tmp")
        save_file({k: v.detach().clone() for k, v in self.net.state_dict().items()}, str(tmp))
        tmp.replace(path)
        return path

    # -- batches ----------------------------------------------------------------------------

    def _tensors(self, episodes) -> dict[str, torch.Tensor]:
        src, smask = pad_sources([e.source for e in episodes], self.env.pad_id)
        tokens, lengths = stack_padded([e.tokens for e in episodes], self.env.pad_id, np.int64)
        actions, _ = stack_padded([e.actions for e in episodes], 0, np.int64)
        n_actions = self.net.n_actions
        amask = torch.zeros(len(episodes), n_actions, dtype=torch.bool)
        for i, e in enumerate(episodes):
            if e.allowed is None:
                amask[i] = True
            else:
                amask[i, torch.from_numpy(e.allowed.astype(np.int64))] = True
        t = torch.arange(tokens.shape[1])
        valid = t[None, :] < torch.from_numpy(lengths)[:, None]  # (B, T)
        return {"src": src, "smask": smask, "tokens": torch.from_numpy(tokens),
                "actions": torch.from_numpy(actions), "amask": amask, "valid": valid,
                "lengths": torch.from_numpy(lengths)}

    def mle_update(self, demos: list[dict[str, Any]], batch_size: int) -> float:
        with torch_threads(self.cfg.torch_threads):
            return self._mle_update(demos, batch_size)

    def _mle_update(self, demos: list[dict[str, Any]], batch_size: int) -> float:
        idx = self.rng.integers(len(demos), size=batch_size)

        class _E:  # adapt dicts to the attribute access of replay episodes
            def __init__(self, d):
                self.__dict__.update(d)

        b = self._tensors([_E(demos[i]) for i in idx])
        valid = b["valid"]
        q = self.net(b["src"], b["smask"], b["tokens"])[:, :-1]  # (B, T, A)
        logits = masked_q(q / self.cfg.soft_tau, b["amask"][:, None, :])
        loss = F.cross_entropy(logits[valid], b["actions"][valid])
        if self.cfg.mle_value_weight > 0:
            # Monte Carlo returns-to-go of the demonstrations anchor the level of Q (the soft
            # head's V), which cross-entropy leaves free; DQN then starts from sane values.
            togo, _ = stack_padded([np.cumsum(demos[i]["rewards"][::-1])[::-1].astype(np.float32)
                                    for i in idx], 0.0, np.float32)
            q_expert = q.gather(-1, b["actions"][..., None]).squeeze(-1)  # (B, T)
            value_loss = F.smooth_l1_loss(q_expert[valid], torch.from_numpy(togo)[valid])
            loss = loss + self.cfg.mle_value_weight * value_loss
        check_finite(loss, self.state["mle_updates"], "MLE loss")
        self.opt.zero_grad()
        loss.backward()
        if self.cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm)
        self.opt.step()
        self.state["mle_updates"] += 1
        return float(loss.detach())

    def dqn_update(self, beta: float) -> dict[str, float]:
        with torch_threads(self.cfg.torch_threads):
            return self._dqn_update(beta)

    def _dqn_update(self, beta: float) -> dict[str, float]:
        cfg = self.cfg
        batch = self.replay.sample_episodes(cfg.batch_size, self.rng, beta)
        b = self._tensors(batch.episodes)
        q_all = self.net(b["src"], b["smask"], b["tokens"])  # (B, T+1, A)
        with torch.no_grad():
            q_target_all = self.target(b["src"], b["smask"], b["tokens"])
        bsz, t_max = b["actions"].shape
        returns = torch.zeros(bsz, t_max)
        discounts = torch.zeros(bsz, t_max)
        boot = torch.zeros(bsz, t_max, dtype=torch.long)
        for i, e in enumerate(batch.episodes):
            r, d, bi = nstep_arrays(e.rewards, e.terminated, cfg.gamma, cfg.n_step)
            n = len(r)
            returns[i, :n], discounts[i, :n], boot[i, :n] = (torch.from_numpy(r),
                                                             torch.from_numpy(d),
                                                             torch.from_numpy(bi))
        rows = torch.arange(bsz)[:, None].expand(bsz, t_max)
        valid = b["valid"]
        q_next_online = q_all.detach()[rows, boot][valid]  # (N, A)
        q_next_target = q_target_all[rows, boot][valid]
        next_mask = b["amask"][:, None, :].expand(bsz, t_max, -1)[valid]
        targets = nstep_targets(q_next_online, q_next_target, next_mask, returns[valid],
                                discounts[valid], double=cfg.double)
        q_steps = q_all[:, :-1]  # (B, T, A)
        q_sa = q_steps.gather(-1, b["actions"][..., None]).squeeze(-1)[valid]
        weights = torch.from_numpy(batch.weights)[:, None].expand(bsz, t_max)[valid]
        loss_td, td = td_loss(q_sa, targets, weights, huber=cfg.huber)
        is_demo = torch.tensor([e.is_demo for e in batch.episodes])[:, None].expand(bsz, t_max)
        loss = loss_td
        margin = torch.zeros(())
        if cfg.margin_weight > 0 and bool(is_demo.any()):
            demo_steps = valid & is_demo
            margin = large_margin_loss(q_steps[demo_steps], b["actions"][demo_steps],
                                       b["amask"][:, None, :].expand(bsz, t_max, -1)[demo_steps],
                                       margin=cfg.margin)
            loss = loss + cfg.margin_weight * margin
        if cfg.demo_ce_weight > 0 and bool(is_demo.any()):
            demo_steps = valid & is_demo  # keep the warm start's cross-entropy on the references
            logits = masked_q(q_steps[demo_steps] / cfg.soft_tau,
                              b["amask"][:, None, :].expand(bsz, t_max, -1)[demo_steps])
            loss = loss + cfg.demo_ce_weight * F.cross_entropy(logits, b["actions"][demo_steps])
        check_finite(loss, self.state["updates"], "DQN loss")
        # Value warm-up: the first updates train only V(s), so that Q's level matches the
        # agent's own returns before TD errors reach the policy logits (V regressed on the
        # references' returns overestimates the agent, and every negative TD error would push
        # down the log-probability of the action the warm start prefers).
        warm = self.state["updates"] < cfg.value_warmup_updates and self.net.value is not None
        opt = self.value_opt if warm else self.opt
        params = list(self.net.value.parameters()) if warm else list(self.net.parameters())
        opt.zero_grad()
        self.opt.zero_grad()
        loss.backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        self.state["updates"] += 1
        if cfg.target_update == "polyak":
            polyak_update(self.target, self.net, cfg.tau)
        elif self.state["updates"] % cfg.target_update_interval == 0:
            polyak_update(self.target, self.net, 1.0)
        per_step = torch.zeros(bsz, t_max)
        per_step[valid] = td.abs()
        lengths = b["lengths"].tolist()
        self.replay.update_priorities(batch.episode_ids,
                                      [per_step[i, :n].numpy() for i, n in enumerate(lengths)])
        return {"loss": float(loss.detach()), "td_loss": float(loss_td.detach()),
                "margin_loss": float(margin.detach()),
                "q_mean": float(q_sa.detach().mean()), "transitions": int(valid.sum())}

    # -- acting -----------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self, eps: float) -> tuple[int, list[float]]:
        with torch_threads(1):
            return self._collect(eps)

    def _collect(self, eps: float) -> tuple[int, list[float]]:
        """One episode in each environment, epsilon-greedy inside the mask; into replay."""
        first = not self.state["seeded"]
        resets = [e.reset(seed=self.cfg.seed * 1000 + i if first else None)
                  for i, e in enumerate(self.envs)]
        self.state["seeded"] = True
        sources = [o["source"][: int(o["source_length"])] for o, _ in resets]
        masks = np.stack([info["action_mask"] for _, info in resets])
        src, smask = pad_sources(sources, self.env.pad_id)
        amask = torch.from_numpy(masks).bool()
        self.net.eval()
        cache = self.net.encode_source(src, smask)
        q = self.net.step(cache)
        k = len(self.envs)
        actions: list[list[int]] = [[] for _ in range(k)]
        rewards: list[list[float]] = [[] for _ in range(k)]
        done = [False] * k
        scores = []
        steps = 0
        while True:
            a = epsilon_greedy(q, amask, eps, self.gen)
            for i in range(k):
                if done[i]:
                    continue
                _, r, term, trunc, _ = self.envs[i].step(int(a[i]))
                actions[i].append(int(a[i]))
                rewards[i].append(r)
                steps += 1
                if term or trunc:
                    done[i] = True
            if all(done):
                break
            q = self.net.step(cache, self.action_tokens[a])
        self.net.train()
        for i in range(k):
            allowed = None if masks[i].all() else np.flatnonzero(masks[i])
            # Stored as terminal even when the env truncated at max_new_tokens: the length limit
            # is part of this task (the state shows the position, and the last step already paid
            # the final score), so nothing follows. Bootstrapping there (gamma = 1) would read Q
            # of a state no transition ever trains, and in a first run Q diverged from it.
            self.replay.add(sources[i], self.env.action_token_ids[actions[i]], actions[i],
                            rewards[i], True, is_demo=False, allowed=allowed)
            scores.append(float(sum(rewards[i])))
        self.state["env_steps"] += steps
        self.state["episodes"] += k
        return steps, scores

    def evaluate(self) -> dict[str, float]:
        examples = self.eval_env.examples[: self.cfg.eval_docs]
        with torch_threads(1):
            texts = self.agent.generate([e.document for e in examples])
        scorer = SentenceScorer(self.eval_env.reward_spec.metrics, self.eval_env.metric_config)
        values = [scorer.score(t, list(e.references)) for t, e in zip(texts, examples)]
        out = {f"eval_{m}": float(np.mean([v[m] for v in values])) for m in values[0]}
        out["eval_score"] = float(np.mean([self.eval_env.reward_spec(v) for v in values]))
        out["eval_length"] = float(np.mean([len(t.split()) for t in texts]))
        return out


def train_text(cfg: TextTrainConfig, run_dir: str | Path, resume: bool = False,
               progress: bool = True, callback: Callable[[dict[str, Any]], bool] | None = None
               ) -> dict[str, Any]:
    """Train (or continue) a text DQN run in ``run_dir``; returns the final metrics.

    ``callback(state)`` is called after each round of DQN episodes; returning False stops the
    run there (checkpointed, like the end of the time budget). A run stopped by the budget or
    the callback and then resumed learns exactly what an uninterrupted run with step budgets
    would (tested), except that a warm start cut by ``minutes`` resumes with the warm-start
    minutes it had left."""
    t_start = time.perf_counter()
    deadline = t_start + cfg.minutes * 60 if cfg.minutes else math.inf
    job = TextDQN(cfg, run_dir)
    resumed = resume and job.restore()
    if resume and not resumed:
        print(f"textrl train: no checkpoint in {str(run_dir)!r}; starting a new run")
    job.run.save_config({"kind": "text", **config_to_dict(cfg)})
    job.env.tokenizer.save(job.run.path / "tokenizer")  # eval/generate need no cache or data
    demo_env = make_env(cfg, cfg.split, job.env.tokenizer, action_mask="none")
    demos = demonstrations(job.env, demo_env, cfg.demo_source) if (cfg.mle or cfg.demos) else []
    if cfg.demos and not resumed:
        for d in demos:
            job.replay.add(d["source"], d["tokens"], d["actions"], d["rewards"],
                           d["terminated"], is_demo=True, allowed=d["allowed"])
    logger = MetricsLogger(job.run, resume_step=job.state["env_steps"] if resumed else None)
    state = job.state
    result: dict[str, Any] = {}
    try:
        if state["phase"] == "mle":
            n_updates = int(cfg.mle_epochs * len(demos) / cfg.batch_size)
            t_mle = time.perf_counter()
            mle_left = cfg.mle_minutes * 60 - state["mle_seconds"]
            mle_deadline = min(deadline, t_mle + mle_left)
            bar = ProgressBar(n_updates, state["mle_updates"], progress, desc="mle")
            losses = []
            while state["mle_updates"] < n_updates and time.perf_counter() < mle_deadline:
                losses.append(job.mle_update(demos, cfg.batch_size))
                bar.update(1, loss=losses[-1])
                if state["mle_updates"] % 50 == 0:
                    logger.log(state["mle_updates"], {"mle_loss": float(np.mean(losses[-50:]))})
                if cfg.mle_eval_every and state["mle_updates"] % cfg.mle_eval_every == 0:
                    _evaluate_mle(job, logger)
            bar.close()
            state["mle_seconds"] += time.perf_counter() - t_mle
        if state["phase"] == "mle" and (state["mle_updates"] >= n_updates
                                        or state["mle_seconds"] >= cfg.mle_minutes * 60):
            if cfg.mle_eval_every:
                _evaluate_mle(job, logger)
                job.load_weights(job.run.path / "mle.safetensors")  # best on --eval-split
            else:
                job.save_weights("mle")
            job.target.load_state_dict(job.net.state_dict())
            for group in job.opt.param_groups:
                group["lr"] = cfg.lr
            state["phase"] = "dqn"
            ev = _evaluate(job, logger)  # the warm start is the first candidate for "best"
            result.update({"mle_" + k: v for k, v in ev.items()})
            job.save()
        bar = ProgressBar(cfg.total_steps, state["env_steps"], progress, desc="dqn")
        recent: list[float] = []
        stats: dict[str, float] = {}
        t_learn = 0.0
        learned = 0
        while state["env_steps"] < cfg.total_steps and time.perf_counter() < deadline:
            progress_frac = state["env_steps"] / cfg.total_steps
            eps = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.eps_fraction, progress_frac)
            if state["phase"] != "dqn" or (callback is not None and not callback(state)):
                break  # (a warm start cut by the time budget stays in phase "mle")
            steps, scores = job.collect(eps)
            recent = (recent + scores)[-200:]
            if state["env_steps"] >= cfg.learning_starts:
                beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
                t0 = time.perf_counter()
                for _ in range(cfg.gradient_steps):
                    stats = job.dqn_update(beta)
                    learned += stats["transitions"]
                t_learn += time.perf_counter() - t0
            bar.update(steps, eps=eps, loss=stats.get("loss"), score=float(np.mean(recent)))
            if state["env_steps"] >= state["next_log"]:
                state["next_log"] += cfg.log_every
                logger.log(state["env_steps"], {
                    **stats, "epsilon": eps, "episode_score": float(np.mean(recent)),
                    "learned_per_s": learned / max(t_learn, 1e-9)})
            if state["env_steps"] >= state["next_eval"]:
                state["next_eval"] += cfg.eval_every
                _evaluate(job, logger)
            if state["env_steps"] >= state["next_checkpoint"]:
                state["next_checkpoint"] += cfg.checkpoint_every
                job.save()
        bar.close()
        result.update(_evaluate(job, logger))
        job.save()
    finally:
        logger.close()
        try:
            plot_curves(job.run.path)
        except Exception as exc:  # a plotting failure must not lose the run
            print(f"textrl train: could not plot curves: {exc}")
    result.update({"env_steps": state["env_steps"], "updates": state["updates"],
                   "best_eval": state["best_eval"],
                   "minutes": (time.perf_counter() - t_start) / 60})
    return result


def _evaluate_mle(job: TextDQN, logger: MetricsLogger) -> None:
    """Evaluate the warm start; keep its best weights as ``mle.safetensors``."""
    ev = job.evaluate()
    logger.log(job.state["mle_updates"], {"mle_" + k: v for k, v in ev.items()})
    if ev["eval_score"] > job.state["mle_best"]:
        job.state["mle_best"] = ev["eval_score"]
        job.save_weights("mle")


def _evaluate(job: TextDQN, logger: MetricsLogger) -> dict[str, float]:
    ev = job.evaluate()
    logger.log(job.state["env_steps"], ev)
    if ev["eval_score"] > job.state["best_eval"]:
        job.state["best_eval"] = ev["eval_score"]
        job.save_weights("best")
    return ev
