"""Property test of the environment: random Unicode text pairs, random legal actions.

Whatever the text, an episode never crashes, every observation lies in the observation space,
every info has the same keys, and the dense rewards telescope to the libraries' score of the
generated text. The default run is bounded (a few seconds); ``-m slow`` runs many more examples.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textrl.data import Example
from textrl.envs.summarize import SummarizeEnv

REWARDS = ("rouge", "rougeLsum", "0.5*rouge1+0.5*bleu", "bleu")
_ENVS: dict[tuple[str, bool, bool], SummarizeEnv] = {}

# Any Unicode text with something besides white space (the env refuses empty references).
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=160).filter(str.strip)


def _env(reward: str, dense: bool, cjk: bool) -> SummarizeEnv:
    key = (reward, dense, cjk)
    if key not in _ENVS:
        _ENVS[key] = SummarizeEnv(
            data=[Example("A tiny placeholder document.", ("A placeholder.",))],
            reward=reward,
            dense=dense,
            cjk=cjk,
            max_new_tokens=24,
            vocab_size=400,
            action_mask="source",
        )
    return _ENVS[key]


def _episode(
    document: str, references: list[str], reward: str, dense: bool, cjk: bool, seed: int
) -> None:
    env = _env(reward, dense, cjk)
    obs, info = env.reset(options={"document": document, "references": references})
    keys = set(info)
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(seed)
    total, done = 0.0, False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward_t, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs) and set(info) == keys
        total += reward_t
        done = terminated or truncated
    assert info["final"]
    assert total == pytest.approx(env.reward_spec(info["scores"]), abs=1e-9)


PROPERTY = dict(
    document=TEXT,
    references=st.lists(TEXT, min_size=1, max_size=3),
    reward=st.sampled_from(REWARDS),
    dense=st.booleans(),
    cjk=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(**PROPERTY)
def test_random_unicode_episodes_hold_the_env_contract(**kwargs) -> None:
    _episode(**kwargs)


@pytest.mark.slow
@settings(
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(**PROPERTY)
def test_random_unicode_episodes_hold_the_env_contract_long(**kwargs) -> None:
    _episode(**kwargs)
