"""Ape-X on Ray (textrl.dqn.distributed): a local Ray with 2 CPUs runs CartPole and a tiny text
run with 2 actors to completion; episodes from every actor reach replay, weights versions
advance, a killed actor is restarted without stopping the run, and a resumed run continues its
counters and replay. Needs the distributed extra (Ray); skips, saying why, without it or where
Ray cannot start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_train_text import TINY

from textrl.dqn.checkpoints import RunDir
from textrl.dqn.config import PRESETS, GymConfig
from textrl.dqn.distributed import apex_epsilons
from textrl.dqn.train_gym import train_gym
from textrl.text.config import TextConfig
from textrl.text.train import train_text


def test_apex_epsilons_follow_the_paper() -> None:
    eps = apex_epsilons(8, 0.4, 7.0)
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert all(a > b for a, b in zip(eps, eps[1:]))
    assert apex_epsilons(3, 0.4, 7.0)[1] == pytest.approx(0.4**4.5)
    assert apex_epsilons(1) == [0.4]
    with pytest.raises(ValueError, match="actors"):
        apex_epsilons(0)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the distributed extra (Ray) is not installed")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - e.g. no shared memory in a sandbox: say so
        pytest.skip(f"a local Ray cannot start here: {exc}")
    yield ray
    ray.shutdown()


def _cartpole(**kwargs) -> GymConfig:
    values = {
        **PRESETS["CartPole-v1"],
        "total_steps": 3000,
        "learning_starts": 500,
        "train_freq": 64,
        "gradient_steps": 16,
        "actors": 2,
        "actor_steps": 100,
        "publish_every": 16,
        "eval_every": 0,
        "eval_episodes": 2,
        "checkpoint_every": 1500,
        "log_every": 500,
        "prioritized": True,
        **kwargs,
    }
    return GymConfig(**values)


def test_cartpole_with_two_actors_runs_to_completion(local_ray, tmp_path: Path) -> None:
    result = train_gym("CartPole-v1", _cartpole(), tmp_path, progress=False, tensorboard=False)
    assert result["stopped"] == "total_steps" and result["env_steps"] >= 3000
    assert all(n > 0 for n in result["actor_episodes"])  # every actor's episodes arrived
    assert sum(result["actor_episodes"]) == result["episodes"]
    # the in-process replay ratio, kept however fast the actors are: 16 updates per 64 steps
    assert result["grad_steps"] == (result["env_steps"] - 500) // 64 * 16
    assert result["weights_version"] == result["grad_steps"] // 16
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    actors = {r["train/actor"] for r in records if "train/actor" in r}
    assert actors == {0, 1}
    lags = [r["apex/policy_lag"] for r in records if r.get("apex/policy_lag") is not None]
    assert lags and all(lag >= 0 for lag in lags)
    ckpt = RunDir(tmp_path).load_latest()
    assert ckpt is not None
    assert ckpt.replay_state["arrays"]["pending"].sum() == 0  # whole episodes only


def test_a_killed_actor_is_restarted_and_the_run_goes_on(local_ray, tmp_path: Path) -> None:
    """Actor 0 is killed after 800 steps; the run goes on and stops (by the callback) once the
    restarted actor has delivered episodes again. No race with the other actor: the step cap
    is far above what the restart needs (on a loaded machine the other actor used to reach a
    4,000-step cap before Ray had restarted this one)."""
    from textrl.dqn.train_gym import GymTrainer

    trainer = GymTrainer("CartPole-v1", _cartpole(total_steps=50_000), tmp_path, False, False)
    killed: list[int] = []
    before: list[int] = []  # actor 0's episodes when the pool saw its call die

    def callback(info: dict) -> bool:
        if not killed and info["env_steps"] >= 800:
            info["pool"].kill(0)
            killed.append(info["env_steps"])
        if killed and not before and info["pool"].failures:
            before.append(trainer.actor_episodes[0])
        # stop once the restarted actor 0 has delivered again
        return not (before and trainer.actor_episodes[0] > before[0])

    result = trainer.run(progress=False, callback=callback)
    assert killed and result["stopped"] == "callback" and result["env_steps"] > killed[0]
    assert result["actor_restarts"] >= 1
    assert result["actor_episodes"][0] > before[0]  # the restarted actor delivered again


def test_resume_with_actors_continues_counters_and_replay(local_ray, tmp_path: Path) -> None:
    first = train_gym("CartPole-v1", _cartpole(total_steps=1500), tmp_path, progress=False)
    replay_len = len(RunDir(tmp_path).load_latest().replay_state["arrays"]["actions"])
    assert replay_len == first["env_steps"]
    again = train_gym(
        "CartPole-v1", _cartpole(total_steps=2500), tmp_path, resume=True, progress=False
    )
    assert again["env_steps"] >= 2500 and again["episodes"] > first["episodes"]
    assert again["grad_steps"] > first["grad_steps"]
    state = RunDir(tmp_path).load_latest()
    assert len(state.replay_state["arrays"]["actions"]) == again["env_steps"]


def test_tiny_text_run_with_two_actors(local_ray, tiny_data: Path, tmp_path: Path) -> None:
    cfg = TextConfig(
        data=str(tiny_data),
        **{**TINY, "total_steps": 600, "actors": 2, "publish_every": 2, "eval_every": 300},
    )
    result = train_text(cfg, tmp_path, progress=False)
    assert result["env_steps"] >= 600 and result["grad_steps"] > 0
    assert all(n > 0 for n in result["actor_episodes"])
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    versions = [r["apex/version"] for r in records if "apex/version" in r]
    assert versions and max(versions) >= 1
    assert np.isfinite(result["best_eval"])


def test_text_actors_refuse_on_policy_settings(tiny_data: Path) -> None:
    for bad in ({"algo": "scst"}, {"relative_reward": True}, {"explore_temperature": 0.5}):
        with pytest.raises(ValueError, match="TextConfig.actors"):
            TextConfig(data=str(tiny_data), **{**TINY, "actors": 2, **bad})


def test_pong_frames_travel_unstacked_and_are_restacked(local_ray, tmp_path: Path) -> None:
    """The Atari path with an actor: episodes arrive as single frames and the learner's
    FrameReplay rebuilds the stacks (its add checks every stack against the stored frames)."""
    pytest.importorskip("ale_py", reason="the atari extra is not installed")
    from textrl.dqn.config import ZOO_ATARI

    cfg = GymConfig(
        **{
            **ZOO_ATARI,
            "total_steps": 900,
            "learning_starts": 700,
            "buffer_size": 3000,
            "actors": 1,
            "actor_steps": 300,
            "eval_every": 0,
            "eval_episodes": 1,
            "eval_epsilon": 1.0,
            "checkpoint_every": 0,
        }
    )
    result = train_gym("ALE/Pong-v5", cfg, tmp_path, progress=False, tensorboard=False)
    assert result["actor_episodes"] == [result["episodes"]] and result["episodes"] >= 1
    replay = RunDir(tmp_path).load_latest().replay_state
    assert replay["meta"]["kind"] == "FrameReplay"
    # one 84x84 frame per step (rows, envs, H, W)
    assert replay["arrays"]["obs"].shape == (result["env_steps"], 1, 84, 84)


def test_device_settings_are_checked(tiny_data: Path, tmp_path: Path) -> None:
    import torch

    from textrl.dqn.core import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device"):
        GymConfig(device="tpu")
    if not torch.cuda.is_available():  # refused before the run folder is made
        cfg = TextConfig(data=str(tiny_data), **{**TINY, "device": "cuda"})
        with pytest.raises(ValueError, match="no CUDA device"):
            train_text(cfg, tmp_path / "run", progress=False)
        assert not (tmp_path / "run").exists()


def test_without_actors_ray_is_never_imported(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from textrl.cli import main\n"
        f"main(['train', '--env', 'CartPole-v1', '--out', {str(tmp_path)!r}, '--total-steps',"
        " '300', '--learning-starts', '100', '--eval-episodes', '1', '--no-progress'])\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_missing_ray_is_a_clear_error_before_anything_is_written(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import sys

    from textrl.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ModuleNotFoundError
    out = tmp_path / "run"
    args = ["train", "--env", "CartPole-v1", "--actors", "2", "--out", str(out), "--no-progress"]
    assert main(args) == 2
    assert "pip install 'textrl-gym[distributed]'" in capsys.readouterr().err
    assert not out.exists()
