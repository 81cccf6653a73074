"""Other RL libraries drive the environment unwrapped (FlattenObservation for MLP policies).

A few hundred steps each, through each library's own training loop: sb3-contrib MaskablePPO
(``action_masks()``), Stable-Baselines3 DQN (Dict observations), Tianshou DQN through its
trainer (stacked infos), TorchRL ``GymEnv`` with the ``ActionMask`` transform (the mask in the
observation), and Gymnasium's sync and async vector envs. The libraries come with the
``integration`` extra, which CI installs.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textrl  # noqa: F401  (registers the environment)

pytestmark = pytest.mark.integration
SMALL = {"max_new_tokens": 8, "vocab_size": 600}


def test_sb3_contrib_maskable_ppo_uses_the_action_masks() -> None:
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = gym.make("textrl/Summarize-v0", action_mask="source", **SMALL)
    model = sb3_contrib.MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32]},
    )
    model.learn(200)  # a masked action would raise inside the env
    assert model.num_timesteps >= 200


def test_stable_baselines3_dqn_on_dict_observations() -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    env = gym.make("textrl/Summarize-v0", **SMALL)
    model = sb3.DQN(
        "MultiInputPolicy",
        env,
        learning_starts=50,
        buffer_size=500,
        batch_size=16,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32]},
    )
    model.learn(200)
    assert model.num_timesteps >= 200 and model._n_updates > 0


def test_tianshou_dqn_through_its_trainer() -> None:
    pytest.importorskip("tianshou")
    import torch
    from gymnasium.wrappers import FlattenObservation
    from tianshou.algorithm import DQN
    from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.trainer import OffPolicyTrainerParams
    from tianshou.utils.net.common import Net

    def make() -> gym.Env:
        return FlattenObservation(gym.make("textrl/Summarize-v0", **SMALL))

    env = make()
    torch.manual_seed(0)
    net = Net(
        state_shape=env.observation_space.shape, action_shape=env.action_space.n, hidden_sizes=[32]
    )
    policy = DiscreteQLearningPolicy(model=net, action_space=env.action_space, eps_training=0.5)
    algorithm = DQN(policy=policy, optim=AdamOptimizerFactory(lr=1e-3), target_update_freq=20)
    training = Collector(
        algorithm, DummyVectorEnv([make, make]), VectorReplayBuffer(2000, 2), exploration_noise=True
    )
    training.reset()
    training.collect(n_step=64)
    stats = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=training,
            test_collector=Collector(algorithm, DummyVectorEnv([make])),
            max_epochs=1,
            epoch_num_steps=300,
            collection_step_num_env_steps=20,
            test_step_num_episodes=1,
            batch_size=16,
            update_step_num_gradient_steps_per_sample=0.1,
            show_progress=False,
            verbose=False,
        )
    )
    assert stats.train_step >= 300 and stats.update_step > 0


def test_torchrl_gym_env_with_the_action_mask_transform() -> None:
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv, TransformedEnv
    from torchrl.envs.transforms import ActionMask

    base = GymEnv("textrl/Summarize-v0", observe_action_mask=True, action_mask="source", **SMALL)
    env = TransformedEnv(base, ActionMask())
    rollout = env.rollout(200, break_when_any_done=False)  # random actions inside the mask
    assert rollout.shape[0] == 200 and bool(rollout["next", "done"].any())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gymnasium_vector_envs(mode: str) -> None:
    vec = gym.make_vec("textrl/Summarize-v0", num_envs=2, vectorization_mode=mode, **SMALL)
    vec.reset(seed=0)
    ended = 0
    for _ in range(40):
        _, _, terminated, truncated, info = vec.step(vec.action_space.sample())
        ended += int(np.sum(terminated | truncated))
    vec.close()
    assert ended > 0 and set(info["scores"]) >= {"rouge1", "bleu"}
