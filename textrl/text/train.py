"""Token-level DQN on a summarisation corpus: MLE warm start, then DQN from demonstrations.

The data path: examples -> :class:`~textrl.envs.summarize.SummarizeEnv` (exact dense rewards)
-> whole episodes (:mod:`textrl.text.acting`, :mod:`textrl.text.demos`) in an
:class:`~textrl.dqn.episode_replay.EpisodeReplay` -> :class:`~textrl.text.learner.TextLearner`
(one forward pass per sampled episode) -> greedy evaluation (:mod:`textrl.text.evaluation`).

A run has two phases, recorded in its :class:`~textrl.dqn.core.TrainState`:

1. ``"mle"``, the warm start: cross-entropy on the demonstrations (``demo_source``: the
   references, each document's best sentence, or both), evaluated every ``mle_eval_every``
   updates until ``mle_patience`` evaluations bring no new best (or ``mle_epochs``,
   ``mle_minutes``); its best weights are ``mle.safetensors``.
2. ``"dqn"``, the fine-tuning (``algo``): a short value warm-up, then rounds of ``num_envs``
   episodes acted epsilon-greedily inside the action mask, each followed by ``gradient_steps``
   updates: of the residual Q over the frozen warm start (``"anchored"``, the default; with
   ``self_imitation``, also imitating the round's best samples: :meth:`add_elites`), or of
   DQN with demonstrations (``"dqfd"``); or rounds of one sampled episode per environment and
   a self-critical policy-gradient step (``"scst"``). Greedy decoding of the whole
   ``eval_split`` keeps the best weights (``best.safetensors``; the warm start, or the
   ``init_weights`` of a run without one, is the first candidate).

Every ``checkpoint_every`` environment steps, and when the time budget ends, the run is
checkpointed atomically (networks, optimizers, replay, RNGs including each environment's,
counters); ``resume=True`` continues from the latest checkpoint exactly as if never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textrl.dqn.checkpoints import load_weights, open_run, save_weights
from textrl.dqn.core import (
    TrainState,
    resolve_device,
    stop_on_ctrl_c,
    torch_threads,
    training_session,
    trim_heap,
)
from textrl.dqn.episode_replay import Episode
from textrl.dqn.monitoring import MetricsLogger, ProgressBar
from textrl.dqn.policy import decay_factor, linear_schedule
from textrl.text.acting import LockstepActor, Rollout
from textrl.text.build import apply_init_encoder, check_reward_signal, make_env
from textrl.text.config import TextConfig
from textrl.text.decoding import TextAgent
from textrl.text.demos import demonstrations, with_oracle_references
from textrl.text.evaluation import greedy_scores
from textrl.text.learner import TextLearner

__all__ = ["TextTrainer", "train_text"]


def train_text(
    cfg: TextConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[Any], bool] | None = None,
) -> dict[str, Any]:
    """Train (or continue) a text DQN run in ``run_dir``; returns the final metrics.

    ``callback(state)`` gets the :class:`~textrl.dqn.core.TrainState` before each warm-start
    update and before each round of DQN episodes; returning False (not merely a falsy value)
    stops the run there (checkpointed, like the end of the time budget; ``stopped`` in the
    result says what stopped it: ``total_steps``, ``minutes``, ``callback`` or
    ``interrupted``). A run stopped by the budget, the callback or Ctrl-C and then resumed
    learns exactly what an uninterrupted run with step budgets would (tested), except that a
    warm start cut by ``minutes`` resumes with the warm-start minutes it had left.
    """
    return TextTrainer(cfg, run_dir, resume).run(progress, callback)


class TextTrainer:
    """One invocation of text training: the learner, the acting environments, the run folder."""

    def __init__(self, cfg: TextConfig, run_dir: str | Path, resume: bool = False) -> None:
        self.t_start = time.perf_counter()
        self.cfg = cfg
        resolve_device(cfg.device)  # --device cuda without CUDA fails before anything is written
        if cfg.actors:  # a missing extra fails now, not after the warm start
            from textrl.dqn.distributed import import_ray

            import_ray()
        self.run_dir, checkpoint = open_run(run_dir, resume)  # refuses a used folder first
        encoder = apply_init_encoder(cfg)  # takes over the encoder's shape and tokenizer
        torch.manual_seed(cfg.seed)
        env = make_env(cfg, cfg.split)
        tok = env.tokenizer
        self.act_documents, imitated = split_documents(len(env.examples), cfg)
        data, demo_source_env = None, env
        if cfg.reward_oracle:  # episodes are rewarded against the oracle sentence too
            data = with_oracle_references(env.examples, env)
            env = make_env(cfg, cfg.split, tok, data=data)
        self.actor = LockstepActor(
            [env] + [make_env(cfg, cfg.split, tok, data=data) for _ in range(cfg.num_envs - 1)]
        )
        check_reward_signal(env)  # warns when every reward would be 0 (e.g. CJK without --cjk)
        self.eval_env = make_env(cfg, cfg.eval_split, tok)
        self.learner = TextLearner(cfg, env, encoder)
        self.agent = TextAgent(self.learner.acting_network(), env)
        if checkpoint is not None:
            self.learner.restore(checkpoint)
            self.actor.set_rng_states((checkpoint.rng_state or {}).get("envs", []))
            if cfg.algo == "anchored" and cfg.mle and self.state.phase == "dqn":
                self.learner.set_prior(self.mle_path)  # the warm start DQN began from
            if self.state.phase == "dqn":
                self.learner.set_dropout(cfg.dropout)
        self.run_dir.save_config({"kind": "text", **dataclasses.asdict(cfg)})
        tok.save(self.run_dir.path / "tokenizer")  # eval/generate need no cache or data
        self.demos = []
        if cfg.mle or cfg.demos:
            # (what is demonstrated comes from the data's references, its rewards from the
            # acting environments' references)
            demo_env = make_env(cfg, cfg.split, tok, action_mask="none", data=data)
            self.demos = demonstrations(demo_source_env, demo_env, cfg.demo_source, imitated)
        if cfg.demos and checkpoint is None:
            for demo in self.demos:
                self.learner.replay.add_episode(demo)
        self.logger = MetricsLogger(
            self.run_dir,
            keep_lines=None if checkpoint is None else checkpoint.meta.get("metrics_lines"),
        )
        self.warm_start_scores: dict[str, float] | None = None
        self.last_indices: list[int] = []  # the documents of the last round of episodes
        self.eval_seconds = 0.0  # how long the last evaluation took
        self.eval_ended = -math.inf  # when it ended (perf_counter)
        self.sil_stats: dict[str, float] = {}  # the last round's self-imitation figures
        self.actor_episodes: list[int] = []  # with --actors: episodes each actor delivered

    @property
    def state(self) -> TrainState:
        return self.learner.state

    def run(
        self, progress: bool = True, callback: Callable[[Any], bool] | None = None
    ) -> dict[str, Any]:
        """Both phases as far as the budgets allow; then evaluate and checkpoint.

        Ctrl-C stops at the next safe point (between warm-start updates or DQN rounds), skips
        the final evaluation, checkpoints and returns with ``stopped="interrupted"``; that
        checkpoint resumes exactly. A second Ctrl-C stops at once (still checkpointed)."""
        cfg = self.cfg
        deadline = self.t_start + cfg.minutes * 60 if cfg.minutes else math.inf
        result: dict[str, Any] = {}
        with (
            training_session(self.run_dir, self.logger, lambda: self.state),
            stop_on_ctrl_c() as self.stop,
        ):
            try:
                stopped = "minutes"
                if self.state.phase == "mle":
                    stopped = self.warm_start(deadline, progress, callback)
                elif not cfg.mle and cfg.init_weights and not self.mle_path.is_file():
                    self.adopt_initial_weights()
                if self.state.phase == "dqn":  # (a warm start that did not end stays in "mle")
                    stopped = self.dqn(deadline, progress, callback)
                if stopped != "interrupted":
                    result.update(self.evaluate())
            except KeyboardInterrupt:
                stopped = "interrupted"
            if self.state.phase == "mle" and not self.mle_path.is_file():
                save_weights(self.learner.online, self.mle_path)  # the warm start, always
            self.save()
        state = self.state
        if self.warm_start_scores is not None:
            result.update({"mle_" + k: v for k, v in self.warm_start_scores.items()})
        result.update(
            {
                "stopped": stopped,
                "env_steps": state.env_steps,
                "grad_steps": state.grad_steps,
                "mle_updates": state.mle_updates,
                "best_eval": state.best_eval,
                "minutes": (time.perf_counter() - self.t_start) / 60,
                "run_dir": str(self.run_dir.path),
            }
        )
        if self.cfg.actors:
            result["actor_episodes"] = self.actor_episodes
        return result

    # -- phase 1: the warm start ----------------------------------------------------------------

    def warm_start(
        self, deadline: float, progress: bool, callback: Callable[[Any], bool] | None
    ) -> str:
        """Cross-entropy updates until ``mle_epochs``, ``mle_minutes`` or ``mle_patience``
        evaluations without a new best, then switch to DQN (``"done"``); checkpointed after each
        evaluation. Else says what stopped it."""
        cfg, state = self.cfg, self.state
        n_updates = int(cfg.mle_epochs * len(self.demos) / cfg.batch_size)
        t_mle = time.perf_counter()
        mle_deadline = min(deadline, t_mle + cfg.mle_minutes * 60 - state.mle_seconds)
        bar = ProgressBar(n_updates, state.mle_updates, progress, desc="mle")
        losses: list[float] = []
        try:
            while (
                state.mle_updates < n_updates
                and time.perf_counter() < mle_deadline
                and not self.warm_start_stale()
            ):
                halt = self.halt(callback)
                if halt:
                    return halt
                losses.append(self.learner.mle_update(self.demos))
                bar.update(1, loss=losses[-1])
                if state.mle_updates % 50 == 0:
                    trim_heap()
                    mean = float(np.mean(losses[-50:]))
                    self.logger.log(state.mle_updates, {"mle_loss": mean})
                if cfg.mle_eval_every and state.mle_updates % cfg.mle_eval_every == 0:
                    self.evaluate_warm_start()
                    now = time.perf_counter()  # the time so far goes into the checkpoint
                    state.mle_seconds, t_mle = state.mle_seconds + now - t_mle, now
                    self.save()
        finally:  # (whatever stops the loop, its time is counted)
            bar.close()
            state.mle_seconds += time.perf_counter() - t_mle
        if (
            state.mle_updates >= n_updates
            or state.mle_seconds >= cfg.mle_minutes * 60
            or self.warm_start_stale()
        ):
            self.end_warm_start()
            return "done"
        return "minutes"

    def halt(self, callback: Callable[[Any], bool] | None) -> str | None:
        """``"interrupted"`` after a Ctrl-C, ``"callback"`` when the callback returns False."""
        if self.stop.requested:
            return "interrupted"
        if callback is not None and callback(self.state) is False:
            return "callback"
        return None

    def warm_start_stale(self) -> bool:
        """Early stopping: ``mle_patience`` evaluations in a row found no new best."""
        patience = self.cfg.mle_patience
        return bool(self.cfg.mle_eval_every and patience and self.state.mle_stale >= patience)

    def evaluate_warm_start(self) -> None:
        """Evaluate the warm start; keep its best weights as ``mle.safetensors``."""
        ev = self.scores()
        self.logger.log(self.state.mle_updates, {"mle_" + k: v for k, v in ev.items()})
        if ev["eval_score"] > self.state.mle_best:
            self.state.mle_best = ev["eval_score"]
            self.state.mle_stale = 0
            save_weights(self.agent.net, self.mle_path)  # (what was evaluated)
        else:
            self.state.mle_stale += 1

    def end_warm_start(self) -> None:
        """Keep the best warm start (with early stopping), switch to DQN, checkpoint."""
        every, updates = self.cfg.mle_eval_every, self.state.mle_updates
        if every:
            if updates == 0 or updates % every:  # (else the loop has just evaluated these)
                self.evaluate_warm_start()
            load_weights(self.learner.online, self.mle_path, "mle")  # the best on --eval-split
        else:
            save_weights(self.learner.evaluated_network(), self.mle_path)
            load_weights(self.learner.online, self.mle_path, "mle")
        self.learner.end_warm_start()
        # The warm start is the first candidate for "best".
        self.warm_start_scores = self.evaluate()
        self.save()

    def adopt_initial_weights(self) -> None:
        """Without a warm start of its own (``mle=False``), a run started from ``init_weights``
        treats them as its warm start: written as ``mle.safetensors`` (so ``textrl eval``
        compares the agent against them) and evaluated as the first candidate for "best"."""
        self.warm_start_scores = self.evaluate()
        save_weights(self.learner.online, self.mle_path)  # (last: a stop before redoes both)
        self.save()

    # -- phase 2: DQN -----------------------------------------------------------------------------

    def dqn(self, deadline: float, progress: bool, callback: Callable[[Any], bool] | None) -> str:
        """Rounds of acting then learning until ``total_steps``, the budget or the callback;
        returns which of the three stopped it. With ``actors``, Ray actors act (Ape-X)."""
        cfg = self.cfg
        if cfg.actors:
            self.start_actors()
            try:
                return self._dqn(deadline, progress, callback)
            finally:
                self.pool.shutdown()
        return self._dqn(deadline, progress, callback)

    def _dqn(self, deadline: float, progress: bool, callback: Callable[[Any], bool] | None) -> str:
        cfg, state = self.cfg, self.state
        bar = ProgressBar(cfg.total_steps, state.env_steps, progress, desc="dqn")
        recent: list[float] = []
        stats: dict[str, float] = {}
        t_learn, learned = 0.0, 0
        trimmed_at = state.grad_steps
        # The phase's time so far and the time it may take in all (the learning-rate schedule
        # runs over it; a resumed run adds its own invocation's time).
        t_phase, seconds_before = time.perf_counter(), state.dqn_seconds
        horizon = seconds_before + deadline - self.eval_seconds - t_phase
        # The final evaluation runs inside the budget: stop when the time left is less than
        # the last evaluation took (a 60-minute run used to end after 60.7 minutes).
        while (
            state.env_steps < cfg.total_steps and time.perf_counter() + self.eval_seconds < deadline
        ):
            halt = self.halt(callback)
            if halt:
                bar.close()
                return halt
            progress_frac = state.env_steps / cfg.total_steps
            eps = linear_schedule(cfg.eps_start, cfg.eps_end, cfg.eps_fraction, progress_frac)
            state.dqn_seconds = seconds_before + time.perf_counter() - t_phase
            lr_frac = max(progress_frac, state.dqn_seconds / horizon if horizon > 0 else 1.0)
            self.learner.set_lr(cfg.lr * decay_factor(cfg.lr_schedule, lr_frac))
            if cfg.algo == "scst":  # acting and learning in one (time counted as learning)
                t0 = time.perf_counter()
                steps, scores, stats = self.scst_round()
                learned += stats["transitions"]
                t_learn += time.perf_counter() - t0
            else:
                steps, scores = self.apex_act() if cfg.actors else self.act(eps)
                if state.env_steps >= cfg.learning_starts:
                    beta = cfg.per_beta0 + (1.0 - cfg.per_beta0) * progress_frac
                    t0 = time.perf_counter()
                    # gradient_steps per round of num_envs episodes (actors may deliver several)
                    rounds = max(1, len(scores) // cfg.num_envs)
                    for _ in range(cfg.gradient_steps * rounds):
                        stats = self.learner.dqn_update(beta)
                        learned += stats["transitions"]
                    t_learn += time.perf_counter() - t0
                if cfg.actors and state.grad_steps - self.published_at >= cfg.publish_every:
                    self.publish()
            if state.grad_steps >= trimmed_at + TRIM_EVERY:
                trim_heap()
                trimmed_at = state.grad_steps
            recent = (recent + scores)[-200:]
            bar.update(steps, eps=eps, loss=stats.get("loss"), score=float(np.mean(recent)))
            if state.due("log", cfg.log_every):
                self.logger.log(
                    state.env_steps,
                    {
                        **stats,
                        "epsilon": eps,
                        "lr": self.learner.optimizer.param_groups[0]["lr"],
                        "episode_score": float(np.mean(recent)),
                        "learned_per_s": learned / max(t_learn, 1e-9),
                        **self.apex_stats(),
                        **self.sil_stats,
                    },
                )
            if self.eval_affordable() and state.due("eval", cfg.eval_every):
                self.evaluate()
            if state.due("checkpoint", cfg.checkpoint_every):
                self.save()
        bar.close()
        return "total_steps" if state.env_steps >= cfg.total_steps else "minutes"

    def first_seeds(self) -> list[int] | None:
        """Seeds for the environments' first reset of the run, then None."""
        if self.state.envs_seeded:
            return None
        self.state.envs_seeded = True
        return [self.cfg.seed * 1000 + i for i in range(len(self.actor.envs))]

    def scst_round(self) -> tuple[int, list[float], dict[str, float]]:
        """Self-critical sequence training (``algo="scst"``): ``scst_samples`` sampled episodes
        per document from the policy ``softmax(Q / (soft_tau * scst_temperature))`` and one
        policy-gradient step on their advantages: the score minus the greedy decode's on the
        same document (one sample), or minus the mean of the document's other samples."""
        learner, state, k = self.learner, self.state, self.cfg.scst_samples
        temperature = self.cfg.scst_temperature
        rollouts = [self.collect(0.0, temperature=temperature)]
        indices = rollouts[0].indices
        scale = 1 / (self.cfg.soft_tau * temperature)
        net = learner.acting_network()
        with torch_threads(1):
            for _ in range(k - 1):  # the same documents again
                rollouts.append(self.actor.collect(net, 0.0, learner.gen, None, indices, scale))
        scores = np.array([r.scores for r in rollouts])  # (K, E)
        stats_extra: dict[str, float] = {}
        if k == 1:
            greedy = np.array(self.greedy_scores_of(indices))
            baseline = greedy[None, :]
            stats_extra["greedy_score"] = float(greedy.mean())
        else:
            baseline = (scores.sum(0, keepdims=True) - scores) / (k - 1)
        steps = sum(r.steps for r in rollouts)
        episodes = [e for r in rollouts for e in r.episodes]
        state.env_steps += steps
        state.episodes += len(episodes)
        stats = learner.scst_update(episodes, (scores - baseline).ravel().tolist())
        stats.update(stats_extra)
        return steps, scores.ravel().tolist(), stats

    def collect(self, eps: float, temperature: float = 0.0) -> Rollout:
        """One round of episodes (seeded the first time): epsilon-greedy, or with
        ``temperature > 0`` sampled from the soft head's policy at that temperature."""
        scale = 1 / (self.cfg.soft_tau * temperature) if temperature > 0 else None
        with torch_threads(1):
            return self.actor.collect(
                self.learner.acting_network(),
                eps,
                self.learner.gen,
                self.first_seeds(),
                self.draw_documents(),
                scale,
            )

    def draw_documents(self) -> list[int] | None:
        """With ``mle_holdout``: one held-out training document per environment, drawn with
        replacement; else None (each environment draws its own from all of them)."""
        if self.act_documents is None:
            return None
        draw = torch.randint(
            len(self.act_documents), (len(self.actor.envs),), generator=self.learner.gen
        )
        return [self.act_documents[i] for i in draw.tolist()]

    def greedy_scores_of(self, indices: list[int]) -> list[float]:
        """The training reward of the greedy decode of each training document in ``indices``
        (the baseline of SCST and of ``relative_reward``), through the environments."""
        return self.greedy_rollout(indices).scores

    def greedy_rollout(self, indices: list[int]) -> Rollout:
        """Greedy decodes of the training documents in ``indices``, through the environments."""
        with torch_threads(1):
            net = self.learner.acting_network()
            return self.actor.collect(net, 0.0, self.learner.gen, None, indices)

    def act(self, eps: float) -> tuple[int, list[float]]:
        """One episode per environment into replay (the first round resets with seeds)."""
        state = self.state
        rollout = self.collect(eps, self.cfg.explore_temperature)
        episodes = rollout.episodes
        self.last_indices = rollout.indices
        if self.cfg.relative_reward:
            baselines = self.greedy_scores_of(rollout.indices)
            episodes = [_minus_at_end(e, b) for e, b in zip(episodes, baselines)]
        for episode in episodes:
            self.learner.replay.add_episode(episode)
        state.env_steps += rollout.steps
        state.episodes += len(rollout.episodes)
        steps = rollout.steps
        if self.cfg.self_imitation:
            steps += self.add_elites(rollout.indices)
        return steps, rollout.scores

    def add_elites(self, indices: list[int]) -> int:
        """Self-imitation: sample ``sil_samples`` episodes of each document in ``indices`` at
        ``sil_temperature``; the best of each document goes to the elite store when it beats the
        greedy decode's score there and is at most ``sil_length_slack`` tokens longer than that
        decode (when the slack is >= 0); with ``sil_include_greedy`` the greedy decode is the
        elite of the other documents. Returns the environment steps taken."""
        cfg, state, learner = self.cfg, self.state, self.learner
        greedy_rollout = self.greedy_rollout(indices)
        greedy = np.array(greedy_rollout.scores)
        greedy_len = np.array([len(e.actions) for e in greedy_rollout.episodes])
        scale = 1 / (cfg.soft_tau * cfg.sil_temperature)
        net = learner.acting_network()
        with torch_threads(1):
            rollouts = [
                self.actor.collect(net, 0.0, learner.gen, None, indices, scale)
                for _ in range(cfg.sil_samples)
            ]
        scores = np.array([r.scores for r in rollouts])  # (K, E)
        # Only whole summaries: one cut at max_new_tokens never shows where to stop, and
        # imitating such episodes lengthens the policy (SciTLDR: a warm start with 4 of 16 greedy
        # decodes at the limit went from 27 to 31-35 words).
        eos = self.actor.envs[0].eos_action
        stopped = np.array([[_stops(e, eos) for e in r.episodes] for r in rollouts])
        scores = np.where(stopped, scores, -np.inf)
        if cfg.sil_length_slack >= 0:  # too long a candidate cannot be the elite
            lengths = np.array([[len(e.actions) for e in r.episodes] for r in rollouts])
            scores = np.where(lengths <= greedy_len + cfg.sil_length_slack, scores, -np.inf)
        best = scores.argmax(0)
        kept = scores[best, np.arange(len(indices))] > greedy + 1e-9
        for i in np.flatnonzero(kept):
            learner.replay.add_episode(rollouts[best[i]].episodes[i]._replace(is_demo=True))
        if cfg.sil_include_greedy:  # where no sample beats it, the greedy decode is the elite
            for i in np.flatnonzero(~kept):
                if not _stops(greedy_rollout.episodes[i], eos):
                    continue
                learner.replay.add_episode(greedy_rollout.episodes[i]._replace(is_demo=True))
        steps = sum(r.steps for r in rollouts)
        state.env_steps += steps
        state.episodes += sum(len(r.episodes) for r in rollouts)
        self.sil_stats = {
            "sil/greedy_score": float(greedy.mean()),
            "sil/best_score": float(np.where(kept, scores.max(0), greedy).mean()),
            "sil/kept": float(kept.mean()),
            "sil/greedy_length": float(greedy_len.mean()),  # tokens, actions incl. EOS
        }
        if kept.any():
            elite_len = [len(rollouts[best[i]].episodes[i].actions) for i in np.flatnonzero(kept)]
            self.sil_stats["sil/elite_length"] = float(np.mean(elite_len))
            self.sil_stats["sil/kept_greedy_length"] = float(greedy_len[kept].mean())
        return steps

    # -- Ape-X actors (--actors N) ---------------------------------------------------------------

    def start_actors(self) -> None:
        """Start ``cfg.actors`` Ray actors, each loading its own shard of the training split
        (every N-th document), with Ape-X's per-actor epsilon; publish the weights."""
        from textrl.dqn.distributed import ActorPool, TextActorWorker, apex_epsilons

        cfg, n = self.cfg, self.cfg.actors
        env = self.actor.envs[0]
        if len(env.examples) < n:
            raise ValueError(
                f"actors: {n} actors need at least {n} training documents, got {len(env.examples)}"
            )
        epsilons = apex_epsilons(n, cfg.apex_eps, cfg.apex_alpha)
        values = dataclasses.asdict(cfg)
        base = cfg.seed * 1_000_003 + self.state.env_steps  # new seeds on every (re)start
        args = [(values, env.tokenizer, i, n, epsilons[i], base + 7_919 * i) for i in range(n)]
        self.pool = ActorPool(TextActorWorker, args, cfg.ray_address)
        self.actor_episodes, self.lags = [0] * n, []
        self.act_seconds = self.env_seconds = 0.0
        self.publish()
        for i in range(n):
            self.pool.submit(i)

    def publish(self) -> None:
        from textrl.dqn.distributed import cpu_state

        self.pool.publish(cpu_state(self.learner.online))
        self.published_at = self.state.grad_steps

    def apex_act(self) -> tuple[int, list[float]]:
        """Wait for the next actors' rounds (any that have arrived, at least one); their
        episodes go into replay (as :meth:`act`)."""
        state, steps, scores = self.state, 0, []
        while not steps:
            for i, res in self.pool.ready(timeout=1.0):
                self.pool.submit(i)  # with the newest weights
                if res is None:
                    continue  # the actor died mid-round; Ray restarted it
                for episode in res["episodes"]:
                    self.learner.replay.add_episode(episode)
                self.lags.append(self.pool.version - res["version"])
                self.act_seconds += res["seconds"]
                self.env_seconds += res["env_seconds"]
                self.actor_episodes[i] += len(res["episodes"])
                state.env_steps += res["steps"]
                state.episodes += len(res["episodes"])
                steps += res["steps"]
                scores += res["scores"]
            if not steps and self.stop.requested:
                break
        return steps, scores

    def apex_stats(self) -> dict[str, Any]:
        if not self.cfg.actors:
            return {}
        lag = float(np.mean(self.lags)) if self.lags else None
        self.lags = []
        return {
            "apex/policy_lag": lag,
            "apex/version": self.pool.version,
            "apex/actor_restarts": self.pool.failures,
            "apex/env_share": self.env_seconds / max(self.act_seconds, 1e-9),
        }

    # -- evaluation and checkpoints ---------------------------------------------------------------

    def scores(self) -> dict[str, float]:
        t0 = time.perf_counter()
        self.agent.net = self.learner.evaluated_network()  # on the CPU
        out = greedy_scores(self.agent, self.eval_env, self.cfg.eval_docs, self.cfg.no_repeat_ngram)
        trim_heap()
        self.eval_ended = time.perf_counter()
        self.eval_seconds = self.eval_ended - t0
        return out

    def eval_affordable(self) -> bool:
        """Whether the time since the last evaluation ended is long enough for evaluations to
        take at most ``eval_share`` of the DQN phase (always, with a share of 0)."""
        share = self.cfg.eval_share
        if share <= 0:
            return True
        waited = time.perf_counter() - self.eval_ended
        return waited * share >= self.eval_seconds * (1 - share)

    def evaluate(self) -> dict[str, float]:
        """Greedy scores on ``eval_split``; the best weights so far are ``best.safetensors``."""
        ev = self.scores()
        self.logger.log(self.state.env_steps, ev)
        if ev["eval_score"] > self.state.best_eval:
            self.state.best_eval = ev["eval_score"]
            save_weights(self.agent.net, self.run_dir.path / "best.safetensors")
        return ev

    @property
    def mle_path(self) -> Path:
        return self.run_dir.path / "mle.safetensors"

    def save(self) -> Path:
        """Checkpoint the learner, the environments' generators and the metrics written."""
        return self.learner.save(
            self.run_dir,
            meta={"metrics_lines": self.logger.lines},
            rng_extra={"envs": self.actor.rng_states()},
        )


TRIM_EVERY = 8
"""Gradient steps between two :func:`~textrl.dqn.core.trim_heap` calls in the DQN phase."""


def split_documents(n: int, cfg: TextConfig) -> tuple[list[int] | None, list[int] | None]:
    """``(acted, imitated)``: the training documents the fine-tuning phase acts on and those
    the warm start imitates, apart under ``mle_holdout`` (a share drawn with ``seed``), else
    ``(None, None)``: every document for both."""
    if not cfg.mle_holdout:
        return None, None
    n_held = round(cfg.mle_holdout * n)
    if not 1 <= n_held < n:
        raise ValueError(
            f"mle_holdout: {cfg.mle_holdout} of {n} training documents holds out {n_held}; "
            "expected a share that leaves at least one document to each phase"
        )
    order = np.random.default_rng(cfg.seed).permutation(n).tolist()
    return sorted(order[:n_held]), sorted(order[n_held:])


def _stops(episode: Episode, eos_action: int) -> bool:
    """Whether ``episode`` ended by choosing end-of-sequence (not cut at the length limit)."""
    return len(episode.actions) > 0 and int(episode.actions[-1]) == eos_action


def _minus_at_end(episode: Episode, baseline: float) -> Episode:
    """``episode`` with ``baseline`` subtracted from its last reward."""
    rewards = episode.rewards.copy()
    rewards[-1] -= np.float32(baseline)
    return episode._replace(rewards=rewards)
