"""The Q-network of the Gymnasium path: an MLP over flat vector observations."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from textrl.dqn.config import parse_net_arch

__all__ = ["MLPQNetwork"]


class MLPQNetwork(nn.Module):
    """Q-network for flat vector observations: an MLP with ReLU, optionally dueling.

    Dueling (Wang et al. 2016, eq. 9): ``Q = V + A - mean_a A``, with one linear head each on
    the shared hidden layers. Input ``(B, obs_dim)`` float32, output ``(B, n_actions)``.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        net_arch: Sequence[int] | str = (256, 256),
        dueling: bool = False,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(
                f"MLPQNetwork: obs_dim and n_actions must be positive, got "
                f"{obs_dim} and {n_actions}"
            )
        sizes = parse_net_arch(net_arch) if isinstance(net_arch, str) else tuple(net_arch)
        layers: list[nn.Module] = []
        width = obs_dim
        for size in sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.dueling = dueling
        self.head = nn.Linear(width, n_actions)  # advantages when dueling
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: Tensor) -> Tensor:
        h = self.trunk(obs.flatten(1).float())  # (B, H)
        out = self.head(h)  # (B, A)
        if self.value is not None:
            out = self.value(h) + out - out.mean(-1, keepdim=True)
        return out
