"""Environments of the Gymnasium path, with the DQN papers' preprocessing for pixel observations.

:func:`make_gym_env` is the one place ``textrl train --env ID`` and ``textrl eval`` build an env.
Vector observations pass through unchanged. Image observations (a ``uint8`` Box of shape
``(H, W)`` or ``(H, W, C)``) get the preprocessing of Mnih et al. (2015), chosen automatically:

- Atari (``ALE/...`` ids and the ``...NoFrameskip`` ones; needs ``pip install
  'textrl-gym[atari]'``): the base env is made with ``frameskip=1`` and Gymnasium's
  ``AtariPreprocessing`` does up to 30 no-op starts, repeats each action for 4 frames (max-pooling
  the last two), converts to grayscale and resizes to 84×84. Sticky actions stay at the v5
  default (``repeat_action_probability=0.25``, Machado et al. 2018). For **training only**:
  rewards are clipped to [-1, 1] (Gymnasium's ``ClipReward``; Atari rewards are integers, so
  this is their sign) and a lost life ends the episode (:class:`EpisodicLife`).
  Gymnasium's own ``terminal_on_life_loss`` restarts the whole game at the next ``reset``; the
  papers' episodic life only *marks* the loss as terminal for learning and plays on, which is
  what :class:`EpisodicLife` does (as SB3's ``EpisodicLifeEnv``).
- Any other image env: ``GrayscaleObservation`` and ``ResizeObservation`` to 84×84.

Then ``FrameStackObservation`` stacks the last 4 frames (padding an episode's start with its
first frame): observations are ``(4, 84, 84)`` ``uint8``. Evaluation envs (``train=False``)
keep the game's own rewards and lives, so returns are the unclipped game scores the papers
report. No ``FireReset``: the agent has the FIRE action and learns to press it (Pong needs none).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textrl.dqn.config import MissingExtra

__all__ = [
    "EpisodicLife",
    "is_atari",
    "is_image_space",
    "make_gym_env",
    "register_atari",
]

FRAME_SIZE = 84
FRAME_STACK = 4
NOOP_MAX = 30
FRAME_SKIP = 4


def is_image_space(space: Any) -> bool:
    """True for ``uint8`` Box spaces shaped like images: ``(H, W)`` or ``(H, W, C)``, C <= 4."""
    if not isinstance(space, spaces.Box) or space.dtype != np.uint8:
        return False
    shape = space.shape
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))


def register_atari() -> None:
    """Register the ALE envs with Gymnasium (``ale-py`` ships the ROMs); a clear error if absent."""
    try:
        import ale_py
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            "Atari envs need the atari extra: pip install 'textrl-gym[atari]' "
            "(ale-py and opencv-python-headless)"
        ) from exc
    gym.register_envs(ale_py)


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` names an ALE env (registering the ALE envs first when ``ALE/``)."""
    if env_id.startswith("ALE/"):
        register_atari()
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        if "NoFrameskip" in env_id:
            register_atari()
            spec = gym.spec(env_id)
        else:
            return False
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("ale_py")


class EpisodicLife(gym.Wrapper):
    """A lost life ends the training episode (``terminated=True``) but not the game.

    ``reset`` after a life loss plays one no-op step instead of restarting the game, so later
    lives are still seen (Mnih et al. 2015; SB3's ``EpisodicLifeEnv``). A real game over resets.
    Wrap the output of ``AtariPreprocessing`` (so the no-op step is a full skipped step).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def _ale_lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self._ale_lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:  # a life was lost: play on from where the game is
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.game_over = False
        self.lives = self._ale_lives()
        return obs, info


def make_gym_env(env_id: str, train: bool = True, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id)`` plus the preprocessing its observations call for (module docstring).

    ``train=False`` builds the evaluation env: no reward clipping, no episodic life.
    ``kwargs`` go to ``gym.make``.
    """
    if is_atari(env_id):
        env = gym.make(env_id, frameskip=1, **kwargs)
        if not is_image_space(env.observation_space):  # obs_type="ram": a vector env
            return env
        env = gym.wrappers.AtariPreprocessing(
            env,
            noop_max=NOOP_MAX,
            frame_skip=FRAME_SKIP,
            screen_size=FRAME_SIZE,
            terminal_on_life_loss=False,
            grayscale_obs=True,
        )
        if train:
            env = gym.wrappers.ClipReward(EpisodicLife(env), -1.0, 1.0)
        return gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="reset")
    env = gym.make(env_id, **kwargs)
    if not is_image_space(env.observation_space):
        return env
    if len(env.observation_space.shape) == 3:
        if env.observation_space.shape[-1] == 3:
            env = gym.wrappers.GrayscaleObservation(env)
        else:
            raise ValueError(
                f"make_gym_env: {env_id} has image observations of shape "
                f"{env.observation_space.shape}; expected (H, W) or (H, W, 3)"
            )
    env = gym.wrappers.ResizeObservation(env, (FRAME_SIZE, FRAME_SIZE))
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="reset")
