"""Tests of the vector-observation DQN loop (textrl.dqn.train_gym) and of settings on the
command line (textrl.dqn.config, textrl.cli.options): files of a run, exact resume, the NaN guard,
action masks, option merging, ``textrl train --env``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import textrl.dqn.train_gym as train_gym_module
from textrl.cli import main
from textrl.cli.options import add_config_arguments, load_config_file, resolve_config
from textrl.dqn.checkpoints import RunDir
from textrl.dqn.config import PRESETS, GymConfig, option
from textrl.dqn.train_gym import evaluate_gym, train_gym

TINY = dict(
    total_steps=600,
    learning_starts=100,
    train_freq=4,
    gradient_steps=2,
    batch_size=16,
    buffer_size=1000,
    net_arch="16",
    target_update_interval=20,
    eval_every=300,
    eval_episodes=2,
    checkpoint_every=200,
    log_every=100,
    eps_fraction=0.5,
    seed=3,
)


def _cfg(**kwargs) -> GymConfig:
    return GymConfig(**{**TINY, **kwargs})


def test_tiny_run_writes_config_metrics_checkpoint_curves(tmp_path: Path) -> None:
    result = train_gym(
        "CartPole-v1",
        _cfg(n_step=3, prioritized=True, dueling=True),
        tmp_path,
        progress=False,
        tensorboard=True,
    )
    assert result["env_steps"] == 600 and result["stopped"] == "total_steps"
    assert result["grad_steps"] == (600 - 100) // 4 * 2
    assert len(result["eval_returns"]) == 2 and result["eval_mean_return"] > 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["env_id"] == "CartPole-v1" and config["n_step"] == 3
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"train/episode_return", "train/loss", "train/epsilon", "eval/mean_return"} <= keys
    assert (tmp_path / "curves.png").stat().st_size > 1000 and (tmp_path / "tb").is_dir()
    ckpt = RunDir(tmp_path).load_latest()
    assert ckpt is not None and ckpt.step == 600 and ckpt.meta["state"]["grad_steps"] == 250
    assert len(RunDir(tmp_path).checkpoints()) <= TINY.get("keep_checkpoints", 2)
    again = evaluate_gym(tmp_path, episodes=2, seed=3 + 1_000_003)
    assert again["returns"] == result["eval_returns"]  # same greedy policy, same seeds
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_gym("CartPole-v1", _cfg(), tmp_path, progress=False, tensorboard=False)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    cfg = _cfg(checkpoint_every=150)
    full = train_gym("CartPole-v1", cfg, tmp_path / "full", progress=False, tensorboard=False)

    def stop_after_300(state: dict) -> bool:  # an interruption at an episode boundary
        return not (state["env_steps"] >= 300 and state["episode_done"])

    part = train_gym(
        "CartPole-v1",
        cfg,
        tmp_path / "cut",
        progress=False,
        tensorboard=False,
        callback=stop_after_300,
    )
    assert part["stopped"] == "callback" and 300 <= part["env_steps"] < 600
    resumed = train_gym(
        "CartPole-v1", cfg, tmp_path / "cut", resume=True, progress=False, tensorboard=False
    )
    assert resumed["env_steps"] == 600 and resumed["grad_steps"] == full["grad_steps"]
    assert resumed["episodes"] == full["episodes"]
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    assert resumed["eval_returns"] == full["eval_returns"]
    steps = [
        json.loads(x)["step"] for x in (tmp_path / "cut/metrics.jsonl").read_text().split("\n") if x
    ]
    assert steps == sorted(steps)  # no duplicated tail from the interrupted run


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_td_loss, calls = train_gym_module.td_loss, [0]

    def poisoned(*args, **kwargs):
        loss, td = real_td_loss(*args, **kwargs)
        calls[0] += 1
        return (loss * float("nan") if calls[0] > 150 else loss), td

    monkeypatch.setattr(train_gym_module, "td_loss", poisoned)
    with pytest.raises(
        FloatingPointError,
        match=r"loss is nan .*diverged.*last good checkpoint"
        r".*step-0000",
    ):
        train_gym(
            "CartPole-v1", _cfg(checkpoint_every=100), tmp_path, progress=False, tensorboard=False
        )
    ckpt = RunDir(tmp_path).load_latest()
    assert ckpt is not None and ckpt.step < 600
    assert all(torch.isfinite(v).all() for v in ckpt.model_state.values())
    assert '"diverged": 1' in (tmp_path / "metrics.jsonl").read_text()


def test_huge_learning_rate_is_caught(tmp_path: Path) -> None:
    with pytest.raises(FloatingPointError, match="diverged"):
        train_gym(
            "CartPole-v1",
            _cfg(lr=1e30, huber=False, max_grad_norm=None),
            tmp_path,
            progress=False,
            tensorboard=False,
        )


class _MaskedCartPole(gym.Wrapper):
    """CartPole whose info forbids action 1; taking it is an error."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "action_mask": np.array([1, 0], np.int8)}

    def step(self, action):
        assert action == 0, "a masked action was taken"
        obs, r, term, trunc, info = self.env.step(action)
        return obs, r, term, trunc, {**info, "action_mask": np.array([1, 0], np.int8)}


def test_action_mask_in_info_is_respected(tmp_path: Path) -> None:
    env_id = "textrl-test/MaskedCartPole-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=lambda: _MaskedCartPole(gym.make("CartPole-v1")))
    result = train_gym(
        env_id,
        _cfg(total_steps=300, eps_start=1.0, eps_end=1.0),
        tmp_path,
        progress=False,
        tensorboard=False,
    )
    assert result["env_steps"] == 300


def test_unsupported_spaces_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Discrete"):
        train_gym("Pendulum-v1", _cfg(), tmp_path, progress=False, tensorboard=False)


# --------------------------------------------------------------------------------------------
# Configuration and command line


def test_field_help_becomes_option_help_and_works_for_subclasses() -> None:
    @dataclasses.dataclass
    class TextLike(GymConfig):
        vocab: int = option(8, "Vocabulary size.")
        lr: float = option(5e-4, "Overridden learning rate.")

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TextLike, only={"vocab", "lr", "double", "target_update", "gamma"})
    text = " ".join(parser.format_help().split())
    assert "--vocab VOCAB Vocabulary size. (default: 8)" in text
    assert "Overridden learning rate. (default: 0.0005)" in text
    assert "--gamma GAMMA Discount factor. (default: 0.99)" in text
    assert "--double, --no-double" in text and "{hard,polyak}" in text and "--seed" not in text
    cfg = resolve_config(TextLike, parser.parse_args(["--vocab", "3", "--no-double"]))
    assert (cfg.vocab, cfg.double, cfg.lr) == (3, False, 5e-4)


def test_merge_order_defaults_preset_file_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_config_arguments(parser, GymConfig)
    (tmp_path / "c.toml").write_text("lr = 0.01\nbatch_size = 32\nminutes = 2\n")
    args = parser.parse_args(
        ["--config", str(tmp_path / "c.toml"), "--batch-size", "8", "--minutes", "none"]
    )
    saved = {"kind": "gym", "env_id": "CartPole-v1", "gradient_steps": 64, "lr": 0.5}
    cfg = resolve_config(GymConfig, args, preset=PRESETS["CartPole-v1"], saved=saved)
    assert cfg.lr == 0.01  # file over the resumed config
    assert cfg.gradient_steps == 64  # the resumed config over the preset
    assert cfg.batch_size == 8 and cfg.minutes is None  # flags over file
    assert cfg.train_freq == 256  # preset over default
    assert cfg.gamma == GymConfig().gamma  # default
    (tmp_path / "c.json").write_text(json.dumps({"n-step": 3, "prioritized": True}))
    assert load_config_file(tmp_path / "c.json", GymConfig) == {"n_step": 3, "prioritized": True}


def test_config_errors_name_the_key_and_the_expectation(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"learning_rate": 0.1}))
    with pytest.raises(ValueError, match=r"unknown key 'learning_rate'.*Valid keys: seed, "):
        load_config_file(tmp_path / "bad.json", GymConfig)
    (tmp_path / "bad2.json").write_text(json.dumps({"double": "yes"}))
    with pytest.raises(ValueError, match=r"GymConfig.double: expected true or false"):
        load_config_file(tmp_path / "bad2.json", GymConfig)
    with pytest.raises(
        ValueError,
        match=r"GymConfig.gamma: expected a number in \[0, 1\], "
        r"got 1.5",
    ):
        GymConfig(gamma=1.5)
    with pytest.raises(ValueError, match="net_arch"):
        GymConfig(net_arch="64,-1")
    with pytest.raises(ValueError, match="target_update"):
        GymConfig(target_update="soft")  # type: ignore[arg-type]


def test_cli_trains_and_resumes_with_the_saved_config(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = str(tmp_path / "run")
    flags = [
        "train",
        "--env",
        "CartPole-v1",
        "--out",
        run,
        "--no-progress",
        "--net-arch",
        "8",
        "--learning-starts",
        "50",
        "--eval-episodes",
        "1",
        "--buffer-size",
        "500",
    ]
    assert main([*flags, "--total-steps", "150"]) == 0
    assert "step 150" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["train_freq"] == 256 and saved["net_arch"] == "8"  # preset + flags
    assert saved["kind"] == "gym" and saved["env_id"] == "CartPole-v1"
    assert main(["train", "--out", run, "--no-progress", "--resume", "--total-steps", "300"]) == 0
    assert "step 300" in capsys.readouterr().out  # the env and settings come from the run
    assert json.loads((tmp_path / "run/config.json").read_text())["net_arch"] == "8"
    assert main(["train", "--env", "CartPole-v1", "--mle-epochs", "2"]) == 2
    assert "['--mle-epochs'] do not apply to --env CartPole-v1 runs" in capsys.readouterr().err
    assert main(["eval", run, "--episodes", "2"]) == 0
    assert "CartPole-v1: mean return" in capsys.readouterr().out


def test_resume_without_a_checkpoint_starts_a_new_run(tmp_path: Path) -> None:
    result = train_gym(
        "CartPole-v1",
        _cfg(total_steps=120, eval_every=0),
        tmp_path / "new",
        resume=True,
        progress=False,
        tensorboard=False,
    )
    assert result["env_steps"] == 120


def test_resume_refuses_another_env(tmp_path: Path) -> None:
    cfg = _cfg(total_steps=200, eval_every=0)
    train_gym("CartPole-v1", cfg, tmp_path, progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="was trained on CartPole-v1, not Acrobot-v1"):
        train_gym("Acrobot-v1", cfg, tmp_path, resume=True, progress=False, tensorboard=False)


def test_broken_config_files_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"lr": 0.1,,}')
    with pytest.raises(ValueError, match=r"bad.json' is not valid JSON: Expecting"):
        load_config_file(tmp_path / "bad.json", GymConfig)
    (tmp_path / "bad.toml").write_bytes(b"lr = 0.1\n# caf\xe9\n")
    with pytest.raises(ValueError, match=r"bad.toml' is not valid UTF-8"):
        load_config_file(tmp_path / "bad.toml", GymConfig)
    (tmp_path / "bad2.toml").write_text("lr = = 1\n")
    with pytest.raises(ValueError, match=r"bad2.toml' is not valid TOML"):
        load_config_file(tmp_path / "bad2.toml", GymConfig)


def test_ctrl_c_checkpoints_and_the_run_resumes(tmp_path: Path) -> None:
    def interrupt(state: dict) -> bool:
        if state["env_steps"] == 250:
            raise KeyboardInterrupt
        return True

    cut = train_gym(
        "CartPole-v1", _cfg(), tmp_path, progress=False, tensorboard=False, callback=interrupt
    )
    assert cut["stopped"] == "interrupted" and cut["env_steps"] == 250
    assert RunDir(tmp_path).load_latest().step == 250
    resumed = train_gym(
        "CartPole-v1", _cfg(), tmp_path, resume=True, progress=False, tensorboard=False
    )
    assert resumed["env_steps"] == 600 and resumed["stopped"] == "total_steps"


def test_ctrl_c_signal_before_the_first_evaluation_of_a_resumed_run(tmp_path: Path) -> None:
    import os
    import signal

    def ctrl_c_at(step: int):
        def callback(state: dict) -> bool:
            if state["env_steps"] == step:
                os.kill(os.getpid(), signal.SIGINT)  # stops before the next step
            return True

        return callback

    first = train_gym(
        "CartPole-v1", _cfg(), tmp_path, progress=False, tensorboard=False, callback=ctrl_c_at(250)
    )
    assert first["stopped"] == "interrupted" and first["env_steps"] == 250
    again = train_gym(
        "CartPole-v1",
        _cfg(),
        tmp_path,
        resume=True,
        progress=False,
        tensorboard=False,
        callback=ctrl_c_at(260),
    )
    assert again["stopped"] == "interrupted" and again["env_steps"] == 260  # no KeyError
    assert RunDir(tmp_path).load_latest().step == 260
