"""Tests of the replay memories (textrl.replay): sum tree, n-step arithmetic, next-observation
bookkeeping across episode ends and wrap-around, episode replay eviction and priorities."""

from __future__ import annotations

import numpy as np
import pytest

from textrl.dqn.episode_replay import EpisodeReplay, nstep_arrays, stack_padded
from textrl.dqn.replay import TransitionReplay
from textrl.dqn.sum_tree import SumTree

# --------------------------------------------------------------------------------------------
# SumTree


def test_sum_tree_sampling_follows_priorities() -> None:
    tree = SumTree(6)  # not a power of two
    prios = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    tree.update(np.arange(6), prios)
    assert tree.total == 20.0 and tree.min == 1.0
    rng = np.random.default_rng(0)
    idx, got = tree.sample(100_000, rng)
    assert np.array_equal(got, prios[idx])
    freq = np.bincount(idx, minlength=6) / idx.size
    assert freq[4] == 0.0  # a zero priority is never drawn
    np.testing.assert_allclose(freq, prios / prios.sum(), atol=0.005)


def test_sum_tree_updates_and_stratification() -> None:
    tree = SumTree(5)
    tree.update([0, 1, 2, 3, 4], 1.0)
    tree.update([2, 2], [7.0, 3.0])  # last write wins
    tree.update(0, 0.0)
    assert tree.total == pytest.approx(1 + 3 + 1 + 1) and tree.min == 1.0
    assert tree[2] == 3.0
    # stratified: n draws over equal-mass segments hit each unit-mass leaf exactly once
    tree.update(2, 1.0)
    idx, _ = tree.sample(4, np.random.default_rng(1))
    assert sorted(idx.tolist()) == [1, 2, 3, 4]
    with pytest.raises(IndexError):
        tree.update(5, 1.0)
    with pytest.raises(ValueError, match="finite"):
        tree.update(1, np.nan)
    with pytest.raises(ValueError, match="zero"):
        SumTree(3).sample(2, np.random.default_rng(0))


def test_sum_tree_grow_keeps_every_sum_minimum_and_sample() -> None:
    rng = np.random.default_rng(0)
    prios = rng.random(7) * (rng.random(7) > 0.3)
    small, big = SumTree(7), SumTree(100)
    small.update(np.arange(7), prios)
    big.update(np.arange(7), prios)
    small.grow(100)
    assert small.capacity == 100 and np.array_equal(small.leaves(), big.leaves())
    assert small.total == big.total and small.min == big.min
    a, pa = small.sample(50, np.random.default_rng(1))
    b, pb = big.sample(50, np.random.default_rng(1))
    assert np.array_equal(a, b) and np.array_equal(pa, pb)
    small.update(99, 5.0)  # the new leaves are usable
    assert small.total == pytest.approx(prios.sum() + 5.0)
    with pytest.raises(ValueError, match="shrink"):
        small.grow(10)


# --------------------------------------------------------------------------------------------
# n-step arithmetic (hand-computed, gamma = 0.5, rewards 1, 2, 3, 4)


def test_nstep_arrays_terminated_and_truncated() -> None:
    r = np.array([1.0, 2.0, 3.0, 4.0])
    ret, disc, boot = nstep_arrays(r, True, 0.5, 1)
    assert ret.tolist() == [1, 2, 3, 4]
    assert disc.tolist() == [0.5, 0.5, 0.5, 0.0] and boot.tolist() == [1, 2, 3, 4]
    ret, disc, boot = nstep_arrays(r, False, 0.5, 1)
    assert disc.tolist() == [0.5, 0.5, 0.5, 0.5]

    ret, disc, boot = nstep_arrays(r, True, 0.5, 3)
    # t=0: 1 + .5*2 + .25*3; t=1: 2 + .5*3 + .25*4; t=2: 3 + .5*4; t=3: 4
    assert ret.tolist() == [2.75, 4.5, 5.0, 4.0]
    assert boot.tolist() == [3, 4, 4, 4]
    assert disc.tolist() == [0.125, 0.0, 0.0, 0.0]  # windows reaching the EOS state: 0
    ret, disc, boot = nstep_arrays(r, False, 0.5, 3)  # truncated: bootstrap from state 4
    assert ret.tolist() == [2.75, 4.5, 5.0, 4.0]
    assert disc.tolist() == [0.125, 0.125, 0.25, 0.5]


def test_stack_padded() -> None:
    padded, lengths = stack_padded([np.array([1, 2, 3]), np.array([4])], pad_value=-1)
    assert padded.tolist() == [[1, 2, 3], [4, -1, -1]] and lengths.tolist() == [3, 1]


# --------------------------------------------------------------------------------------------
# TransitionReplay: observations encode (episode, t) so every sample can be checked


def _episodes(lengths: list[int], ends: list[str]) -> list[list[tuple]]:
    """Steps (obs, action, reward, next_obs, terminated, truncated) with obs = (ep, t)."""
    out = []
    for ep, (T, end) in enumerate(zip(lengths, ends, strict=True)):
        steps = []
        for t in range(T):
            last = t == T - 1
            steps.append(
                (
                    np.array([ep, t], np.float32),
                    t % 2,
                    10.0 * ep + t,
                    np.array([ep, t + 1], np.float32),
                    last and end == "terminated",
                    last and end == "truncated",
                )
            )
        out.append(steps)
    return out


def _check_batch(batch, lengths, ends, gamma, n, stored) -> None:
    for i in range(len(batch.actions)):
        ep, t = (int(v) for v in batch.obs[i])
        assert (ep, t) in stored, "sampled a step that is not stored (overwritten?)"
        nep, nt = (int(v) for v in batch.next_obs[i])
        m = nt - t
        assert nep == ep and 1 <= m <= n
        assert (
            m == n
            or t + m == lengths[ep]
            or (ep, t + m) not in stored
            or (ep, t + m) == max(stored)
        )
        assert batch.returns[i] == pytest.approx(
            sum(gamma**k * (10.0 * ep + t + k) for k in range(m))
        )
        terminal = t + m == lengths[ep] and ends[ep] == "terminated"
        assert batch.discounts[i] == pytest.approx(0.0 if terminal else gamma**m)
        assert batch.actions[i] == t % 2


@pytest.mark.parametrize("n", [1, 3])
def test_transition_replay_next_obs_across_episode_ends_and_wraparound(n: int) -> None:
    lengths, ends = (
        [4, 2, 5, 3, 6],
        ["terminated", "truncated", "truncated", "terminated", "truncated"],
    )
    gamma, capacity = 0.9, 7
    replay = TransitionReplay(capacity, (2,), gamma=gamma, n_step=n)
    rng = np.random.default_rng(0)
    added: list[tuple[int, int]] = []
    for steps in _episodes(lengths, ends):
        for obs, a, r, nxt, term, trunc in steps:
            replay.add(obs, a, r, nxt, term, trunc)
            added.append((int(obs[0]), int(obs[1])))
            stored = set(added[-capacity:])
            if len(added) == 1:  # the first step still awaits its next observation
                continue
            batch = replay.sample(64, rng)
            _check_batch(batch, lengths, ends, gamma, n, stored)
    assert replay.full and len(replay) == capacity
    # the newest step (a truncation) is sampleable and bootstraps from its own final obs
    seen = {tuple(o) for o in replay.sample(500, rng).obs.astype(int).tolist()}
    assert seen == {(3, 2), (4, 0), (4, 1), (4, 2), (4, 3), (4, 4), (4, 5)}  # the last 7


def test_transition_replay_pending_step_and_continuity_check() -> None:
    replay = TransitionReplay(10, (1,), n_step=2, gamma=0.5)
    with pytest.raises(ValueError, match="no complete transition"):
        replay.add([0.0], 0, 1.0, [1.0], False, False)
        replay.sample(4, np.random.default_rng(0))
    replay.add([1.0], 1, 2.0, [2.0], False, False)
    batch = replay.sample(50, np.random.default_rng(0))
    assert set(batch.obs[:, 0].tolist()) == {0.0}  # step (1 -> 2) still awaits its next obs
    assert batch.returns[0] == 1.0 and batch.discounts[0] == 0.5  # window cut at the newest
    with pytest.raises(ValueError, match="differs from the previous next_obs"):
        replay.add([5.0], 0, 0.0, [6.0], False, False)


def test_transition_replay_vectorised_envs_and_masks() -> None:
    replay = TransitionReplay(12, (1,), num_envs=2, gamma=0.5, n_step=2)
    # env 0: episode of 3 steps (truncated); env 1: episodes of 1 (terminated) then 2 steps
    obs = np.array([[0.0], [100.0]])
    plan = [(False, False, True, False), (False, False, False, False), (False, True, False, False)]
    for k, (term0, trunc0, term1, trunc1) in enumerate(plan):
        nxt = obs + 1
        mask = np.array([[1, 1, 0], [0, 1, 1]], np.int8)
        replay.add(
            obs,
            np.array([k, k]),
            np.array([1.0, 2.0]),
            nxt,
            [term0, term1],
            [trunc0, trunc1],
            mask=mask,
            next_mask=np.array([[1, 0, 0], [0, 0, 1]]),
        )
        obs = nxt.copy()
        if term1:
            obs[1] = 200.0  # env 1 resets
    batch = replay.sample(200, np.random.default_rng(0))
    for o, nxt, ret, disc, m, nm in zip(
        batch.obs[:, 0],
        batch.next_obs[:, 0],
        batch.returns,
        batch.discounts,
        batch.masks,
        batch.next_masks,
        strict=True,
    ):
        if o == 100.0:  # terminated after one step
            assert nxt == 101.0 and ret == 2.0 and disc == 0.0
        elif o < 100:  # env 0: 0 -> 1 -> 2 -> 3 (truncated)
            assert nxt == min(o + 2, 3)
            assert disc == (0.25 if o < 2 else 0.5)
            assert m.tolist() == [1, 1, 0]
            if nxt == 3.0:
                assert nm.tolist() == [1, 0, 0]  # the final next mask stored at truncation
        else:
            assert o == 200.0 and nxt == 201.0 and disc == 0.5  # 201 -> pending
    assert set(batch.obs[:, 0].tolist()) == {0.0, 1.0, 2.0, 100.0, 200.0}


def test_transition_replay_prioritized_sampling_and_state_dict() -> None:
    replay = TransitionReplay(20, (1,), prioritized=True, alpha=1.0, eps=0.0)
    for t in range(10):
        replay.add([float(t)], 0, 0.0, [float(t + 1)], t == 9, False)
    rng = np.random.default_rng(0)
    batch = replay.sample(10, rng)
    replay.update_priorities(batch.indices, np.where(batch.obs[:, 0] == 3.0, 9.0, 0.1))
    batch = replay.sample(4000, rng, beta=1.0)
    share = (batch.obs[:, 0] == 3.0).mean()
    assert share > 0.9  # priority 9 against 9 * 0.1 (+ the step never sampled at max 1)
    assert batch.weights.max() == pytest.approx(1.0)
    assert batch.weights[batch.obs[:, 0] == 3.0][0] == pytest.approx(0.1 / 9.0)

    clone = TransitionReplay(20, (1,), prioritized=True, alpha=1.0, eps=0.0)
    clone.load_state_dict(replay.state_dict())
    a, b = replay.sample(32, np.random.default_rng(5)), clone.sample(32, np.random.default_rng(5))
    for x, y in zip(a, b, strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)
    with pytest.raises(ValueError, match="rows"):
        TransitionReplay(30, (1,), prioritized=True).load_state_dict(replay.state_dict())


# --------------------------------------------------------------------------------------------
# EpisodeReplay


def _add(replay: EpisodeReplay, T: int, demo: bool = False, reward: float = 0.0) -> int:
    return replay.add(
        source=np.arange(5),
        tokens=np.arange(T) + 10,
        actions=np.arange(T),
        rewards=np.full(T, reward),
        terminated=T % 2 == 0,
        is_demo=demo,
        allowed=[7, 3, 3, 1] if demo else None,
    )


def test_episode_replay_evicts_oldest_agent_episodes_and_keeps_demos() -> None:
    replay = EpisodeReplay(capacity=10, demo_capacity=6)
    d1, d2 = _add(replay, 3, demo=True), _add(replay, 3, demo=True)
    a1, a2, a3 = _add(replay, 4), _add(replay, 4), _add(replay, 2)
    assert replay.transitions == {False: 10, True: 6}
    a4 = _add(replay, 3)  # evicts a1 only (10 - 4 + 3 = 9)
    assert a1 not in replay.episodes and set(replay.episodes) == {d1, d2, a2, a3, a4}
    for _ in range(5):
        _add(replay, 5)  # agent data never pushes demonstrations out
    assert {d1, d2} <= set(replay.episodes) and replay.transitions[False] <= 10
    d3 = _add(replay, 2, demo=True)  # past demo_capacity: the oldest demo goes
    assert d1 not in replay.episodes and {d2, d3} <= set(replay.episodes)
    assert replay.episodes[d2].allowed.tolist() == [1, 3, 7]
    with pytest.raises(ValueError, match="same length"):
        replay.add([1], [1, 2], [1], [0.0], True)
    with pytest.raises(ValueError, match="exceeds capacity"):
        _add(replay, 11)


def test_episode_replay_priority_updates_change_sampling() -> None:
    replay = EpisodeReplay(capacity=100, alpha=1.0, eps=0.0, demo_bonus=0.0)
    ids = [_add(replay, 3) for _ in range(4)]
    rng = np.random.default_rng(0)
    counts = np.bincount(replay.sample_episodes(4000, rng).episode_ids, minlength=4)
    assert counts.min() > 900  # all new episodes share the max priority
    replay.update_priorities(
        ids, [np.array([0.1, -5.0, 0.2]), np.array([0.1]), np.array([0.1]), np.array([0.1])]
    )
    batch = replay.sample_episodes(4000, rng, beta=0.5)
    share = (batch.episode_ids == ids[0]).mean()
    assert share == pytest.approx(5.0 / 5.3, abs=0.02)  # max |TD| of episode 0 is 5
    w = batch.weights[batch.episode_ids == ids[0]][0]
    assert w == pytest.approx((5.0 / 0.1) ** -0.5)
    replay.update_priorities([12345], [np.array([1.0])])  # evicted/unknown ids are ignored


def test_episode_replay_demo_bonus() -> None:
    replay = EpisodeReplay(capacity=100, demo_capacity=100, alpha=1.0, eps=0.0, demo_bonus=1.0)
    agent, demo = _add(replay, 2), _add(replay, 2, demo=True)
    replay.update_priorities([agent, demo], [np.array([1.0]), np.array([1.0])])
    ids = replay.sample_episodes(3000, np.random.default_rng(0)).episode_ids
    assert (ids == demo).mean() == pytest.approx(2 / 3, abs=0.02)


def test_episode_replay_state_dict_round_trip() -> None:
    replay = EpisodeReplay(capacity=12, demo_capacity=4, alpha=0.7)
    _add(replay, 3, demo=True)
    for T in (4, 5, 3, 2):
        _add(replay, T, reward=T)
    replay.update_priorities(
        list(replay.episodes), [np.full(3, k + 1.0) for k in range(len(replay))]
    )
    state = replay.state_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state["arrays"].values())
    clone = EpisodeReplay(1)
    clone.load_state_dict(state)
    assert list(clone.episodes) == list(replay.episodes) and clone.next_id == replay.next_id
    for eid, ep in replay.episodes.items():
        other = clone.episodes[eid]
        for x, y in zip(ep, other, strict=True):
            assert (x is None and y is None) or np.array_equal(x, y)
    a = replay.sample_episodes(16, np.random.default_rng(3))
    b = clone.sample_episodes(16, np.random.default_rng(3))
    assert np.array_equal(a.episode_ids, b.episode_ids) and np.allclose(a.weights, b.weights)
    assert clone.add([1], [1], [1], [1.0], True) == replay.next_id


def _churn(replay: EpisodeReplay, n: int, seed: int = 0) -> list[int]:
    """Add ``n`` episodes of random lengths (evicting old ones); returns the slots they got."""
    rng = np.random.default_rng(seed)
    got = []
    for _ in range(n):
        eid = _add(replay, int(rng.integers(1, 6)), demo=bool(rng.random() < 0.2))
        got.append(replay.slot[eid])
    return got


def test_episode_replay_grows_its_tree_and_samples_as_a_full_size_one(monkeypatch) -> None:
    """A store with a large capacity (the text learner keeps 10M demonstrations) starts small and
    doubles; slots, samples and weights are exactly those of a tree allocated at full size."""
    small = EpisodeReplay(capacity=3000, demo_capacity=200_000)
    assert small.tree.capacity == 1024 and len(small.state_dict()["arrays"]["free_slots"]) == 0
    monkeypatch.setattr("textrl.dqn.episode_replay._INITIAL_SLOTS", 1 << 30)
    full = EpisodeReplay(capacity=3000, demo_capacity=200_000)
    assert full.tree.capacity == 203_000
    assert _churn(small, 2500) == _churn(full, 2500)  # eviction gives slots back in both
    assert 1024 < small.tree.capacity < 10_000
    a = small.sample_episodes(64, np.random.default_rng(2), beta=0.5)
    b = full.sample_episodes(64, np.random.default_rng(2), beta=0.5)
    assert np.array_equal(a.episode_ids, b.episode_ids) and np.array_equal(a.weights, b.weights)


def test_episode_replay_loads_a_checkpoint_with_the_whole_free_list() -> None:
    """Checkpoints written before the tree could grow list every free slot (never-used ones
    first, descending); loading one must hand out slots in the order the old code would."""
    replay = EpisodeReplay(capacity=40, demo_capacity=10)
    _churn(replay, 60)
    state = replay.state_dict()
    meta = dict(state["meta"])
    fresh = meta.pop("fresh_slots_from")
    assert 0 < fresh < 50 and len(state["arrays"]["free_slots"]) > 0  # both kinds present
    old_list = np.concatenate([np.arange(49, fresh - 1, -1), state["arrays"]["free_slots"]])
    old = {"arrays": {**state["arrays"], "free_slots": old_list}, "meta": meta}
    clone = EpisodeReplay(1)
    clone.load_state_dict(old)
    assert clone.slot == replay.slot
    assert _churn(clone, 30, seed=5) == _churn(replay, 30, seed=5)


@pytest.mark.parametrize("prioritized", [True, False])
def test_demos_kept_apart_are_drawn_only_by_sample_demos(prioritized: bool) -> None:
    """demos_in_batch=False (self-imitation's elite store): demonstrations never enter the
    TD batch, sample_demos draws only them, and a checkpoint keeps the setting."""
    replay = EpisodeReplay(50, 9, prioritized, demos_in_batch=False)
    with pytest.raises(ValueError, match="no demonstration"):
        replay.sample_demos(1, np.random.default_rng(0))
    agent = {_add(replay, 3) for _ in range(4)}
    demos = {_add(replay, 3, demo=True) for _ in range(3)}
    rng = np.random.default_rng(0)
    assert set(replay.sample_episodes(500, rng).episode_ids.tolist()) == agent
    drawn = replay.sample_demos(300, rng)
    assert all(e.is_demo for e in drawn) and len({id(e) for e in drawn}) == 3
    _add(replay, 3, demo=True)  # past demo_capacity=9: the oldest elite goes
    assert replay.transitions[True] == 9 and min(demos) not in replay.episodes
    clone = EpisodeReplay(1)
    clone.load_state_dict(replay.state_dict())
    assert not clone.demos_in_batch
    assert set(clone.sample_episodes(200, rng).episode_ids.tolist()) == agent


def test_truncate_pending_closes_an_open_episode_with_its_known_next_obs() -> None:
    replay = TransitionReplay(10, (1,), gamma=0.5, n_step=3)
    for t in range(3):
        replay.add([float(t)], 0, 1.0, [float(t + 1)], False, False, next_mask=[1, 0])
    replay.truncate_pending()  # e.g. a resume from a mid-episode checkpoint
    replay.add([10.0], 0, 1.0, [11.0], True, False)  # a fresh episode: no continuity error
    batch = replay.sample(100, np.random.default_rng(0))
    newest = batch.obs[:, 0] == 2.0
    assert newest.any() and (batch.next_obs[newest, 0] == 3.0).all()
    assert (batch.discounts[newest] == 0.5).all()  # truncated: bootstraps
    assert (batch.next_obs[batch.obs[:, 0] == 0.0, 0] == 3.0).all()  # windows stop there
