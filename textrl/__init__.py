"""textrl: token-level reinforcement learning for text generation.

Importing ``textrl`` registers the Gymnasium environments (``textrl/Summarize-v0``); heavy
dependencies (torch, datasets, transformers) are imported only where they are used.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("textrl-gym")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

from textrl import envs as envs  # noqa: E402  (registers the environments)

__all__ = ["__version__", "envs"]
