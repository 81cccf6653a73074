"""The text learner: MLE warm start and DQN updates over whole episodes.

:class:`TextLearner` is a :class:`~textrl.dqn.core.DQNCore` over the transformer
:class:`~textrl.text.qnetwork.QNetwork` and an :class:`~textrl.dqn.episode_replay.EpisodeReplay`.
One forward pass over a sampled episode gives Q for every one of its steps, so each update learns
every transition of ``batch_size`` whole episodes.

- :meth:`TextLearner.mle_update` (the warm start, ANCHORS: start from supervised logits):
  cross-entropy of demonstrations with ``Q / soft_tau`` as logits over each step's legal actions
  (the soft-Q view of Guo et al. 2021), plus a regression of Q(s, a_demo) on the
  demonstrations' returns-to-go, which sets the level of Q that cross-entropy leaves free.
- :meth:`TextLearner.dqn_update` with ``algo="anchored"`` (the default): the network's soft head
  is read as a policy pi and a value V, and Q(s, a) = V(s) + eta (log pi(a|s) - log
  pi_warm(a|s)) with the warm start frozen as pi_warm (:meth:`TextLearner.set_prior`; one more
  forward pass per sampled episode): KL-regularised Q-learning (Jaques et al. 2017, 2019; the
  KL-regularised optimum of Q-sharp, Zhou et al. 2025), whose residual is zero at the switch.
  n-step targets bootstrap from the soft value eta log E_warm[exp(Q / eta)] or, with
  ``anchor_target="hard"``, from Q at the decoding policy's greedy action (double DQN).
- with ``algo="dqfd"``: double-DQN n-step targets (van Hasselt et al. 2016; Sutton & Barto
  ch. 7) on Q itself, plus DQfD's large-margin loss and a small cross-entropy anchor on
  demonstration steps (Hester et al. 2018).
- Both then take the step (value heads only during the value warm-up), the target update
  and new priorities, with a Huber loss and importance weights.
- ``self_imitation > 0`` adds to each anchored update the policy's cross-entropy on elite
  episodes (the trainer's best sampled episodes that beat the greedy decode, kept apart in the
  replay's demonstration store): self-imitation (Oh et al. 2018) from best-of-K samples.
- :meth:`TextLearner.scst_update` (``algo="scst"``): self-critical sequence training (Rennie
  et al. 2017), REINFORCE on sampled episodes with the greedy decode's score as baseline.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from textrl.dqn.checkpoints import Checkpoint, load_weights, unpack_network_state
from textrl.dqn.core import DQNCore, polyak_update, resolve_device, torch_threads
from textrl.dqn.episode_replay import Episode, EpisodeReplay, stack_padded
from textrl.dqn.losses import (
    kl_anchored_q,
    kl_soft_value,
    large_margin_loss,
    legal_log_softmax,
    nstep_targets,
    policy_gradient_loss,
    td_loss,
)
from textrl.dqn.policy import masked_q
from textrl.envs.summarize import SummarizeEnv
from textrl.text.batches import EpisodeTensors, episode_tensors, nstep_tensors
from textrl.text.build import build_network
from textrl.text.config import TextConfig
from textrl.text.qnetwork import QNetwork

__all__ = ["TextLearner"]


class TextLearner(DQNCore):
    """Networks, optimizers, episode replay and counters of a text run, and its two updates.

    Build it after ``torch.manual_seed(cfg.seed)``. ``encoder``: a pretrained encoder to copy
    into the Q-network (:func:`textrl.text.build.apply_init_encoder`). ``cfg.init_weights``
    starts the network from saved weights instead.
    """

    def __init__(self, cfg: TextConfig, env: SummarizeEnv, encoder: Any = None) -> None:
        net = build_network(cfg, env)
        if encoder is not None:
            from textrl.text.pretrained import load_encoder_weights

            load_encoder_weights(net, encoder)
        if cfg.init_weights:
            load_weights(net, cfg.init_weights, "init_weights")
        self.device = resolve_device(cfg.device)
        net.to(self.device)
        optimizers = {
            "optimizer": torch.optim.Adam(net.parameters(), lr=cfg.mle_lr if cfg.mle else cfg.lr)
        }
        if net.value is not None:  # the value warm-up trains V(s) alone
            optimizers["value_optimizer"] = torch.optim.Adam(net.value.parameters(), lr=cfg.mle_lr)
        # With self-imitation the demonstration store holds the elite episodes, drawn apart.
        replay = EpisodeReplay(
            cfg.buffer_size,
            demo_capacity=cfg.sil_capacity if cfg.self_imitation else 10_000_000,
            demos_in_batch=not cfg.self_imitation,
            prioritized=cfg.prioritized,
            alpha=cfg.per_alpha,
            eps=cfg.per_eps,
            demo_bonus=cfg.demo_bonus,
        )
        super().__init__(cfg, net, replay, optimizers, phase="mle" if cfg.mle else "dqn")
        self.cfg: TextConfig = cfg
        self.pad_id = env.pad_id
        self._cpu_twin: QNetwork | None = None  # acting copy when the learner is on CUDA
        self.prior: QNetwork | None = None  # the frozen anchor of algo="anchored"
        self.average: QNetwork | None = None  # the moving average that is evaluated
        if cfg.algo == "anchored" and not cfg.mle:
            self.set_prior()  # the network as built (or as --init-weights loaded it)
        self.set_dropout(cfg.mle_dropout if cfg.mle else cfg.dropout)
        self.start_average()  # (the phase's own: see average_decay)

    def batch(self, episodes: Sequence[Episode]) -> EpisodeTensors:
        return episode_tensors(episodes, self.pad_id, self.online.n_actions, self.device)

    def acting_network(self) -> QNetwork:
        """The network that acts and decodes: the online network itself on the CPU; with the
        learner on CUDA, a CPU copy of it refreshed at each call (acting stays on the CPU, one
        batched step for all environments, as Ape-X's actors; copying ~4 MB costs ~ms)."""
        if self.device.type == "cpu":
            return self.online
        if self._cpu_twin is None:
            self._cpu_twin = copy.deepcopy(self.online).to("cpu")
        self._cpu_twin.load_state_dict(self.online.state_dict())
        return self._cpu_twin

    def evaluated_network(self) -> QNetwork:
        """The network evaluations decode and ``best.safetensors`` (``mle.safetensors`` in the
        warm start) keeps: the phase's moving average (:meth:`average_decay`), else the acting
        network (on the CPU)."""
        if self.average is None:
            return self.acting_network()
        if self.device.type == "cpu":
            return self.average
        return copy.deepcopy(self.average).to("cpu")

    def average_decay(self) -> float:
        """The moving average's decay in this phase: ``mle_weight_average`` in the warm start,
        ``weight_average`` after it (0: no average)."""
        cfg = self.cfg
        return cfg.mle_weight_average if self.state.phase == "mle" else cfg.weight_average

    def start_average(self) -> None:
        """Start the phase's moving average (:meth:`average_decay`) at the online weights: at
        the start of the warm start, and at the switch to DQN (the warm start's weights)."""
        self.average = None
        if self.average_decay() > 0:
            self.average = copy.deepcopy(self.online).requires_grad_(False).eval()

    def network_state(self) -> dict[str, Any]:
        state = super().network_state()
        if self.average is not None:
            state.update({f"average.{k}": v for k, v in self.average.state_dict().items()})
        return state

    def restore(self, checkpoint: Checkpoint) -> None:
        super().restore(checkpoint)
        self.start_average()
        saved = unpack_network_state(checkpoint.model_state, "average")
        if self.average is not None and saved:
            self.average.load_state_dict(saved)

    def update_average(self) -> None:
        """After each step of either phase: average the online weights into ``average``."""
        if self.average is not None:
            polyak_update(self.average, self.online, 1.0 - self.average_decay())

    # -- warm start ---------------------------------------------------------------------------

    def mle_update(self, demos: Sequence[Episode]) -> float:
        """One cross-entropy step on ``batch_size`` demonstrations drawn uniformly."""
        with torch_threads(self.cfg.torch_threads):
            cfg = self.cfg
            episodes = [demos[i] for i in self.rng.integers(len(demos), size=cfg.batch_size)]
            b = self.batch(episodes)
            q = self.online(b.source, b.source_mask, b.tokens)[:, :-1]  # (B, T, A)
            logits = masked_q(q / cfg.soft_tau, b.legal[:, None, :])
            loss = F.cross_entropy(logits[b.valid], b.actions[b.valid])
            if cfg.mle_value_weight > 0:
                # Monte Carlo returns-to-go anchor the level of Q (the soft head's V).
                togo, _ = stack_padded(
                    [
                        np.cumsum(e.rewards[::-1].astype(np.float64))[::-1].astype(np.float32)
                        for e in episodes
                    ],
                    0.0,
                    np.float32,
                )
                q_demo = q.gather(-1, b.actions[..., None]).squeeze(-1)  # (B, T)
                togo_t = torch.from_numpy(togo).to(self.device)
                value_loss = F.smooth_l1_loss(q_demo[b.valid], togo_t[b.valid])
                loss = loss + cfg.mle_value_weight * value_loss
            self.apply_gradients(loss, "MLE loss")
            self.update_average()
            self.state.mle_updates += 1
            return float(loss.detach())

    def end_warm_start(self) -> None:
        """Switch to DQN: the target (and the anchor) copy the warm start, the learning rate
        becomes ``lr``, Adam's moments start afresh (``fresh_optimizer``)."""
        self.sync_target()
        if self.cfg.fresh_optimizer:
            self.optimizer.state.clear()
        if self.cfg.algo == "anchored":
            self.set_prior()
        self.set_dropout(self.cfg.dropout)
        self.set_lr(self.cfg.lr)
        self.state.phase = "dqn"
        self.start_average()

    def set_dropout(self, p: float) -> None:
        """Residual dropout ``p`` in the online network's training passes (``mle_dropout`` in
        the warm start, ``dropout`` after it; the target and the prior run in eval mode, acting
        and decoding switch to it)."""
        for module in self.online.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = float(p)

    # -- DQN ----------------------------------------------------------------------------------

    def set_prior(self, path: str | Path | None = None) -> None:
        """Freeze the anchor of ``algo="anchored"``: a copy of the online network (the warm
        start, at the switch to DQN), or the weights at ``path`` (when resuming)."""
        self.prior = copy.deepcopy(self.online).requires_grad_(False).eval()
        if path is not None:
            load_weights(self.prior, path, "prior")

    def dqn_update(self, beta: float) -> dict[str, float]:
        """Sample episodes, targets, losses, step, target update, priorities; returns stats."""
        with torch_threads(self.cfg.torch_threads):
            cfg = self.cfg
            sample = self.replay.sample_episodes(cfg.batch_size, self.rng, beta)
            b = self.batch(sample.episodes)
            q_all = self.online(b.source, b.source_mask, b.tokens)  # (B, T+1, A)
            if cfg.algo == "anchored":
                q_all, targets = self._anchored(sample.episodes, b, q_all)
            else:
                targets = self._targets(sample.episodes, b, q_all.detach())  # (N,) valid steps
            q_steps = q_all[:, :-1]  # (B, T, A)
            q_sa = q_steps.gather(-1, b.actions[..., None]).squeeze(-1)[b.valid]  # (N,)
            weights = torch.from_numpy(sample.weights).to(self.device)
            weights = weights[:, None].expand_as(b.valid)[b.valid]
            loss_td, td = td_loss(q_sa, targets, weights, huber=cfg.huber)
            margin, anchor = self._demo_losses(q_steps, b)
            loss = cfg.td_weight * loss_td
            if margin is not None:
                loss = loss + cfg.margin_weight * margin
            if anchor is not None:
                loss = loss + cfg.demo_ce_weight * anchor
            sil = self._self_imitation_loss()
            if sil is not None:
                loss = loss + cfg.self_imitation * sil
            self._step(loss)
            self.update_target()
            self.update_average()
            per_step = torch.zeros(b.valid.shape, device=self.device)
            per_step[b.valid] = td.detach().abs()
            per_step = per_step.cpu()
            self.replay.update_priorities(
                sample.episode_ids,
                [per_step[i, :n].numpy() for i, n in enumerate(b.lengths.tolist())],
            )
            return {
                "loss": float(loss.detach()),
                "td_loss": float(loss_td.detach()),
                "margin_loss": float(0.0 if margin is None else margin.detach()),
                "sil_loss": float(0.0 if sil is None else sil.detach()),
                "q_mean": float(q_sa.detach().mean()),
                "transitions": int(b.valid.sum()),
            }

    def _anchored_q(self, q_soft: Tensor, log_prior: Tensor, legal: Tensor) -> Tensor:
        """Q of the network's policy anchored to the prior (:func:`kl_anchored_q`): the soft
        head's ``Q / soft_tau`` are the policy's logits and ``soft_tau * logsumexp`` over the
        legal actions its value. (B, T+1, A) -> (B, T+1, A)."""
        tau = self.cfg.soft_tau
        logits = q_soft / tau
        lse = torch.logsumexp(logits.masked_fill(legal == 0, -math.inf), -1)  # (B, T+1)
        # log pi over the legal actions is logits - lse (illegal entries are zeroed below).
        log_pi = logits - lse.unsqueeze(-1)
        return kl_anchored_q(tau * lse, log_pi, log_prior, self.cfg.anchor_eta, legal)

    def _anchored(
        self, episodes: Sequence[Episode], b: EpisodeTensors, q_soft: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Anchored Q of every state (with gradient) and the n-step targets of every valid
        step: ``R_n + discount_n * V(s_{t+n})``, V the KL-regularised soft value of the target
        network's Q (``anchor_target="soft"``) or its Q at the decoding policy's greedy action
        (``"hard"``: double DQN over ``log pi_0 + Q / eta``)."""
        cfg = self.cfg
        if self.prior is None:
            raise RuntimeError("TextLearner: algo='anchored' needs set_prior() first")
        legal = b.legal[:, None, :]  # (B, 1, A)
        with torch.no_grad():
            prior = self.prior(b.source, b.source_mask, b.tokens)
            log_prior = legal_log_softmax(prior / cfg.soft_tau, legal)  # (B, T+1, A)
        q_all = self._anchored_q(q_soft, log_prior, legal)
        bsz, t_max = b.actions.shape
        n = nstep_tensors(episodes, cfg.gamma, cfg.n_step, t_max, self.device)
        returns, discounts = n.returns[b.valid], n.discounts[b.valid]
        if not bool((discounts != 0).any()):  # Monte Carlo: no target network pass needed
            return q_all, returns
        with torch.no_grad():
            q_target = self._anchored_q(
                self.target(b.source, b.source_mask, b.tokens), log_prior, legal
            )
        rows = torch.arange(bsz, device=self.device)[:, None].expand(bsz, t_max)
        legal_next = b.legal[:, None, :].expand(bsz, t_max, -1)[b.valid]
        prior_next = log_prior[rows, n.bootstrap][b.valid]  # (N, A)
        target_next = q_target[rows, n.bootstrap][b.valid]
        if cfg.anchor_target == "hard":
            online_next = q_all.detach()[rows, n.bootstrap][b.valid]
            decode = prior_next + online_next / cfg.anchor_eta
            targets = nstep_targets(decode, target_next, legal_next, returns, discounts)
        else:
            value = kl_soft_value(target_next, prior_next, cfg.anchor_eta, legal_next)
            value = torch.where(discounts == 0, torch.zeros_like(value), value)
            targets = returns + discounts * value
        return q_all, targets

    def scst_update(
        self, episodes: Sequence[Episode], advantages: Sequence[float]
    ) -> dict[str, float]:
        """One self-critical policy-gradient step (Rennie et al. 2017) on sampled ``episodes``,
        each with its score minus the greedy decode's on the same document; the log-probabilities
        are those of the sampling policy, ``softmax(Q / (soft_tau * scst_temperature))``."""
        with torch_threads(self.cfg.torch_threads):
            b = self.batch(episodes)
            q = self.online(b.source, b.source_mask, b.tokens)[:, :-1]  # (B, T, A)
            scale = self.cfg.soft_tau * self.cfg.scst_temperature  # the sampling policy's
            log_pi = legal_log_softmax(q / scale, b.legal[:, None, :])
            taken = log_pi.gather(-1, b.actions[..., None]).squeeze(-1)  # (B, T)
            adv = torch.tensor(advantages, dtype=torch.float32, device=self.device)
            loss = policy_gradient_loss(taken, adv, b.valid)
            self.apply_gradients(loss, "SCST loss")
            self.state.grad_steps += 1
            self.update_average()
            return {
                "loss": float(loss.detach()),
                "advantage": float(adv.mean()),
                "log_pi": float(taken[b.valid].detach().mean()),
                "transitions": int(b.valid.sum()),
            }

    @torch.no_grad()
    def _targets(self, episodes: Sequence[Episode], b: EpisodeTensors, q_online: Tensor) -> Tensor:
        """n-step double-DQN targets of every valid step, bootstrapped inside each episode's
        legal actions; ``q_online`` (B, T+1, A) is the online network's (no gradient)."""
        bsz, t_max = b.actions.shape
        q_target = self.target(b.source, b.source_mask, b.tokens)  # (B, T+1, A)
        n = nstep_tensors(episodes, self.cfg.gamma, self.cfg.n_step, t_max, self.device)
        rows = torch.arange(bsz, device=self.device)[:, None].expand(bsz, t_max)
        legal_next = b.legal[:, None, :].expand(bsz, t_max, -1)[b.valid]
        return nstep_targets(
            q_online[rows, n.bootstrap][b.valid],
            q_target[rows, n.bootstrap][b.valid],
            legal_next,
            n.returns[b.valid],
            n.discounts[b.valid],
            double=self.cfg.double,
        )

    def _demo_losses(
        self, q_steps: Tensor, b: EpisodeTensors
    ) -> tuple[Tensor | None, Tensor | None]:
        """DQfD's large margin and the warm start's cross-entropy on demonstration steps
        (``None`` when switched off or the batch has no demonstration)."""
        cfg = self.cfg
        demo = b.valid & b.is_demo[:, None]  # (B, T)
        if cfg.algo != "dqfd" or not bool(demo.any()):
            return None, None
        legal = b.legal[:, None, :].expand_as(q_steps)[demo]
        margin = anchor = None
        if cfg.margin_weight > 0:
            margin = large_margin_loss(q_steps[demo], b.actions[demo], legal, margin=cfg.margin)
        if cfg.demo_ce_weight > 0:
            logits = masked_q(q_steps[demo] / cfg.soft_tau, legal)
            anchor = F.cross_entropy(logits, b.actions[demo])
        return margin, anchor

    def _self_imitation_loss(self) -> Tensor | None:
        """Cross-entropy of the policy (the soft head) on ``batch_size`` elite episodes drawn
        uniformly (``None`` when self-imitation is off or no elite is stored yet)."""
        cfg = self.cfg
        if not cfg.self_imitation or not self.replay.transitions[True]:
            return None
        b = self.batch(self.replay.sample_demos(cfg.batch_size, self.rng))
        q = self.online(b.source, b.source_mask, b.tokens)[:, :-1]  # (B, T, A)
        log_pi = legal_log_softmax(q / cfg.soft_tau, b.legal[:, None, :])
        return -log_pi.gather(-1, b.actions[..., None]).squeeze(-1)[b.valid].mean()

    def _step(self, loss: Tensor) -> None:
        """The optimizer step. During the value warm-up only V(s) learns, so that Q's level
        matches the agent's own returns before TD errors reach the policy logits (V regressed
        on the references' returns overestimates the agent, and every negative TD error would
        push down the log-probability of the action the warm start prefers)."""
        value = self.online.value
        if self.state.grad_steps < self.cfg.value_warmup_updates and value is not None:
            self.apply_gradients(loss, "DQN loss", "value_optimizer", value.parameters())
        else:
            self.apply_gradients(loss, "DQN loss")
