"""The pixel path: frame replay (stacks rebuilt from single frames), the Nature CNN, image
preprocessing, and Atari Pong through the command line (needs the atari extra; those tests skip,
saying so, without it)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from textrl.cli import main
from textrl.dqn.atari import EpisodicLife, is_image_space, make_gym_env
from textrl.dqn.cnn import NatureCNNQNetwork
from textrl.dqn.config import GymConfig
from textrl.dqn.frame_replay import FrameReplay
from textrl.dqn.replay import TransitionReplay
from textrl.dqn.train_gym import load_q_network, train_gym


class FrameCounter(gym.Env):
    """84×84 frames that name themselves: pixel 0-1 the global frame number, pixel 2 the step
    within the episode. Episodes end at random, by termination or truncation."""

    observation_space = spaces.Box(0, 255, (84, 84), np.uint8)
    action_space = spaces.Discrete(3)

    def __init__(self, end_prob: float = 0.15) -> None:
        self.end_prob, self.frames, self.t = end_prob, 0, 0

    def _frame(self) -> np.ndarray:
        self.frames += 1
        frame = np.zeros((84, 84), np.uint8)
        frame.flat[:3] = [self.frames % 256, self.frames // 256 % 256, self.t]
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action: int):
        self.t += 1
        end = bool(self.np_random.random() < self.end_prob)
        return self._frame(), float(action), end and self.t % 2 == 0, end and self.t % 2 == 1, {}


def _stream(replays, steps: int, seed: int = 0, end_prob: float = 0.15):
    """Drive FrameStackObservation(FrameCounter) and add every step to each replay."""
    env = gym.wrappers.FrameStackObservation(FrameCounter(end_prob), 4, padding_type="reset")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for t in range(steps):
        action = int(rng.integers(3))
        nxt, reward, terminated, truncated, _ = env.step(action)
        for replay in replays:
            replay.add(obs, action, reward, nxt, terminated, truncated)
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset()
        yield t


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("prioritized", [False, True])
def test_frame_replay_equals_storing_the_stacks(n_step: int, prioritized: bool) -> None:
    """Every sampleable transition (obs, n-step return, discount, next obs) equals the one of a
    replay that stores the wrapper's own stacks: across episode starts (padding), terminations,
    truncations, n-step windows cut at episode ends, and many wraps of a 37-slot ring."""
    frames = FrameReplay(37, (84, 84), 4, gamma=0.9, n_step=n_step, prioritized=prioritized)
    stacks = TransitionReplay(
        37, (4, 84, 84), gamma=0.9, n_step=n_step, prioritized=prioritized, obs_dtype=np.uint8
    )
    checked = 0
    for t in _stream([frames, stacks], 400):
        if t < 5:
            continue
        idx = frames.sampleable()
        # only the up to 3 oldest steps whose stacks lost a frame to the ring are dropped
        assert set(idx) <= set(stacks.sampleable())
        assert len(stacks.sampleable()) - len(idx) <= 3
        a, b = frames.gather(idx), stacks.gather(idx)
        for name in ("obs", "actions", "returns", "discounts", "next_obs"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        checked += len(idx)
    assert checked > 10_000
    batch = frames.sample(64, np.random.default_rng(0))
    assert batch.obs.shape == (64, 4, 84, 84) and batch.obs.dtype == np.uint8


def _frame_ids(stack: np.ndarray) -> list[int]:
    return [int(f.flat[0]) + 256 * int(f.flat[1]) for f in stack]


def test_frame_replay_stacks_by_hand_at_an_episode_boundary() -> None:
    """Hand-built case: episode A = frames 1..3 (terminated after 2 steps), episode B starts at
    frame 4. 3-step windows stop at A's end; B's first stacks repeat frame 4."""

    def stack(*ids: int) -> np.ndarray:
        out = np.zeros((4, 84, 84), np.uint8)
        for k, i in enumerate(ids):
            out[k].flat[0] = i
        return out

    replay = FrameReplay(16, (84, 84), 4, gamma=0.5, n_step=3)
    replay.add(stack(1, 1, 1, 1), 0, 1.0, stack(1, 1, 1, 2), False, False)
    replay.add(stack(1, 1, 1, 2), 1, 2.0, stack(1, 1, 2, 3), True, False)
    replay.add(stack(4, 4, 4, 4), 2, 4.0, stack(4, 4, 4, 5), False, False)
    replay.add(stack(4, 4, 4, 5), 0, 8.0, stack(4, 4, 5, 6), False, True)
    b = replay.gather(np.arange(4))
    assert [_frame_ids(s) for s in b.obs] == [
        [1, 1, 1, 1],
        [1, 1, 1, 2],
        [4, 4, 4, 4],
        [4, 4, 4, 5],
    ]
    assert [_frame_ids(s) for s in b.next_obs] == [
        [1, 1, 2, 3],  # A's final observation (stored aside), with A's history
        [1, 1, 2, 3],
        [4, 4, 5, 6],  # B truncated: bootstraps from its last observation
        [4, 4, 5, 6],
    ]
    np.testing.assert_allclose(b.returns, [1 + 0.5 * 2, 2, 4 + 0.5 * 8, 8])
    np.testing.assert_allclose(b.discounts, [0, 0, 0.25, 0.5])


def test_frame_replay_refuses_stacks_it_cannot_rebuild() -> None:
    replay = FrameReplay(16, (84, 84), 4)
    zero_padded = np.zeros((4, 84, 84), np.uint8)
    zero_padded[3] = 7  # the reset frame, padded with zeros instead of itself
    with pytest.raises(ValueError, match="padding_type='reset'"):
        replay.add(zero_padded, 0, 0.0, zero_padded, False, False)
    with pytest.raises(ValueError, match="capacity"):
        FrameReplay(4, (84, 84), 4)


def test_frame_replay_memory_and_state_dict_round_trip() -> None:
    frames = FrameReplay(50, (84, 84), 4, n_step=3, prioritized=True)
    for _ in _stream([frames], 120):
        pass
    assert frames.bytes_per_transition() <= 8 * 1024  # the target; stacks: 56 KB
    copy = FrameReplay(50, (84, 84), 4, n_step=3, prioritized=True)
    copy.load_state_dict(frames.state_dict())
    idx = frames.sampleable()
    a, b = frames.gather(idx), copy.gather(idx)
    for name in ("obs", "returns", "next_obs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    with pytest.raises(ValueError, match="FrameReplay"):
        FrameReplay(50, (84, 84), 4).load_state_dict(TransitionReplay(50, (3,)).state_dict())


def test_nature_cnn_shapes_and_dueling() -> None:
    torch.manual_seed(0)
    net = NatureCNNQNetwork((4, 84, 84), 6)
    x = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    assert net(x).shape == (5, 6)
    # Mnih et al. 2015 by hand: conv 4*32*8*8+32, 32*64*4*4+64, 64*64*3*3+64; 3136*512+512;
    # 512*6+6 (3136 = 64 channels of 7x7 after the convolutions of an 84x84 frame)
    by_hand = 8_224 + 32_832 + 36_928 + 1_606_144 + 3_078
    assert sum(p.numel() for p in net.parameters()) == by_hand
    dueling = NatureCNNQNetwork((4, 84, 84), 6, dueling=True)
    h = dueling.features(x.float() / 255)
    adv, value = dueling.head(h), dueling.value(h)
    torch.testing.assert_close(dueling(x), value + adv - adv.mean(-1, keepdim=True))
    with pytest.raises(ValueError, match="obs_shape"):
        NatureCNNQNetwork((84, 84), 6)


class RGBEnv(gym.Env):
    """A non-Atari env with RGB image observations: the reward is 1 for action 1."""

    observation_space = spaces.Box(0, 255, (60, 50, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (60, 50, 3), dtype=np.uint8), {}

    def step(self, action: int):
        self.t += 1
        obs = self.np_random.integers(0, 256, (60, 50, 3), dtype=np.uint8)
        return obs, float(action == 1), False, self.t >= 20, {}


def test_image_envs_get_grayscale_resize_stack_and_the_cnn(tmp_path: Path) -> None:
    """Any image env (here not Atari) trains through the pixel path, and resumes."""
    gym.register("textrl-test/RGB-v0", entry_point=RGBEnv)
    env = make_gym_env("textrl-test/RGB-v0")
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    assert is_image_space(RGBEnv.observation_space)
    assert not is_image_space(spaces.Box(0, 1, (4,), np.float32))
    cfg = GymConfig(
        total_steps=120,
        learning_starts=40,
        batch_size=8,
        buffer_size=200,
        eval_every=0,
        eval_episodes=1,
        checkpoint_every=60,
        log_every=40,
        seed=1,
    )
    result = train_gym("textrl-test/RGB-v0", cfg, tmp_path, progress=False, tensorboard=False)
    assert result["env_steps"] == 120 and result["grad_steps"] == (120 - 40) // 4
    net, env_id = load_q_network(tmp_path)
    assert isinstance(net, NatureCNNQNetwork) and env_id == "textrl-test/RGB-v0"
    more = GymConfig(**{**cfg.__dict__, "total_steps": 160})
    result = train_gym("textrl-test/RGB-v0", more, tmp_path, resume=True, progress=False)
    assert result["env_steps"] == 160


# -- Atari (the atari extra) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ale() -> None:
    pytest.importorskip("ale_py", reason="the atari extra is not installed")
    pytest.importorskip("cv2", reason="the atari extra (OpenCV) is not installed")


def test_pong_preprocessing_train_and_eval_envs(ale: None) -> None:
    train_env = make_gym_env("ALE/Pong-v5", train=True)
    obs, _ = train_env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert all(np.array_equal(f, obs[-1]) for f in obs)  # padded with the first frame
    names = []
    env = train_env
    while isinstance(env, gym.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    assert names[:4] == [
        "FrameStackObservation",
        "ClipReward",
        "EpisodicLife",
        "AtariPreprocessing",
    ]
    assert env.unwrapped._frameskip == 1  # the skipping is AtariPreprocessing's (4)
    eval_env = make_gym_env("ALE/Pong-v5", train=False)
    assert "ClipReward" not in str(eval_env) and "EpisodicLife" not in str(eval_env)


def test_episodic_life_ends_the_episode_but_not_the_game(ale: None) -> None:
    env = make_gym_env("ALE/Breakout-v5", train=True)
    life = env
    while not isinstance(life, EpisodicLife):
        life = life.env
    env.reset(seed=0)
    ale_lives = life.env.unwrapped.ale.lives
    assert ale_lives() == 5
    rng = np.random.default_rng(0)
    for _ in range(5000):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            break
    assert terminated and ale_lives() == 4  # a life lost: the training episode ends...
    env.reset()
    assert ale_lives() == 4  # ...and the game goes on (Gymnasium's own flag would restart it)


def test_pong_through_the_command_line(ale: None, tmp_path: Path, capsys) -> None:
    """A few hundred Pong steps with the Atari preset: CNN, frame replay, learning, the eval
    episode (unclipped, epsilon 0.05), a checkpoint with the replay, resume and textrl eval."""
    out = tmp_path / "pong"
    small = ["--total-steps", "300", "--learning-starts", "100", "--buffer-size", "400"]
    small += ["--eval-episodes", "1", "--no-progress", "--torch-threads", "1"]
    assert main(["train", "--env", "ALE/Pong-v5", "--out", str(out), *small]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["lr"] == 1e-4 and config["train_freq"] == 4 and config["eval_epsilon"] == 0.05
    assert config["target_update_interval"] == 250 and config["batch_size"] == 32
    checkpoint = sorted((out / "checkpoints").iterdir())[-1]
    assert json.loads((checkpoint / "replay.json").read_text())["kind"] == "FrameReplay"
    meta = json.loads((checkpoint / "meta.json").read_text())
    assert meta["network"] == "cnn" and meta["obs_shape"] == [4, 84, 84]
    assert meta["state"]["grad_steps"] == (300 - 100) // 4
    again = ["train", "--out", str(out), "--resume", "--total-steps", "400", "--no-progress"]
    assert main(again) == 0
    meta = json.loads((sorted((out / "checkpoints").iterdir())[-1] / "meta.json").read_text())
    assert meta["state"]["env_steps"] == 400
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "1"]) == 0
    assert "unclipped" in capsys.readouterr().out


def test_pong_resumes_exactly_like_an_uninterrupted_run(ale: None, tmp_path: Path) -> None:
    """Stopped at the first episode end and resumed, a Pong run ends with the same weights,
    replay frames and counters as one never stopped (seeded resets, FrameReplay checkpoint)."""
    from textrl.dqn.checkpoints import RunDir
    from textrl.dqn.config import ZOO_ATARI

    cfg = GymConfig(
        **{
            **ZOO_ATARI,
            "total_steps": 1200,
            "learning_starts": 1000,
            "buffer_size": 2000,
            "eval_every": 0,
            "eval_episodes": 1,
            "eval_epsilon": 1.0,  # one random game, seeded: cheap and still compared
            "checkpoint_every": 0,
            "torch_threads": 1,
        }
    )
    full = train_gym("ALE/Pong-v5", cfg, tmp_path / "full", progress=False, tensorboard=False)

    def stop_at_first_episode_end(info: dict) -> bool:
        return not info["episode_done"]

    part = train_gym(
        "ALE/Pong-v5",
        cfg,
        tmp_path / "cut",
        progress=False,
        tensorboard=False,
        callback=stop_at_first_episode_end,
    )
    assert part["stopped"] == "callback" and part["episodes"] == 1
    resumed = train_gym(
        "ALE/Pong-v5", cfg, tmp_path / "cut", resume=True, progress=False, tensorboard=False
    )
    assert (resumed["env_steps"], resumed["grad_steps"]) == (1200, full["grad_steps"])
    assert resumed["eval_returns"] == full["eval_returns"]
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    for key, value in a.replay_state["arrays"].items():
        np.testing.assert_array_equal(value, b.replay_state["arrays"][key], err_msg=key)
