"""Deep Q-learning, independent of text: settings, replays, losses, the shared core, the gym loop.

Read in this order: :mod:`~textrl.dqn.config` (``DQNConfig``, ``GymConfig``, presets; no torch),
:mod:`~textrl.dqn.policy` (masked Q, greedy and epsilon-greedy actions),
:mod:`~textrl.dqn.losses` (n-step double-DQN targets, TD and large-margin losses),
:mod:`~textrl.dqn.sum_tree`, :mod:`~textrl.dqn.replay` (transitions) and
:mod:`~textrl.dqn.episode_replay` (whole token episodes), :mod:`~textrl.dqn.frame_replay`
(stacked frames, each stored once), :mod:`~textrl.dqn.mlp`, :mod:`~textrl.dqn.cnn` (Nature CNN),
:mod:`~textrl.dqn.atari` (image preprocessing), :mod:`~textrl.dqn.distributed` (Ape-X actors
on Ray),
:mod:`~textrl.dqn.checkpoints` (run folders, atomic checkpoints, the resume rules),
:mod:`~textrl.dqn.monitoring` (metrics, curves, progress), :mod:`~textrl.dqn.core`
(``DQNCore``: networks, optimizers, replay, RNGs and counters, with the one optimizer step,
target update and checkpoint format both training loops use) and
:mod:`~textrl.dqn.train_gym` (classic DQN on Gymnasium envs, vector or image observations).
The text agent (:mod:`textrl.text`) builds on the same core.
"""
