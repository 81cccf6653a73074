"""The text agent: a transformer Q-network that writes summaries token by token.

Read in this order: :mod:`~textrl.text.config` (``TextConfig``; no torch),
:mod:`~textrl.text.qnetwork` (one pass per episode gives Q for every step; cached acting),
:mod:`~textrl.text.pretrained` (init from a local BERT/RoBERTa encoder),
:mod:`~textrl.text.build` (environment and network from a config),
:mod:`~textrl.text.demos` (reference and oracle demonstrations as episodes),
:mod:`~textrl.text.batches` (episodes as padded tensors), :mod:`~textrl.text.acting`
(environments in lock-step), :mod:`~textrl.text.learner` (warm start and DQN updates on
:class:`textrl.dqn.core.DQNCore`), :mod:`~textrl.text.train` (the two-phase training loop),
:mod:`~textrl.text.decoding` (greedy and beam decoding) and :mod:`~textrl.text.evaluation`
(scores during training, ``textrl eval`` reports with baselines and paired tests).
"""
