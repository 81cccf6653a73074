"""Tests of run folders (textrl.runs): atomic checkpoints, RNG states, metrics, curves."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import textrl
from textrl.dqn import blas
from textrl.dqn.checkpoints import RunDir, capture_rng_state, restore_rng_state
from textrl.dqn.monitoring import MetricsLogger, ProgressBar, plot_curves, read_metrics
from textrl.dqn.replay import TransitionReplay


def _trained_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).mean().backward()
        opt.step()
    return net, opt


def test_checkpoint_round_trip_with_optimizer_replay_and_rng(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.save_config({"lr": 0.1, "name": "x"})
    assert run.load_config() == {"lr": 0.1, "name": "x"}
    net, opt = _trained_optimizer()
    replay = TransitionReplay(8, (2,))
    for t in range(5):
        replay.add([t, t], t % 2, 1.0, [t + 1, t + 1], t == 4, False)
    rng, gen = np.random.default_rng(7), torch.Generator().manual_seed(7)
    random.seed(3)
    state = capture_rng_state(rng, gen)
    expected = (
        rng.random(3),
        torch.rand(3, generator=gen),
        random.random(),
        torch.rand(2),
        np.random.rand(2),
    )
    tied = {"a": net.weight, "b": net.weight, "bias": net.bias}  # shared storage is fine
    path = run.save_checkpoint(
        12, tied, {"optimizer": opt.state_dict()}, replay.state_dict(), state, {"episodes": 3}
    )
    assert (
        path.name == "step-00000012"
        and (run.checkpoint_dir / "latest").read_text() == "step-00000012\n"
    )

    ckpt = run.load_latest()
    assert ckpt is not None and ckpt.step == 12 and ckpt.meta["episodes"] == 3
    assert torch.equal(ckpt.model_state["a"], net.weight)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-2)
    opt2.load_state_dict(ckpt.extra["optimizer"])
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt2.state_dict()["state"][0][k]))
    clone = TransitionReplay(8, (2,))
    clone.load_state_dict(ckpt.replay_state)
    assert np.array_equal(clone.obs, replay.obs) and clone.final.keys() == replay.final.keys()
    rng2, gen2 = np.random.default_rng(0), torch.Generator()
    restore_rng_state(ckpt.rng_state, rng2, gen2)
    again = (
        rng2.random(3),
        torch.rand(3, generator=gen2),
        random.random(),
        torch.rand(2),
        np.random.rand(2),
    )
    for a, b in zip(expected, again, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_half_written_checkpoint_is_ignored_and_old_ones_pruned(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.load_latest() is None
    weights = {"w": torch.ones(2)}
    for step in (1, 2, 3):
        run.save_checkpoint(step, weights, keep=2)
    assert [p.name for p in run.checkpoints()] == ["step-00000002", "step-00000003"]
    # a crash while writing step 4: its .tmp folder exists, `latest` still names step 3
    crashed = run.checkpoint_dir / "step-00000004.tmp"
    crashed.mkdir()
    (crashed / "model.safetensors").write_bytes(b"garbage")
    assert run.load_latest().step == 3
    # a missing or stale `latest` falls back to the newest complete folder
    (run.checkpoint_dir / "latest").write_text("step-00000009\n")
    assert run.load_latest().step == 3
    (run.checkpoint_dir / "latest").unlink()
    assert run.load_latest().step == 3
    # the next save of step 4 replaces the leftover .tmp folder
    run.save_checkpoint(4, {"w": torch.zeros(2)}, keep=2)
    assert run.load_latest().step == 4 and not crashed.exists()
    # re-saving step 4 replaces it; an old copy set aside by a crash is never loaded
    run.save_checkpoint(4, {"w": torch.full((2,), 5.0)}, keep=1)
    (run.checkpoint_dir / "step-00000005.old").mkdir()
    (run.checkpoint_dir / "step-00000005.old" / "meta.json").write_text("{}")
    assert [p.name for p in run.checkpoints()] == ["step-00000004"]
    assert float(run.load_latest().model_state["w"][0]) == 5.0


def test_checkpoints_hold_no_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDir(tmp_path)
    _, opt = _trained_optimizer()
    replay = TransitionReplay(4, (1,))
    replay.add([0.0], 0, 1.0, [1.0], True, False)
    path = run.save_checkpoint(
        1,
        {"w": torch.ones(1)},
        {"optimizer": opt.state_dict()},
        replay.state_dict(),
        capture_rng_state(),
    )
    with zipfile.ZipFile(path / "replay.npz") as z:  # plain .npy members
        assert all(name.endswith(".npy") for name in z.namelist())
    for name in ("meta.json", "rng.json", "replay.json"):
        json.loads((path / name).read_text())
    # loading asks torch for weights_only and numpy for no pickle
    calls = []
    real_torch_load, real_np_load = torch.load, np.load

    def torch_load(*args, **kwargs):
        calls.append(("torch", kwargs.get("weights_only")))
        return real_torch_load(*args, **kwargs)

    def np_load(*args, **kwargs):
        calls.append(("numpy", kwargs.get("allow_pickle")))
        return real_np_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", torch_load)
    monkeypatch.setattr(np, "load", np_load)
    assert run.load_latest().step == 1
    assert sorted(calls) == [("numpy", False), ("torch", True)]
    with pytest.raises(TypeError, match="object"):
        run.save_checkpoint(2, {}, replay_state={"arrays": {"x": np.array([{}])}, "meta": {}})


def test_metrics_logger_curves_and_resume_truncation(tmp_path: Path) -> None:
    with MetricsLogger(tmp_path, tensorboard=True) as log:
        for step in (10, 20, 30):
            log.log(
                step,
                {"loss": 1.0 / step, "eval/return": float(step), "note": "x", "nan": float("nan")},
            )
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [10, 20, 30] and lines[0]["nan"] == "nan"
    assert any((tmp_path / "tb").iterdir())
    assert plot_curves(tmp_path).stat().st_size > 1000
    # a run resumed from a checkpoint that knew 2 lines drops what was logged after it, and a
    # torn last line (a kill mid-write) is dropped, not an error
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "loss"')
    with MetricsLogger(tmp_path, tensorboard=False, keep_lines=2) as log:
        assert log.lines == 2
        log.log(25, {"loss": 0.5})
        assert log.lines == 3
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 25]
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write("not json\n")
    assert [r["step"] for r in read_metrics(tmp_path)] == [10, 20, 25]  # plotting still works


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = RunDir(tmp_path / "run")
    assert not (tmp_path / "run").exists()  # reading a run folder never creates it
    assert run.load_latest() is None and not (tmp_path / "run").exists()
    for step in (1, 2):
        run.save_checkpoint(step, {"w": torch.full((2,), float(step))}, keep=3)
    newest = run.checkpoint_dir / "step-00000002" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:20])  # truncated (disk full, kill -9 of a copy)
    ckpt = run.load_latest()
    assert ckpt.step == 1 and float(ckpt.model_state["w"][0]) == 1.0
    assert "step-00000002" in capsys.readouterr().err
    # the damaged one is set aside, so pruning keeps the readable checkpoints
    assert (run.checkpoint_dir / "step-00000002.bad").is_dir()
    assert [p.name for p in run.checkpoints()] == ["step-00000001"]
    run.save_checkpoint(3, {"w": torch.full((2,), 3.0)}, keep=1)
    assert run.load_latest().step == 3 and [p.name for p in run.checkpoints()] == ["step-00000003"]
    # a pickle where the optimizer state belongs is refused without running it; with nothing
    # readable left the error names every checkpoint and why
    import pickle

    run.save_checkpoint(4, {"w": torch.full((2,), 4.0)}, keep=2)
    for step in (3, 4):
        (run.checkpoint_dir / f"step-0000000{step}" / "extra.pt").write_bytes(
            pickle.dumps(object())
        )
    with pytest.raises(
        ValueError, match=r"no readable checkpoint.*step-00000004.*step-00000003: holds a pickle"
    ):
        run.load_latest()


def test_each_start_records_the_package_versions(tmp_path: Path) -> None:
    """A seed's weights depend on the libraries too: every start (and resume) of a run adds
    its Python, platform and package versions to ``environment.jsonl``."""
    run = RunDir(tmp_path / "run")
    run.save_config({"kind": "gym"})
    run.save_config({"kind": "gym"})  # a resume
    lines = (tmp_path / "run" / "environment.jsonl").read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["packages"]["torch"] == torch.__version__
    assert record["packages"]["numpy"] == np.__version__
    assert record["packages"]["textrl-gym"] == textrl.__version__  # (the project itself)
    assert set(record) == {"time", "python", "platform", "packages", "blas"}
    # a line cut short by a crash of an older, appending version is ended, not glued to
    (tmp_path / "run" / "environment.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    run.save_config({"kind": "gym"})
    lines = (tmp_path / "run" / "environment.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["blas"] == record["blas"]
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_progress_bar_disabled_and_enabled(capsys: pytest.CaptureFixture) -> None:
    bar = ProgressBar(10, enabled=False)
    bar.update(1, eps=0.5)
    bar.close()
    bar = ProgressBar(10, enabled=True)
    bar.update(3, eps=0.5, loss=None, ret=12.0)
    bar.close()
    assert "eps=0.5" in capsys.readouterr().err
    # not a terminal (captured here, a log file in practice): one redraw a minute, no flood
    assert ProgressBar(10, enabled=True)._bar.mininterval == 60.0


def test_importing_the_core_chooses_mkls_strict_mode() -> None:
    """Importing the DQN core chooses MKL's strict mode before torch's first product (where torch
    has MKL), leaves a user's MKL_CBWR alone, and a run's environment record says which."""
    code = (
        "import textrl.dqn.core as c; from textrl.dqn.checkpoints import environment; "
        "print(c.BLAS_MODE, '|', environment()['blas'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}

    def mode(**extra: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    if not torch.backends.mkl.is_available():
        assert mode() == "no mkl | no mkl"
        return
    assert mode() == "mkl strict | mkl strict"
    assert mode(MKL_CBWR="COMPATIBLE") == "MKL_CBWR=COMPATIBLE | MKL_CBWR=COMPATIBLE"
    # a product before the import: MKL keeps its default, and the user is told, not left to
    # find two runs of one seed apart
    code = "import torch; torch.ones(64, 64) @ torch.ones(64, 64); " + code
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mkl default | mkl default"
    assert "RuntimeWarning" in out.stderr and "MKL_CBWR=AUTO,STRICT" in out.stderr


def test_importing_the_core_starts_mkls_vector_math_on_one_thread() -> None:
    """Importing the DQN core calls warm_vector_math once, which calls each listed torch
    function in float32 and float64 on so few elements that torch keeps them on one thread (the
    race it avoids needs two threads and a loaded machine: scripts/probe_cnn_reproducible.py)."""
    code = (
        "import textrl.dqn.blas as b; n = []; w = b.warm_vector_math; "
        "b.warm_vector_math = lambda: n.append(w()); import textrl.dqn.core; print(n)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[{2 * len(blas.VECTOR_MATH)}]"
    assert len(set(blas.VECTOR_MATH)) == len(blas.VECTOR_MATH)
    calls = []
    real = {name: getattr(torch, name) for name in blas.VECTOR_MATH}
    with pytest.MonkeyPatch.context() as mp:
        for name, fn in real.items():
            mp.setattr(torch, name, lambda x, fn=fn, name=name: calls.append((name, x)) or fn(x))
        blas.warm_vector_math()
    assert [name for name, _ in calls] == list(blas.VECTOR_MATH) * 2
    assert {x.dtype for _, x in calls} == {torch.float32, torch.float64}
    assert all(x.numel() < 2048 for _, x in calls)  # below torch's split of vector math
    assert all(torch.isfinite(real[name](x)).all() for name, x in calls)  # inside each domain
