"""Fine-tuning after the warm start: the anchored DQN's loss and targets, SCST's gradient."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_text import TINY

from textrl.dqn.losses import (
    kl_anchored_q,
    kl_soft_value,
    legal_log_softmax,
    policy_gradient_loss,
)
from textrl.dqn.policy import decay_factor
from textrl.text.build import make_env
from textrl.text.config import TextConfig
from textrl.text.decoding import TextAgent
from textrl.text.demos import demonstrations
from textrl.text.learner import TextLearner
from textrl.text.train import train_text


def test_soft_value_and_anchored_q_of_a_bandit_in_closed_form() -> None:
    """One step, rewards r(a), prior pi_0: V* = eta log E_0[exp(r / eta)], pi* ∝ pi_0 exp(r /
    eta), and the optimal policy's anchored Q is r itself (the fourth action is illegal)."""
    eta = 0.2
    prior = [0.5, 0.3, 0.2, 0.0]
    r = [0.1, 0.6, 0.3, 5.0]
    mask = torch.tensor([1, 1, 1, 0])
    log_prior = legal_log_softmax(torch.log(torch.tensor(prior) + 1e-30), mask)
    v_star = eta * math.log(sum(p * math.exp(x / eta) for p, x in zip(prior[:3], r[:3])))
    got = kl_soft_value(torch.tensor(r), log_prior, eta, mask)
    assert float(got) == pytest.approx(v_star, abs=1e-6)
    z = sum(p * math.exp(x / eta) for p, x in zip(prior[:3], r[:3]))
    pi_star = [p * math.exp(x / eta) / z for p, x in zip(prior[:3], r[:3])]
    log_pi = legal_log_softmax(torch.log(torch.tensor(pi_star + [1e-30])), mask)
    q = kl_anchored_q(torch.tensor(v_star), log_pi, log_prior, eta, mask)
    assert q[:3].tolist() == pytest.approx(r[:3], abs=1e-5)
    assert float(q[3]) == pytest.approx(v_star)  # illegal: no residual, finite
    # and the soft value of that Q gives V back
    assert float(kl_soft_value(q, log_prior, eta, mask)) == pytest.approx(v_star, abs=1e-6)


def test_anchored_td_learns_the_kl_regularised_optimum_of_a_two_step_tree() -> None:
    """Tabular policy logits and values trained only by the anchored TD loss with soft
    targets reach the optimum computed by hand: V1(a) = eta log E_0[exp(R[a, .] / eta)],
    Q0(a) = V1(a), pi*(a | s0) ∝ pi_0(a | s0) exp(Q0(a) / eta)."""
    eta = 0.1
    gen = torch.Generator().manual_seed(0)
    prior_logits = torch.randn(4, 3, generator=gen)  # state 0 = root, 1 + a = after action a
    log_prior = torch.log_softmax(prior_logits, -1)
    rewards = torch.rand(3, 3, generator=gen)  # terminal reward of (a, b)
    v1 = [
        eta * math.log(sum(math.exp(log_prior[1 + a, b] + rewards[a, b] / eta) for b in range(3)))
        for a in range(3)
    ]
    v0 = eta * math.log(sum(math.exp(log_prior[0, a] + v1[a] / eta) for a in range(3)))
    pi0 = [math.exp(log_prior[0, a] + v1[a] / eta - v0 / eta) for a in range(3)]

    logits = prior_logits.clone().requires_grad_(True)  # starts at the prior: residual 0
    values = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([logits, values], lr=0.02)
    for _ in range(3000):
        q = kl_anchored_q(values, torch.log_softmax(logits, -1), log_prior, eta)  # (4, 3)
        with torch.no_grad():
            next_values = torch.stack(
                [kl_soft_value(q[1 + a], log_prior[1 + a], eta) for a in range(3)]
            )
        targets = torch.cat([next_values, rewards.flatten()])
        loss = ((torch.cat([q[0], q[1:].flatten()]) - targets) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert values.detach().tolist() == pytest.approx([v0] + v1, abs=2e-3)
    assert torch.softmax(logits, -1)[0].tolist() == pytest.approx(pi0, abs=5e-3)


def test_policy_gradient_sign_on_a_toy_reward() -> None:
    """SCST: a sample that beat the greedy decode becomes more likely, a worse one less."""
    for advantage, direction in ((0.3, 1), (-0.3, -1)):
        logits = torch.zeros(1, 2, 4, requires_grad=True)  # one episode of two steps
        actions = torch.tensor([[2, 1]])
        before = torch.log_softmax(logits, -1).gather(-1, actions[..., None]).sum()
        taken = torch.log_softmax(logits, -1).gather(-1, actions[..., None]).squeeze(-1)
        loss = policy_gradient_loss(taken, torch.tensor([advantage]))
        loss.backward()
        with torch.no_grad():
            logits -= 0.5 * logits.grad
            after = torch.log_softmax(logits, -1).gather(-1, actions[..., None]).sum()
        assert direction * float((after - before).detach()) > 0
    # padded steps do not count
    taken = torch.tensor([[-1.0, -2.0]])
    assert (
        float(policy_gradient_loss(taken, torch.tensor([1.0]), torch.tensor([[True, False]])))
        == 1.0
    )


def _learner(tiny_data: Path, **overrides):
    """A learner whose replay holds the demonstrations for the TD batch (self-imitation, the
    anchored default, would keep them apart: off unless asked for)."""
    overrides = {"self_imitation": 0.0, **overrides}
    cfg = TextConfig(data=str(tiny_data), **{**TINY, "mle": False, **overrides})
    torch.manual_seed(cfg.seed)
    env = make_env(cfg, "train")
    demo_env = make_env(cfg, "train", env.tokenizer, action_mask="none")
    learner = TextLearner(cfg, env)
    demos = demonstrations(env, demo_env)
    for demo in demos:
        learner.replay.add_episode(demo)
    return cfg, env, learner, demos


def test_decoding_equals_the_warm_start_when_the_residual_is_zero(tiny_data: Path) -> None:
    cfg, env, learner, demos = _learner(tiny_data, algo="anchored")
    b = learner.batch(demos[:6])
    legal = b.legal[:, None, :]
    learner.online.eval()  # as decoding runs it (no fine-tuning dropout)
    with torch.no_grad():
        prior = learner.prior(b.source, b.source_mask, b.tokens)
        log_prior = legal_log_softmax(prior / cfg.soft_tau, legal)
        q = learner._anchored_q(learner.online(b.source, b.source_mask, b.tokens), log_prior, legal)
    residual = (q - q.gather(-1, torch.zeros_like(q[..., :1], dtype=torch.long)))[
        legal.expand_as(q)
    ]
    assert float(residual.abs().max()) < 1e-5  # Q = V(s) for every legal action
    docs = [e.document for e in env.examples[:8]]
    warm = TextAgent(learner.prior, env).generate(docs)
    assert TextAgent(learner.online, env).generate(docs) == warm

    # After some DQN updates the residual is not zero, and greedy decoding of the network is
    # still argmax of log pi_0 + Q / eta: the combination the targets assume.
    for _ in range(5):
        learner.dqn_update(beta=0.4)
    with torch.no_grad():
        soft = learner.online(b.source, b.source_mask, b.tokens)
        q = learner._anchored_q(soft, log_prior, legal)
    residual = (q - q.gather(-1, torch.zeros_like(q[..., :1], dtype=torch.long)))[
        legal.expand_as(q)
    ]
    assert float(residual.abs().max()) > 1e-4
    decode = (log_prior + q / cfg.anchor_eta).masked_fill(~legal, -math.inf).argmax(-1)
    greedy = soft.masked_fill(~legal, -math.inf).argmax(-1)
    assert torch.equal(decode[:, :-1][b.valid], greedy[:, :-1][b.valid])


@pytest.mark.parametrize("target", ["soft", "hard"])
def test_anchored_targets_at_the_start_against_hand_computed_values(
    tiny_data: Path, target: str
) -> None:
    """With the residual zero, both targets are R_n + discount_n * W(s_{t+n}), W the target
    network's soft_tau * logsumexp over legal actions of Q / soft_tau."""
    cfg, env, learner, demos = _learner(tiny_data, algo="anchored", anchor_target=target, n_step=2)
    episodes = demos[:3]
    b = learner.batch(episodes)
    q_soft = learner.online(b.source, b.source_mask, b.tokens)
    _, targets = learner._anchored(episodes, b, q_soft)
    with torch.no_grad():
        q_t = learner.target(b.source, b.source_mask, b.tokens)
    expected = []
    for i, e in enumerate(episodes):
        legal = torch.from_numpy(np.isin(np.arange(q_t.shape[-1]), e.allowed))
        n = len(e.rewards)
        for t in range(n):
            end = min(t + 2, n)
            ret = float(e.rewards[t:end].sum())
            if end < n:  # bootstrap from the state after two steps
                w = cfg.soft_tau * torch.logsumexp(q_t[i, end][legal] / cfg.soft_tau, -1)
                ret += float(w)
            expected.append(ret)
    assert targets.tolist() == pytest.approx(expected, abs=1e-4)


def test_scst_update_raises_the_better_sample(tiny_data: Path) -> None:
    _, _, learner, demos = _learner(tiny_data, algo="scst", lr=1e-3)
    episodes = demos[:2]
    b = learner.batch(episodes)

    def log_pi() -> torch.Tensor:
        with torch.no_grad():
            q = learner.online(b.source, b.source_mask, b.tokens)[:, :-1]
            lp = legal_log_softmax(q / learner.cfg.soft_tau, b.legal[:, None, :])
            return (lp.gather(-1, b.actions[..., None]).squeeze(-1) * b.valid).sum(-1)

    before = log_pi()
    stats = learner.scst_update(episodes, [0.2, -0.2])
    after = log_pi()
    assert stats["transitions"] == int(b.valid.sum())
    assert float(after[0] - before[0]) > 0 > float(after[1] - before[1])


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_scst_loss_is_the_advantage_times_the_sampling_policys_log_likelihood(
    tiny_data: Path, temperature: float
) -> None:
    """--scst-temperature T: the loss is -mean_i(adv_i * sum_t log pi_T(a_t|s_t)), pi_T the
    softmax of Q / (soft_tau * T) over the legal tokens, computed here token by token."""
    cfg, _, learner, demos = _learner(
        tiny_data, algo="scst", scst_temperature=temperature, dropout=0.0
    )
    episodes, adv = demos[:2], [0.3, -0.1]
    b = learner.batch(episodes)
    with torch.no_grad():
        q = learner.online(b.source, b.source_mask, b.tokens)
    expected = 0.0
    for i, episode in enumerate(episodes):
        legal = b.legal[i].bool()
        log_lik = 0.0
        for t, a in enumerate(episode.actions.tolist()):
            logits = q[i, t] / (cfg.soft_tau * temperature)
            log_lik += float(logits[a] - torch.logsumexp(logits[legal], 0))
        expected -= adv[i] * log_lik / len(episodes)
    stats = learner.scst_update(episodes, adv)
    assert stats["loss"] == pytest.approx(expected, rel=1e-4)


def test_scst_samples_at_its_temperature(tiny_data: Path, tmp_path: Path) -> None:
    from textrl.text.train import TextTrainer

    cfg = TextConfig(
        data=str(tiny_data),
        algo="scst",
        scst_temperature=0.4,
        scst_samples=2,
        **{**TINY, "mle": False},
    )
    trainer = TextTrainer(cfg, tmp_path)
    seen, scales = [], []
    collect, actor_collect = trainer.collect, trainer.actor.collect

    def spy(eps, temperature=0.0):
        seen.append((eps, temperature))
        return collect(eps, temperature)

    def actor_spy(net, eps, gen, seeds, indices, scale):  # both samples of each document
        scales.append(scale)
        return actor_collect(net, eps, gen, seeds, indices, scale)

    trainer.collect, trainer.actor.collect = spy, actor_spy
    trainer.scst_round()
    assert seen == [(0.0, 0.4)]
    assert scales == pytest.approx([1 / (cfg.soft_tau * 0.4)] * 2)
    with pytest.raises(ValueError, match="scst_temperature"):
        TextConfig(data=str(tiny_data), algo="scst", scst_temperature=0.0)


@pytest.mark.parametrize(
    ("algo", "extra"),
    [
        ("anchored", {}),
        ("anchored", {"self_imitation": 1.0}),
        ("scst", {}),
        ("anchored", {"lr_schedule": "linear"}),
    ],
    ids=["anchored", "anchored-self-imitation", "scst", "anchored-linear-lr"],
)
def test_fine_tuning_stopped_and_resumed_learns_what_an_uninterrupted_run_does(
    tiny_data: Path, tmp_path: Path, algo: str, extra: dict
) -> None:
    cfg = TextConfig(data=str(tiny_data), algo=algo, **{**TINY, "total_steps": 200, **extra})
    if cfg.self_imitation:  # a round acts 1 + 1 + sil_samples passes: make room for 2+ rounds
        cfg = dataclasses.replace(cfg, total_steps=1000)
    full = train_text(cfg, tmp_path / "full", progress=False)
    half = cfg.total_steps // 2
    cut = train_text(
        cfg, tmp_path / "cut", progress=False, callback=lambda s: s.env_steps < half or False
    )
    assert cut["stopped"] == "callback"
    resumed = train_text(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed["grad_steps"] == full["grad_steps"]
    from textrl.dqn.checkpoints import RunDir

    want = RunDir(tmp_path / "full").load_latest().model_state
    got = RunDir(tmp_path / "cut").load_latest().model_state
    assert all(torch.equal(v, got[k]) for k, v in want.items())


def test_relative_reward_stores_returns_relative_to_the_greedy_decode(
    tiny_data: Path, tmp_path: Path
) -> None:
    """With epsilon 0 the acted episodes are the greedy decodes, so their stored returns are 0;
    with exploration each return is its score minus the greedy score of its document."""
    from textrl.text.train import TextTrainer

    cfg = TextConfig(
        data=str(tiny_data), relative_reward=True, self_imitation=0.0, **{**TINY, "mle": False}
    )
    trainer = TextTrainer(cfg, tmp_path / "run")
    trainer.act(0.0)
    stored = list(trainer.learner.replay.episodes.values())
    assert len(stored) == cfg.num_envs
    assert [float(e.rewards.sum()) for e in stored] == pytest.approx([0.0] * cfg.num_envs, abs=1e-6)
    steps, scores = trainer.act(1.0)  # uniform random actions inside the mask
    new = list(trainer.learner.replay.episodes.values())[cfg.num_envs :]
    greedy = trainer.greedy_scores_of([int(i) for i in trainer.last_indices])
    assert [float(e.rewards.sum()) for e in new] == pytest.approx(
        [s - g for s, g in zip(scores, greedy)], abs=1e-5
    )


def test_exploration_by_sampling_stays_inside_the_mask_and_is_seeded(
    tiny_data: Path, tmp_path: Path
) -> None:
    from textrl.text.train import TextTrainer

    cfg = TextConfig(data=str(tiny_data), explore_temperature=1.0, **{**TINY, "mle": False})
    runs = []
    for name in ("a", "b"):
        trainer = TextTrainer(cfg, tmp_path / name)
        trainer.act(0.0)
        runs.append(list(trainer.learner.replay.episodes.values()))
    for e in runs[0]:
        assert e.allowed is None or np.isin(e.actions, e.allowed).all()
    assert [e.actions.tolist() for e in runs[0]] == [e.actions.tolist() for e in runs[1]]
    greedy = TextTrainer(TextConfig(data=str(tiny_data), **{**TINY, "mle": False}), tmp_path / "g")
    greedy.act(0.0)
    sampled = [e.actions.tolist() for e in runs[0]]
    assert sampled != [e.actions.tolist() for e in greedy.learner.replay.episodes.values()]


def test_a_run_saved_before_algo_existed_resumes_as_dqfd(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing the default must not change how an old run continues."""
    import json

    import textrl.text.train
    from textrl.cli import main

    seen = {}

    def fake_train_text(cfg, run_dir, resume=False, progress=True):
        seen["cfg"] = cfg
        return {}

    monkeypatch.setattr(textrl.text.train, "train_text", fake_train_text)
    for name, drop in (("old", True), ("new", False)):
        run = tmp_path / name
        run.mkdir()
        new = TextConfig(data=str(tiny_data), self_imitation=1.0)
        saved = {"kind": "text", **dataclasses.asdict(new)}
        if drop:  # written before --algo (and so before --self-imitation and --dropout)
            for key in (
                "algo",
                "self_imitation",
                "dropout",
                "fresh_optimizer",
                "no_repeat_ngram",
                "weight_average",
                "reward_oracle",
            ):
                del saved[key]
        (run / "config.json").write_text(json.dumps(saved))
        assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
        assert seen["cfg"].algo == ("dqfd" if drop else "anchored"), name
        assert seen["cfg"].dropout == (0.0 if drop else 0.1), name  # 0: as they were trained
        assert seen["cfg"].self_imitation == (0.0 if drop else 1.0), name
        assert seen["cfg"].fresh_optimizer is not drop, name
        assert seen["cfg"].no_repeat_ngram == (0 if drop else 3), name
        assert seen["cfg"].weight_average == (0.0 if drop else 0.99), name
        assert seen["cfg"].reward_oracle is not drop, name


def test_scst_with_several_samples_uses_the_other_samples_as_baseline(
    tiny_data: Path, tmp_path: Path
) -> None:
    """--scst-samples 3: three samples of the same documents; each advantage is the sample's
    score minus the mean of the other two, so they sum to 0 per document."""
    from textrl.text.train import TextTrainer

    cfg = TextConfig(data=str(tiny_data), algo="scst", scst_samples=3, **{**TINY, "mle": False})
    trainer = TextTrainer(cfg, tmp_path)
    seen = []
    update = trainer.learner.scst_update

    def spy(episodes, advantages):
        seen.append((episodes, advantages))
        return update(episodes, advantages)

    trainer.learner.scst_update = spy
    steps, scores, stats = trainer.scst_round()
    episodes, adv = seen[0]
    k, e = 3, cfg.num_envs
    assert len(episodes) == len(adv) == len(scores) == k * e
    s, a = np.array(scores).reshape(k, e), np.array(adv).reshape(k, e)
    np.testing.assert_allclose(a, s - (s.sum(0) - s) / 2, atol=1e-12)
    np.testing.assert_allclose(a.sum(0), 0.0, atol=1e-9)
    assert steps == sum(len(ep.actions) for ep in episodes) and "greedy_score" not in stats
    for j in range(e):  # the K samples of a column are of one document
        assert all(np.array_equal(episodes[j].source, episodes[i * e + j].source) for i in range(k))


def _ends(episode, eos: int) -> bool:
    return int(episode.actions[-1]) == eos


def _stopping(trainer):
    """``trainer`` whose untrained tiny network ends summaries early: self-imitation keeps only
    episodes that chose end-of-sequence, which an untrained network almost never does within
    16 tokens; a large bias on that action's logit makes some episodes stop."""
    eos = trainer.actor.envs[0].eos_action
    with torch.no_grad():
        trainer.learner.online.q_bias[eos] += 4.0
    return trainer


def test_self_imitation_keeps_samples_that_beat_greedy_and_raises_their_probability(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Elites are the best sampled episode of a document when it beats the greedy decode's
    score there; they stay out of the TD batch, and the self-imitation term raises their
    log-probability."""
    from textrl.text.train import TextTrainer

    cfg = TextConfig(
        data=str(tiny_data),
        self_imitation=1.0,
        sil_samples=3,
        sil_temperature=2.0,  # diverse samples on a tiny untrained network
        **{**TINY, "mle": False, "value_warmup_updates": 0, "lr": 1e-3},
    )
    trainer = _stopping(TextTrainer(cfg, tmp_path / "run"))
    learner = trainer.learner
    for _ in range(3):
        trainer.act(0.0)
    replay = learner.replay
    elites = [e for e in replay.episodes.values() if e.is_demo]
    kept = trainer.sil_stats["sil/kept"]
    assert 0 <= kept <= 1 and elites and not replay.demos_in_batch
    # every new elite scores more than the greedy decode of its own document
    indices = list(range(cfg.num_envs))
    old = set(replay.episodes)
    trainer.add_elites(indices)
    greedy = learner.acting_network()
    rollout = trainer.actor.collect(greedy, 0.0, learner.gen, None, indices)
    new = [e for i, e in replay.episodes.items() if i not in old]
    eos = trainer.actor.envs[0].eos_action
    assert new and all(e.is_demo and _ends(e, eos) for e in new)  # whole summaries only
    for e in new:
        doc = next(i for i, g in enumerate(rollout.episodes) if np.array_equal(g.source, e.source))
        assert float(e.rewards.sum()) > rollout.scores[doc]
    elites = [e for e in replay.episodes.values() if e.is_demo]
    net = learner.acting_network()
    assert net is learner.online
    b = learner.batch(elites[:4])

    def log_pi() -> float:
        with torch.no_grad():
            q = learner.online(b.source, b.source_mask, b.tokens)[:, :-1]
            lp = legal_log_softmax(q / cfg.soft_tau, b.legal[:, None, :])
            return float(lp.gather(-1, b.actions[..., None]).squeeze(-1)[b.valid].mean())

    before = log_pi()
    stats = [learner.dqn_update(0.4) for _ in range(5)]
    assert all(s["sil_loss"] > 0 for s in stats)
    assert log_pi() > before
    with pytest.raises(ValueError, match="TextConfig.self_imitation"):
        TextConfig(data=str(tiny_data), self_imitation=1.0, algo="dqfd", **TINY)
    with pytest.raises(ValueError, match="TextConfig.self_imitation"):
        TextConfig(data=str(tiny_data), self_imitation=1.0, demos=True, **TINY)


def test_self_imitation_including_greedy_keeps_one_elite_per_document(
    tiny_data: Path, tmp_path: Path
) -> None:
    """With ``sil_include_greedy`` every document gets an elite each round: the best sample
    when it beats the greedy decode, else the greedy decode itself (when it ends by EOS)."""
    from textrl.text.train import TextTrainer

    cfg = TextConfig(
        data=str(tiny_data),
        sil_include_greedy=True,
        sil_temperature=2.0,
        **{**TINY, "mle": False, "value_warmup_updates": 0},
    )
    trainer = _stopping(TextTrainer(cfg, tmp_path / "run"))
    replay, indices = trainer.learner.replay, list(range(cfg.num_envs))
    greedy = trainer.greedy_rollout(indices)
    old = set(replay.episodes)
    trainer.add_elites(indices)
    new = [e for i, e in replay.episodes.items() if i not in old]
    eos = trainer.actor.envs[0].eos_action
    assert all(e.is_demo and _ends(e, eos) for e in new)
    per_doc = [sum(np.array_equal(g.source, e.source) for e in new) for g in greedy.episodes]
    # one elite for each document whose greedy decode is a whole summary, at most one elsewhere
    assert [n == 1 for n, g in zip(per_doc, greedy.episodes) if _ends(g, eos)] == [True] * sum(
        _ends(g, eos) for g in greedy.episodes
    )
    assert max(per_doc) == 1 and any(_ends(g, eos) for g in greedy.episodes)
    for e in new:  # the greedy decode itself, or a sample that beats it
        doc = next(i for i, g in enumerate(greedy.episodes) if np.array_equal(g.source, e.source))
        g = greedy.episodes[doc]
        assert np.array_equal(e.actions, g.actions) or float(e.rewards.sum()) > greedy.scores[doc]


def test_td_weight_zero_leaves_self_imitation_alone(tiny_data: Path, tmp_path: Path) -> None:
    """The ablation --td-weight 0: an update's loss is the self-imitation term alone (and the
    setting needs self-imitation, else nothing would be learned)."""
    from textrl.text.train import TextTrainer

    cfg = TextConfig(
        data=str(tiny_data),
        td_weight=0.0,
        self_imitation=1.0,
        sil_temperature=2.0,
        **{**TINY, "mle": False, "value_warmup_updates": 0},
    )
    trainer = _stopping(TextTrainer(cfg, tmp_path / "run"))
    for _ in range(3):
        trainer.act(0.05)
    stats = [trainer.learner.dqn_update(0.4) for _ in range(3)]
    assert all(s["td_loss"] > 0 < s["sil_loss"] == pytest.approx(s["loss"]) for s in stats)
    with pytest.raises(ValueError, match="TextConfig.td_weight"):
        TextConfig(data=str(tiny_data), td_weight=0.0, self_imitation=0.0, **TINY)


def test_self_imitation_length_slack_keeps_elites_no_longer_than_greedy_plus_slack(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``sil_length_slack=s`` an elite beats its document's greedy score and is at most
    ``s`` tokens longer than that greedy decode; with -1 (no limit) longer ones are kept. The
    untrained network's greedy decodes all run to the length limit, so the test reports them
    as 5 tokens long (scores unchanged) to give the limit something to cut."""
    from textrl.text.train import TextTrainer

    short = 5
    longest = {}
    for slack in (-1, 0, 2):
        cfg = TextConfig(
            data=str(tiny_data),
            self_imitation=1.0,
            sil_samples=4,
            sil_temperature=2.0,
            sil_length_slack=slack,
            **{**TINY, "mle": False, "value_warmup_updates": 0},
        )
        trainer = _stopping(TextTrainer(cfg, tmp_path / f"run{slack}"))
        real = trainer.greedy_rollout

        def short_greedy(indices, real=real):
            r = real(indices)
            return r._replace(episodes=[e._replace(actions=e.actions[:short]) for e in r.episodes])

        monkeypatch.setattr(trainer, "greedy_rollout", short_greedy)
        replay, indices = trainer.learner.replay, list(range(cfg.num_envs))
        greedy = short_greedy(indices)
        new = []
        for _ in range(6):  # no update in between: the greedy decodes stay the same
            old = set(replay.episodes)
            trainer.add_elites(indices)
            new += [e for i, e in replay.episodes.items() if i not in old]
        for e in new:
            doc = next(
                i for i, g in enumerate(greedy.episodes) if np.array_equal(g.source, e.source)
            )
            assert float(e.rewards.sum()) > greedy.scores[doc]
        longest[slack] = max((len(e.actions) for e in new), default=0)
    assert longest[-1] > short + 2 and longest[0] <= short and longest[2] <= short + 2
    with pytest.raises(ValueError, match="TextConfig.sil_length_slack"):
        TextConfig(data=str(tiny_data), sil_length_slack=-2, **TINY)


def test_a_learner_off_the_cpu_acts_with_a_fresh_cpu_copy(tiny_data: Path) -> None:
    """With the learner on CUDA, acting and decoding use a CPU copy refreshed at every call
    (checked here by pretending the learner's device is not the CPU)."""
    _, _, learner, demos = _learner(tiny_data, algo="anchored", lr=1e-2, value_warmup_updates=0)
    assert learner.acting_network() is learner.online  # on the CPU: the network itself
    learner.device = torch.device("cuda")
    twin = learner.acting_network()
    assert twin is not learner.online and next(twin.parameters()).device.type == "cpu"
    learner.device = torch.device("cpu")  # the update itself runs where the network is
    learner.dqn_update(0.4)
    learner.device = torch.device("cuda")
    again = learner.acting_network()
    assert again is twin
    want, got = learner.online.state_dict(), again.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in want.items())


@pytest.mark.parametrize("mle_dropout", [0.0, 0.3])
def test_each_phase_has_its_own_dropout(tiny_data: Path, mle_dropout: float) -> None:
    cfg = TextConfig(data=str(tiny_data), dropout=0.2, mle_dropout=mle_dropout, **TINY)
    torch.manual_seed(cfg.seed)
    env = make_env(cfg, "train")
    learner = TextLearner(cfg, env)
    rates = lambda: {m.p for m in learner.online.modules() if isinstance(m, torch.nn.Dropout)}  # noqa: E731
    assert rates() == {mle_dropout}  # the warm start's own (default: none)
    demos = demonstrations(env, make_env(cfg, "train", env.tokenizer, "none"))
    b = learner.batch(demos[:4])
    passes = [learner.online(b.source, b.source_mask, b.tokens) for _ in range(2)]
    assert torch.equal(*passes) == (mle_dropout == 0.0)  # its updates drop units ...
    learner.mle_update(demos)
    agent = TextAgent(learner.online, env)
    docs = [e.document for e in env.examples[:4]]
    assert agent.generate(docs) == agent.generate(docs)  # ... its decoding does not
    learner.end_warm_start()
    assert rates() == {0.2}
    assert not learner.target.training and not learner.prior.training  # no dropout in targets


def test_the_warm_start_average_follows_its_decay_and_starts_the_dqn_phase(
    tiny_data: Path,
) -> None:
    cfg = TextConfig(data=str(tiny_data), mle_weight_average=0.9, **TINY)
    torch.manual_seed(cfg.seed)
    env = make_env(cfg, "train")
    learner = TextLearner(cfg, env)
    demos = demonstrations(env, make_env(cfg, "train", env.tokenizer, "none"))
    before = {k: v.clone() for k, v in learner.online.state_dict().items()}
    learner.mle_update(demos)
    after, avg = learner.online.state_dict(), learner.average.state_dict()
    for name, _ in learner.online.named_parameters():  # 0.9 * w0 + 0.1 * w1, by hand
        want = 0.9 * before[name] + 0.1 * after[name]
        assert torch.allclose(avg[name], want, atol=1e-6), name
    assert learner.evaluated_network() is learner.average  # what its evaluations decode
    learner.end_warm_start()  # the DQN phase's own average (0.99) starts at the online weights
    assert learner.average_decay() == cfg.weight_average
    got = learner.average.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in learner.online.state_dict().items())


@pytest.mark.parametrize("fresh", [True, False])
def test_the_dqn_phase_starts_with_a_fresh_optimizer(tiny_data: Path, fresh: bool) -> None:
    cfg = TextConfig(data=str(tiny_data), fresh_optimizer=fresh, **TINY)
    env = make_env(cfg, "train")
    learner = TextLearner(cfg, env)
    learner.mle_update(demonstrations(env, make_env(cfg, "train", env.tokenizer, "none")))
    moments = {id(p): s["exp_avg_sq"].clone() for p, s in learner.optimizer.state.items()}
    assert moments  # the warm start's Adam moments ...
    learner.end_warm_start()
    assert all(g["lr"] == cfg.lr for g in learner.optimizer.param_groups)
    if fresh:  # ... are not the DQN phase's
        assert not learner.optimizer.state
    else:
        kept = learner.optimizer.state
        assert all(torch.equal(kept[p]["exp_avg_sq"], moments[id(p)]) for p in kept)


def test_mle_holdout_keeps_the_acted_documents_out_of_the_warm_start(
    tiny_data: Path, tmp_path: Path
) -> None:
    """A quarter of the 40 training documents is held out: the warm start's demonstrations
    come from the other 30 (two each, reference and oracle), and every acted episode from one
    of the 10; the split is the seed's."""
    from textrl.text.train import TextTrainer, split_documents

    cfg = TextConfig(data=str(tiny_data), mle_holdout=0.25, **TINY)
    trainer = TextTrainer(cfg, tmp_path / "run")
    acted, imitated = split_documents(40, cfg)
    assert len(acted) == 10 and sorted(acted + imitated) == list(range(40))
    assert trainer.act_documents == acted
    assert len(trainer.demos) == 2 * 30
    env = trainer.actor.envs[0]
    held_sources = {tuple(env.source_and_mask(env.examples[i].document)[0]) for i in acted}
    assert not held_sources & {tuple(d.source) for d in trainer.demos}
    seen = set()
    for _ in range(5):
        trainer.act(0.05)
        seen.update(trainer.last_indices)
    assert seen <= set(acted) and len(seen) > 1
    assert split_documents(40, dataclasses.replace(cfg, seed=cfg.seed + 1))[0] != acted
    assert split_documents(40, dataclasses.replace(cfg, mle_holdout=0.0)) == (None, None)
    with pytest.raises(ValueError, match="mle_holdout: 0.99 of 40 training documents"):
        split_documents(40, dataclasses.replace(cfg, mle_holdout=0.99))
    with pytest.raises(ValueError, match="TextConfig.mle_holdout: expected a share in"):
        TextConfig(data=str(tiny_data), mle_holdout=1.0)


def test_learning_rate_factors_against_hand_computed_values() -> None:
    assert [decay_factor("constant", p) for p in (0.0, 0.5, 1.0)] == [1.0, 1.0, 1.0]
    assert [decay_factor("linear", p) for p in (-1.0, 0.0, 0.25, 1.0, 2.0)] == [1, 1, 0.75, 0, 0]
    assert decay_factor("cosine", 0.0) == 1.0 and decay_factor("cosine", 1.0) == 0.0
    assert decay_factor("cosine", 0.5) == pytest.approx(0.5)
    assert decay_factor("cosine", 0.25) == pytest.approx((1 + math.sqrt(0.5)) / 2)
    with pytest.raises(ValueError, match="kind='step'"):
        decay_factor("step", 0.5)


def _logged_lr(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["lr"] for r in rows if "lr" in r]


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_the_dqn_phase_learning_rate_follows_its_schedule_over_the_steps(
    tiny_data: Path, tmp_path: Path, schedule: str
) -> None:
    cfg = TextConfig(data=str(tiny_data), lr_schedule=schedule, **{**TINY, "log_every": 50})
    train_text(cfg, tmp_path / "run", progress=False)
    lrs = _logged_lr(tmp_path / "run")
    assert len(lrs) >= 4
    if schedule == "constant":
        assert lrs == [cfg.lr] * len(lrs)
    else:  # from (nearly) --lr down to (nearly) zero, never up
        assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
        assert lrs[0] > 0.5 * cfg.lr and lrs[-1] < 0.3 * cfg.lr


def test_the_learning_rate_decays_over_the_time_budget(tiny_data: Path, tmp_path: Path) -> None:
    cfg = TextConfig(
        data=str(tiny_data),
        lr_schedule="linear",
        **{**TINY, "mle": False, "minutes": 0.1, "total_steps": 10**9, "log_every": 50},
    )
    result = train_text(cfg, tmp_path / "run", progress=False)
    assert result["stopped"] == "minutes"
    lrs = _logged_lr(tmp_path / "run")
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[0] > 0.6 * cfg.lr and lrs[-1] < 0.3 * cfg.lr  # the steps alone would keep ~lr
