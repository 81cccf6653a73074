"""Gymnasium environments of textrl, installed as the subpackage ``textrl.envs``.

Registration uses string entry points, so ``import textrl`` stays light; the environment module
(and its dependencies) is imported by ``gymnasium.make`` on first use.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = ("textrl/Summarize-v0",)

if "textrl/Summarize-v0" not in registry:
    register(
        id="textrl/Summarize-v0",
        entry_point="textrl.envs.summarize:SummarizeEnv",
        disable_env_checker=False,
    )
