"""The Q-network of the pixel path: the Nature-DQN convolutional network (Mnih et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["NatureCNNQNetwork"]


class NatureCNNQNetwork(nn.Module):
    """Q-network for stacked frames ``(B, C, H, W)`` ``uint8`` (C = 4 stacked 84×84 frames).

    Mnih et al. (2015), Methods: conv 32 8×8 stride 4, conv 64 4×4 stride 2, conv 64 3×3 stride
    1, each with ReLU, a 512-unit ReLU layer, one output per action. Inputs are scaled to [0, 1]
    inside (``x / 255``), so replay and acting keep ``uint8``. Dueling (Wang et al. 2016):
    ``Q = V + A - mean_a A`` with one 512-unit stream each, as in the paper.
    """

    def __init__(self, obs_shape: Sequence[int], n_actions: int, dueling: bool = False) -> None:
        super().__init__()
        if len(obs_shape) != 3 or min(obs_shape[1:]) < 36 or n_actions < 1:
            raise ValueError(
                "NatureCNNQNetwork: expected obs_shape (C, H, W) with H, W >= 36 and "
                f"n_actions >= 1, got {tuple(obs_shape)} and {n_actions}"
            )
        channels = int(obs_shape[0])
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            width = self.features(torch.zeros(1, *obs_shape)).shape[1]  # 3136 for 84×84
        self.dueling = dueling
        self.head = nn.Sequential(nn.Linear(width, 512), nn.ReLU(), nn.Linear(512, n_actions))
        self.value = (
            nn.Sequential(nn.Linear(width, 512), nn.ReLU(), nn.Linear(512, 1)) if dueling else None
        )

    def forward(self, obs: Tensor) -> Tensor:
        h = self.features(obs.float() / 255.0)  # (B, 3136)
        out = self.head(h)  # (B, A): advantages when dueling
        if self.value is not None:
            out = self.value(h) + out - out.mean(-1, keepdim=True)
        return out
