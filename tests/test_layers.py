"""The layers stay apart: scoring and the command line's front need no torch; the run folder's
rules and the training state are shared by both loops."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

NO_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
import textrl
from textrl.cli import main

try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0
for command in ("train", "score", "eval"):
    try:
        main([command, "--help"])
    except SystemExit as exc:
        assert exc.code == 0, command
code = main(["score", sys.argv[1], "--refs", sys.argv[2]])
assert code == 0, code
from textrl.scoring import score_corpus
print("R1", round(score_corpus(["a cat sat"], [["the cat sat"]]).metrics["rouge1"], 2))
"""


def test_import_help_and_scoring_run_without_torch(tmp_path: Path) -> None:
    (tmp_path / "pred.txt").write_text("the cat sat on a mat\nhello there\n")
    (tmp_path / "ref.txt").write_text("the cat sat on the mat\nhello world\n")
    p = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(tmp_path / "pred.txt"), str(tmp_path / "ref.txt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "ROUGE-1" in p.stdout and "R1 66.67" in p.stdout  # 2 of 3 unigrams match


def test_train_state_schedules_fire_once_per_interval() -> None:
    from textrl.dqn.config import DQNConfig
    from textrl.dqn.core import TrainState

    state = TrainState.start(DQNConfig(eval_every=100, checkpoint_every=0))
    fired = []
    for steps in (50, 99, 100, 150, 320, 399, 400):
        state.env_steps = steps
        fired.append(state.due("eval", 100))
    assert fired == [False, False, True, False, True, False, True]
    assert not state.due("checkpoint", 0)  # 0: never
    state.best_eval = -math.inf
    again = TrainState.from_json(state.to_json())
    assert again == state and state.to_json()["best_eval"] is None
    with pytest.raises(ValueError, match="unknown training state keys"):
        TrainState.from_json({**state.to_json(), "updates": 3})


def test_checkpoint_networks_are_named_in_one_place(tmp_path: Path) -> None:
    import torch

    from textrl.dqn.checkpoints import load_network_state, network_state, unpack_network_state
    from textrl.dqn.mlp import MLPQNetwork

    online, target = MLPQNetwork(3, 2, "4"), MLPQNetwork(3, 2, "4")
    state = network_state(online, target)
    assert {k.split(".")[0] for k in state} == {"online", "target"}
    other_online, other_target = MLPQNetwork(3, 2, "4"), MLPQNetwork(3, 2, "4")
    load_network_state(state, other_online, other_target)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), other_online.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), other_target.parameters()))
    assert set(unpack_network_state(state, "target")) == set(target.state_dict())
    with pytest.raises(ValueError, match="which: expected one of"):
        unpack_network_state(state, "online_net")
