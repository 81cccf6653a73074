"""Text DQN runs end to end on a tiny budget: outputs, checkpoints, resume, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textrl.cli import main
from textrl.dqn.checkpoints import RunDir
from textrl.scoring.sentence import SentenceScorer
from textrl.text.build import apply_init_encoder, make_env
from textrl.text.config import TextConfig
from textrl.text.decoding import TextAgent
from textrl.text.demos import demonstrations
from textrl.text.evaluation import evaluate_run
from textrl.text.learner import TextLearner
from textrl.text.train import TextTrainer, train_text

TINY = dict(
    d_model=32,
    n_layers=1,
    n_heads=2,
    d_ff=64,
    vocab_size=400,
    max_new_tokens=16,
    max_source_tokens=64,
    num_envs=4,
    batch_size=4,
    mle_epochs=1.0,
    total_steps=300,
    eval_docs=8,
    eval_every=150,
    eval_share=0.0,  # evaluations by steps alone: the tests count them
    checkpoint_every=150,
    log_every=100,
    minutes=None,
    torch_threads=1,
    value_warmup_updates=2,
    mle_eval_every=5,
)

RESUME_STEPS = 1000
"""total_steps of the stop-and-resume tests: a round of the default fine-tuning (anchored with
self-imitation) acts 1 + 1 + sil_samples passes of num_envs episodes, up to ~380 steps here."""


def test_demonstrations_carry_the_env_rewards(tiny_data: Path) -> None:
    cfg = TextConfig(data=str(tiny_data), **TINY)
    env = make_env(cfg, "train")
    demo_env = make_env(cfg, "train", env.tokenizer, action_mask="none")
    demos = demonstrations(env, demo_env)
    assert len(demos) == 40
    d = demos[0]
    assert d.is_demo and d.terminated
    text = env.tokenizer.decode([t for t in d.tokens if t != env.tokenizer.eos_id])
    expected = env.examples[0].references[0]
    assert expected.startswith(text)  # the reference (cut to max_new_tokens)
    assert np.isin(d.actions, d.allowed).all()  # its own tokens are legal for it
    values = SentenceScorer(["rouge1", "rouge2", "rougeL"]).score(text, [expected])
    assert float(d.rewards.sum()) == pytest.approx(sum(values.values()) / 3, abs=1e-9)
    assert float(d.rewards.sum()) > 0.1


def test_tiny_run_writes_everything_and_resumes(tiny_data: Path, tmp_path: Path) -> None:
    cfg = TextConfig(data=str(tiny_data), **TINY)
    result = train_text(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "mle.safetensors",
        "best.safetensors",
        "tokenizer/tokenizer.json",
        "checkpoints/latest",
    ):
        assert (run / name).exists(), name
    assert result["env_steps"] >= 300 and result["grad_steps"] > 0
    assert json.loads((run / "config.json").read_text())["kind"] == "text"
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_score" in r for r in logged) and any("td_loss" in r for r in logged)
    assert any("mle_eval_score" in r for r in logged)  # the warm start is evaluated as it trains

    longer = TextConfig(data=str(tiny_data), **{**TINY, "total_steps": 500})
    resumed = train_text(longer, run, resume=True, progress=False)
    assert resumed["env_steps"] >= 500
    assert resumed["grad_steps"] > result["grad_steps"]  # counters continued, not restarted
    env = make_env(longer, "train")
    learner = TextLearner(longer, env)
    learner.restore(RunDir(run).load_latest())
    assert learner.state.env_steps == resumed["env_steps"]
    assert learner.replay.num_transitions > 0

    # another run can start from this run's warm start (fine-tuning it by DQN)
    import torch
    from safetensors.torch import load_file

    again = TextLearner(
        TextConfig(
            data=str(tiny_data), init_weights=str(run / "mle.safetensors"), **{**TINY, "mle": False}
        ),
        env,
    )
    for key, value in load_file(str(run / "mle.safetensors")).items():
        assert torch.equal(again.online.state_dict()[key], value), key
        assert torch.equal(again.target.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="init_weights: expected an existing"):
        TextLearner(
            TextConfig(data=str(tiny_data), init_weights=str(run / "missing.bin"), **TINY), env
        )
    # ... as a run of its own: those weights are its warm start (compared against, candidate)
    tuned = train_text(
        TextConfig(
            data=str(tiny_data),
            init_weights=str(run / "mle.safetensors"),
            tokenizer=str(run / "tokenizer"),
            **{**TINY, "mle": False, "total_steps": 40},
        ),
        tmp_path / "tuned",
        progress=False,
    )
    copied = load_file(str(tmp_path / "tuned" / "mle.safetensors"))
    assert all(
        torch.equal(copied[k], v) for k, v in load_file(str(run / "mle.safetensors")).items()
    )
    assert tuned["best_eval"] >= tuned["mle_eval_score"]
    report = evaluate_run(tmp_path / "tuned", split="validation", limit=4)
    assert "mle" in report["baselines"] and "agent_vs_mle" in report
    with pytest.raises(ValueError, match="demo_source: expected 'references', 'oracle' or"):
        TextConfig(demo_source="abstracts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not fit this network"):
        TextLearner(
            TextConfig(
                data=str(tiny_data),
                init_weights=str(run / "mle.safetensors"),
                **{**TINY, "d_model": 16},
            ),
            env,
        )

    agent = TextAgent(learner.online, env)
    docs = [e.document for e in make_env(longer, "validation", env.tokenizer).examples]
    for n in (1, 2):
        actions = agent._greedy(*agent.prepare(docs), no_repeat_ngram=n)
        for seq in actions:
            grams = [
                tuple(seq[i : i + n])
                for i in range(len(seq) - n + 1)
                if env.eos_action not in seq[i : i + n]
            ]
            assert len(grams) == len(set(grams)), (n, seq)
    with pytest.raises(ValueError, match="greedy"):
        agent.generate(docs[:1], beam=2, no_repeat_ngram=2)
    for doc in docs:  # a beam of one is greedy decoding
        assert agent._beam(*agent.prepare([doc]), width=1) == agent._greedy(*agent.prepare([doc]))


def test_interrupted_run_resumes_exactly(tiny_data: Path, tmp_path: Path) -> None:
    import torch

    cfg = TextConfig(data=str(tiny_data), **{**TINY, "total_steps": RESUME_STEPS})
    full = train_text(cfg, tmp_path / "full", progress=False)
    cut = train_text(
        cfg, tmp_path / "cut", progress=False, callback=lambda state: state.env_steps < 150
    )
    assert 150 <= cut["env_steps"] < full["env_steps"]
    resumed = train_text(cfg, tmp_path / "cut", resume=True, progress=False)
    assert (resumed["env_steps"], resumed["grad_steps"]) == (full["env_steps"], full["grad_steps"])
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key


@pytest.mark.parametrize(
    "extra", [{}, {"mle_weight_average": 0.9, "mle_dropout": 0.2}], ids=["default", "averaged"]
)
def test_warm_start_is_checkpointed_and_resumes_exactly(
    tiny_data: Path, tmp_path: Path, extra: dict
) -> None:
    import torch

    cfg = TextConfig(data=str(tiny_data), **{**TINY, "total_steps": 150, **extra})
    full = train_text(cfg, tmp_path / "full", progress=False)
    cut = train_text(
        cfg, tmp_path / "cut", progress=False, callback=lambda state: state.mle_updates < 7
    )
    assert cut["stopped"] == "callback" and cut["env_steps"] == 0
    state = RunDir(tmp_path / "cut").load_latest().meta["state"]
    assert state["phase"] == "mle" and state["mle_updates"] == 7
    assert (tmp_path / "cut" / "mle.safetensors").is_file()  # the warm start is always saved
    if cfg.mle_weight_average:  # its evaluation of update 5 keeps the average, not the online
        from safetensors.torch import load_file

        five = tmp_path / "five"
        train_text(cfg, five, progress=False, callback=lambda state: state.mle_updates < 5)
        kept = load_file(str(five / "mle.safetensors"))
        ckpt = RunDir(five).load_latest().model_state  # (of update 5, too)
        assert RunDir(five).load_latest().meta["state"]["mle_updates"] == 5
        assert all(torch.equal(v, ckpt[f"average.{k}"]) for k, v in kept.items())
        assert not all(torch.equal(v, ckpt[f"online.{k}"]) for k, v in kept.items())
    resumed = train_text(cfg, tmp_path / "cut", resume=True, progress=False)
    assert (resumed["mle_updates"], resumed["grad_steps"]) == (
        full["mle_updates"],
        full["grad_steps"],
    )
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key

    # the warm start's metrics survive the resume, once each
    def mle_evals(run: Path) -> list[int]:
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["step"] for r in lines if "mle_eval_score" in r]

    assert mle_evals(tmp_path / "cut") == mle_evals(tmp_path / "full") and mle_evals(
        tmp_path / "full"
    )


KILLED = """
import json, os, signal, sys
import numpy as np
from textrl.text.config import TextConfig
from textrl.text.train import train_text

cfg, run, mode = TextConfig(**json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]
callback = None
if mode == "warm start":  # killed between two warm-start updates
    def callback(state):
        if state.mle_updates == 7:
            os.kill(os.getpid(), signal.SIGKILL)
        return True
else:  # killed inside the third checkpoint write, after its weights were written
    real, calls = np.savez, [0]
    def savez(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    np.savez = savez
train_text(cfg, run, progress=False, callback=callback)
"""


def test_kill_9_in_the_warm_start_and_in_a_checkpoint_write_resumes_exactly(
    tiny_data: Path, tmp_path: Path
) -> None:
    import torch

    settings = {**TINY, "total_steps": 150, "data": str(tiny_data)}
    full = train_text(TextConfig(**settings), tmp_path / "full", progress=False)
    expected = RunDir(tmp_path / "full").load_latest().model_state
    for mode in ("warm start", "checkpoint write"):
        run = tmp_path / mode.replace(" ", "-")
        p = subprocess.run(
            [sys.executable, "-c", KILLED, json.dumps(settings), str(run), mode],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == -9, (mode, p.stderr[-2000:])
        resumed = train_text(TextConfig(**settings), run, resume=True, progress=False)
        assert resumed["grad_steps"] == full["grad_steps"], mode
        got = RunDir(run).load_latest().model_state
        assert all(torch.equal(v, got[k]) for k, v in expected.items()), mode


def test_ctrl_c_stops_at_a_safe_point_and_resumes_exactly(tiny_data: Path, tmp_path: Path) -> None:
    import os
    import signal

    import torch

    def ctrl_c(state) -> bool:  # a real SIGINT, as a terminal sends it, mid-way through DQN
        if state.env_steps > 100 and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return True

    sent: list[bool] = []
    cfg = TextConfig(data=str(tiny_data), **{**TINY, "total_steps": RESUME_STEPS})
    full = train_text(cfg, tmp_path / "full", progress=False)
    cut = train_text(cfg, tmp_path / "cut", progress=False, callback=ctrl_c)
    assert cut["stopped"] == "interrupted" and 100 < cut["env_steps"] < full["env_steps"]
    resumed = train_text(cfg, tmp_path / "cut", resume=True, progress=False)
    assert (resumed["env_steps"], resumed["grad_steps"]) == (full["env_steps"], full["grad_steps"])
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    assert all(torch.equal(v, b.model_state[k]) for k, v in a.model_state.items())


def test_ctrl_c_checkpoints_and_returns(tiny_data: Path, tmp_path: Path) -> None:
    def interrupt(state) -> bool:
        if state.env_steps > 0:
            raise KeyboardInterrupt
        return True

    cfg = TextConfig(data=str(tiny_data), **{**TINY, "total_steps": RESUME_STEPS})
    cut = train_text(cfg, tmp_path / "run", progress=False, callback=interrupt)
    assert cut["stopped"] == "interrupted" and cut["env_steps"] > 0
    assert RunDir(tmp_path / "run").load_latest().meta["state"]["env_steps"] == cut["env_steps"]
    resumed = train_text(cfg, tmp_path / "run", resume=True, progress=False)
    assert resumed["stopped"] == "total_steps" and resumed["env_steps"] >= cfg.total_steps


def test_metric_settings_reach_the_environment(tiny_data: Path) -> None:
    cfg = TextConfig(
        data=str(tiny_data), cjk=True, use_stemmer=False, lsum_split="newline", holdout=0.0, **TINY
    )
    config = make_env(cfg, "train").metric_config
    assert (config.cjk, config.use_stemmer, config.lsum_split) == (True, False, "newline")


def test_budget_that_leaves_no_dqn_is_refused_and_cjk_without_cjk_is_warned() -> None:
    from textrl.envs.summarize import SummarizeEnv
    from textrl.text.build import check_reward_signal

    with pytest.raises(ValueError, match=r"mle_minutes: expected less than minutes=3"):
        TextConfig(minutes=3, mle_minutes=5)
    TextConfig(minutes=3, mle_minutes=5, mle=False)  # no warm start: nothing to refuse
    chinese = [("这是一个关于河流洪水的长文档，城镇被淹没了。", ("河流洪水淹没城镇。",))] * 3
    with pytest.warns(UserWarning, match="every reward of this run would be 0.*--cjk"):
        assert check_reward_signal(SummarizeEnv(data=chinese, vocab_size=400)) == 0.0
    assert check_reward_signal(SummarizeEnv(data=chinese, vocab_size=400, cjk=True)) > 0.5


def test_initialise_from_a_local_pretrained_encoder(tiny_data: Path, tmp_path: Path) -> None:
    import torch
    import transformers

    from textrl.text.evaluation import load_text_run

    tok = make_env(TextConfig(data=str(tiny_data), **TINY), "train").tokenizer
    folder = tmp_path / "tiny-bert"
    bert = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=40,
            max_position_embeddings=80,
        )
    )
    bert.save_pretrained(folder)
    tok.save(folder)  # the encoder's tokenizer lives beside it, as on the hub
    cfg = TextConfig(
        data=str(tiny_data),
        init_encoder=str(folder),
        **{**TINY, "total_steps": 40, "mle_epochs": 0.2},
    )
    train_text(cfg, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["d_model"], saved["d_ff"], saved["post_ln"]) == (24, 40, True)
    assert saved["tokenizer"] == str(folder)
    _, _, agent = load_text_run(tmp_path / "run", weights="mle", split="test")
    assert agent.generate(["A short document about a river."])[0] is not None
    fresh = TextConfig(data=str(tiny_data), init_encoder=str(folder), **TINY)
    encoder = apply_init_encoder(fresh)
    learner = TextLearner(fresh, make_env(fresh, "train"), encoder)
    word = bert.embeddings.word_embeddings.weight
    assert torch.equal(learner.online.embed.weight[: word.shape[0]], word.detach())


def test_nan_loss_stops_with_a_clear_message(tiny_data: Path, tmp_path: Path) -> None:
    cfg = TextConfig(data=str(tiny_data), **{**TINY, "mle_lr": 1e30, "max_grad_norm": None})
    with pytest.raises(FloatingPointError, match="MLE loss"):
        train_text(cfg, tmp_path / "nan", progress=False)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "textrl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_train_eval_generate(tiny_data: Path, tmp_path: Path) -> None:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if v is not None]
    p = run_cli(
        "train", "--data", str(tiny_data), "--out", "run", "--no-progress", *flags, cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "run folder: run" in p.stdout
    p = run_cli("eval", "run", "--out", "report.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_documents"] == 10 and report["split"] == "test"
    for block in ("metrics", "metrics_max_ref"):
        assert set(report[block]) >= {"bleu", "rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert set(report["baselines"]) == {"random", "lead1", "mle"}
    assert "BLEU" in json.dumps(report["signatures"]) or report["signatures"]
    assert (tmp_path / "report.md").read_text().count("| lead1 |") == 2
    markdown = (tmp_path / "report.md").read_text()
    if report["agent_vs_mle"].get("identical"):  # best weights = the warm start's
        assert "identical to its MLE warm start" in markdown
    else:
        paired = report["agent_vs_mle"]["metrics_max_ref"]["rouge1"]
        assert paired["ci"][0] <= paired["difference"] <= paired["ci"][1]
        assert "agent minus its MLE warm start" in markdown
    # --against: the same paired test against another run's weights; against the run's own
    # warm start it must reproduce agent_vs_mle exactly
    p = run_cli(
        "eval", "run", "--against", "run", "--against-weights", "mle", "--out", "vs.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    vs = json.loads((tmp_path / "vs.json").read_text())
    assert vs["agent_vs_against"] == report["agent_vs_mle"]
    assert vs["against"]["metrics_max_ref"] == report["baselines"]["mle"]["metrics_max_ref"]
    assert vs["against"]["run"] == "run" and vs["against"]["weights"] == "mle"
    assert "| against (run) |" in (tmp_path / "vs.md").read_text()
    p = run_cli("eval", "run", "--against", "missing-run", cwd=tmp_path)
    assert p.returncode == 2 and "no config.json" in p.stderr
    p = run_cli(
        "generate", "run", "The council approved a new bridge in Faby on Monday.", cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() != "" or p.stdout == "\n"
    p = run_cli("eval", "missing-run", cwd=tmp_path)
    assert p.returncode == 2 and "no config.json" in p.stderr
    p = run_cli("generate", "missing-run", "Some text.", cwd=tmp_path)
    assert p.returncode == 2 and not (tmp_path / "missing-run").exists()  # nothing created
    p = run_cli("generate", "run", "\U0001f600\U0001f600", cwd=tmp_path)
    assert p.returncode == 0, p.stderr  # byte fallback: every character has tokens
    # a run folder written by an older textrl (settings this one dropped) still decodes
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config.update({"net_arch": "256,256", "eval_episodes": 10, "lr_end": None})
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    p = run_cli("generate", "run", "The council approved a bridge.", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for flag in ("--limit=0", "--limit=-5", "--beam=0", "--no-repeat-ngram=-1"):
        p = run_cli("eval", "run", flag, cwd=tmp_path)
        assert p.returncode == 2 and "expected an integer >=" in p.stderr, flag


def test_cli_single_file_needs_a_holdout(tiny_data: Path, tmp_path: Path) -> None:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if v is not None]
    single = tiny_data / "train.jsonl"
    p = run_cli(
        "train", "--data", str(single), "--out", "bad", "--no-progress", *flags, cwd=tmp_path
    )
    assert p.returncode == 2 and "one split, 'train'" in p.stderr and "holdout" in p.stderr
    assert not (tmp_path / "bad").exists()  # a failed start leaves no empty run folder
    p = run_cli(
        "train",
        "--data",
        str(single),
        "--holdout",
        "0.2",
        "--out",
        "run",
        "--no-progress",
        *flags,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    p = run_cli("eval", "run", "--no-baselines", "--out", "report.json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_documents"] == 8  # the held-out 20% of 40 training examples


def test_report_markdown_shows_the_paired_comparison() -> None:
    from textrl.scoring import paired_comparison
    from textrl.text.evaluation import report_markdown

    refs = [["the cat sat on the mat"], ["a dog ran in the park"], ["birds sing at dawn"]]
    paired = paired_comparison(
        ["the cat", "a dog", "birds"],
        ["the cat sat", "a dog ran in", "birds sing"],
        refs,
        metrics=("rouge1", "bleu"),
        n_samples=50,
        seed=0,
    ).to_dict()
    assert paired["metrics"]["rouge1"]["difference"] > 0
    report = {
        "run": "r",
        "data": "d",
        "split": "test",
        "n_documents": 3,
        "decoding": "greedy",
        "metrics": {"rouge1": 50.0},
        "metrics_max_ref": {"rouge1": 50.0},
        "agent_vs_mle": paired,
    }
    text = report_markdown(report)
    assert "| multi-max | rouge1 | +" in text and "50 resamples" in text
    assert "| against (" not in text and "agent minus runs" not in text
    other = {"run": "runs/scst", "weights": "best", "metrics": {"rouge1": 40.0}}
    text = report_markdown({**report, "against": other, "agent_vs_against": paired})
    assert "| against (runs/scst) | 40.00 |" in text
    assert "## agent minus the best weights of runs/scst (paired bootstrap, 50 resamples)" in text
    assert "| first reference | rouge1 | +" in text.split("best weights of runs/scst")[1]
    text = report_markdown({**report, "against": other, "agent_vs_against": {"identical": True}})
    assert "identical to those of the best weights of runs/scst." in text


# --------------------------------------------------------------------------------------------
# The shared DQN core in the text loop (bugs of the first trainer, fixed by the restructure)


def test_text_loop_honours_the_target_update_interval(tiny_data: Path, tmp_path: Path) -> None:
    import torch

    cfg = TextConfig(
        data=str(tiny_data),
        **{
            **TINY,
            "mle": False,
            "target_update": "hard",
            "target_update_interval": 3,
            "value_warmup_updates": 0,
        },
    )
    trainer = TextTrainer(cfg, tmp_path / "run")
    trainer.act(0.1)
    learner = trainer.learner

    def target_is_online() -> bool:
        return all(
            torch.equal(a, b)
            for a, b in zip(learner.target.parameters(), learner.online.parameters())
        )

    assert target_is_online()
    seen = []
    for _ in range(3):
        learner.dqn_update(0.4)
        seen.append(target_is_online())
    assert seen == [False, False, True]  # copied after the 3rd gradient step only
    trainer.logger.close()


def test_text_run_refuses_a_used_folder_and_resume_starts_a_missing_one(
    tiny_data: Path, tmp_path: Path
) -> None:
    cfg = TextConfig(data=str(tiny_data), **{**TINY, "mle": False, "total_steps": 40})
    first = train_text(cfg, tmp_path / "run", progress=False)
    assert first["env_steps"] >= 40
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_text(cfg, tmp_path / "run", progress=False)
    fresh = train_text(cfg, tmp_path / "new", resume=True, progress=False)
    assert fresh["env_steps"] == first["env_steps"]  # the same run, started by --resume


def test_choice_fields_are_validated_for_every_config() -> None:
    import dataclasses
    import typing

    from textrl.dqn.config import DQNConfig, GymConfig

    base = typing.get_type_hints(DQNConfig)
    for cls in (GymConfig, TextConfig):
        hints = typing.get_type_hints(cls)
        for name, tp in base.items():  # an override keeps the base type (Literal stays Literal)
            # or makes it optional: None = a default resolved in __post_init__
            assert hints[name] in (tp, tp | None), (cls.__name__, name)
        for f in dataclasses.fields(cls):
            if typing.get_origin(hints[f.name]) is typing.Literal:
                with pytest.raises(ValueError, match=f"{cls.__name__}.{f.name}: expected"):
                    cls(**{f.name: "bogus"})
    with pytest.raises(ValueError, match="TextConfig.target_update: expected 'hard' or 'polyak'"):
        TextConfig(target_update="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reward: unknown metric 'rouge3'"):
        TextConfig(reward="rouge3")
    p = run_cli("train", "--target-update", "bogus", cwd=Path.cwd())
    assert p.returncode == 2 and "invalid choice: 'bogus'" in p.stderr
    p = run_cli("train", "--net-arch", "8", cwd=Path.cwd())
    assert p.returncode == 2 and "['--net-arch'] do not apply to text runs" in p.stderr


def test_warm_start_stops_early_and_keeps_its_best(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluations every 2 updates score 0.1, 0.3, 0.2, 0.25: with patience 2 the warm start
    ends after the 4th (8 updates, not its 100) and keeps the weights of the 2nd (update 4)."""
    import torch
    from safetensors.torch import load_file

    scripted = iter([0.1, 0.3, 0.2, 0.25])
    real_scores = TextTrainer.scores
    kept: dict[int, dict] = {}

    def scores(self: TextTrainer) -> dict[str, float]:
        out = real_scores(self)
        if self.state.phase == "mle":
            out["eval_score"] = next(scripted)
            kept[self.state.mle_updates] = {
                k: v.detach().clone() for k, v in self.learner.online.state_dict().items()
            }
        return out

    monkeypatch.setattr(TextTrainer, "scores", scores)
    cfg = TextConfig(
        data=str(tiny_data),
        **{**TINY, "mle_epochs": 5.0, "mle_eval_every": 2, "mle_patience": 2, "total_steps": 40},
    )
    result = train_text(cfg, tmp_path / "run", progress=False)
    assert result["mle_updates"] == 8 < int(5.0 * 80 / 4)
    assert sorted(kept) == [2, 4, 6, 8]  # no evaluation repeated at the switch
    saved = load_file(str(tmp_path / "run" / "mle.safetensors"))
    for key, value in kept[4].items():
        assert torch.equal(saved[key], value), key
    assert TextConfig(minutes=60).mle_minutes == 20.0  # the bound scales with the budget
    assert TextConfig(minutes=4).mle_minutes == pytest.approx(2.4)
    assert TextConfig().mle_minutes == 5.0  # (the built-in default's 9.5 minutes)
    with pytest.raises(ValueError, match="mle_patience: expected a non-negative integer"):
        TextConfig(mle_patience=-1)


def test_reward_oracle_rewards_against_the_oracle_sentence_too(
    tiny_data: Path, tmp_path: Path
) -> None:
    cfg = TextConfig(data=str(tiny_data), reward_oracle=True, **TINY)
    trainer = TextTrainer(cfg, tmp_path / "run")
    plain = TextTrainer(
        TextConfig(data=str(tiny_data), reward_oracle=False, **TINY), tmp_path / "plain"
    )
    data = plain.actor.envs[0].examples
    for env in trainer.actor.envs:  # every acting environment: the data's references + oracle
        assert len(env.examples) == len(data)
        for got, example in zip(env.examples, data):
            assert got.document == example.document and got.references[:-1] == example.references
            assert got.references[-1] in example.document  # a sentence of the document
    # Demonstrations show the same summaries, paid against the oracle sentence too: never
    # less, and most for the oracle demonstrations (each document's second, with "both").
    assert [d.actions.tolist() for d in trainer.demos] == [d.actions.tolist() for d in plain.demos]
    gains = [a.rewards.sum() - b.rewards.sum() for a, b in zip(trainer.demos, plain.demos)]
    assert min(gains) >= -1e-6 and np.mean(gains[1::2]) > np.mean(gains[0::2]) + 0.03


def test_the_heap_is_trimmed_during_training(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """glibc keeps the holes that (B, T, A) batches of varying T leave in its heap (~10 MB per
    update on SciTLDR): the loops give them back every TRIM_EVERY updates and evaluations."""
    import sys

    import textrl.text.train
    from textrl.dqn.core import trim_heap

    if sys.platform == "linux":
        assert trim_heap()  # glibc has malloc_trim
    calls: list[int] = []
    monkeypatch.setattr(textrl.text.train, "trim_heap", lambda: calls.append(1))
    cfg = TextConfig(
        data=str(tiny_data), **{**TINY, "mle": False, "total_steps": 400, "gradient_steps": 4}
    )
    result = train_text(cfg, tmp_path / "run", progress=False)
    assert result["grad_steps"] >= 2 * textrl.text.train.TRIM_EVERY
    evaluations = 1 + result["env_steps"] // cfg.eval_every
    assert len(calls) >= result["grad_steps"] // textrl.text.train.TRIM_EVERY + evaluations


@pytest.mark.parametrize("share", [0.2, 0.0])
def test_evaluations_take_at_most_their_share_of_the_dqn_phase(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    """On a clock where a round of acting and learning takes 1 s and an evaluation 4 s, an
    evaluation due every step waits for (1 - 0.2) / 0.2 * 4 = 16 s of rounds with share 0.2,
    and comes after every round with share 0."""
    import types

    import textrl.text.train

    clock = [0.0]
    monkeypatch.setattr(
        textrl.text.train, "time", types.SimpleNamespace(perf_counter=lambda: clock[0])
    )
    real_scores, real_act = textrl.text.train.greedy_scores, TextTrainer.act
    starts: list[float] = []  # clock at the start of each evaluation

    def greedy_scores(*args, **kwargs):  # type: ignore[no-untyped-def]
        starts.append(clock[0])
        clock[0] += 4.0
        return real_scores(*args, **kwargs)

    def act(self: TextTrainer, eps: float) -> tuple[int, list[float]]:
        clock[0] += 1.0
        return real_act(self, eps)

    monkeypatch.setattr(textrl.text.train, "greedy_scores", greedy_scores)
    monkeypatch.setattr(TextTrainer, "act", act)
    cfg = TextConfig(
        data=str(tiny_data),
        **{**TINY, "mle": False, "total_steps": 3000, "eval_every": 1, "eval_share": share},
    )
    train_text(cfg, tmp_path / "run", progress=False)
    rounds = clock[0] - 4.0 * len(starts)
    gaps = np.diff(starts[:-1]) - 4.0  # seconds of rounds between two evaluations in the loop
    if share:
        assert len(gaps) >= 2 and all(g == 16.0 for g in gaps), gaps
        assert 4.0 * (len(starts) - 1) <= share * clock[0]
    else:
        assert len(starts) - 1 == rounds and all(g == 1.0 for g in gaps), gaps
    with pytest.raises(ValueError, match="eval_share: expected a number in \\[0, 1\\)"):
        TextConfig(eval_share=1.0)


def test_evaluations_decode_without_repeated_ngrams_as_configured(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoding that picks the best weights is the one textrl eval reports by default; a run
    written before the setting existed keeps the plain argmax it was chosen with."""
    seen: list[int] = []
    original = TextAgent.generate

    def spy(self, documents, beam=1, batch_size=64, no_repeat_ngram=0):  # type: ignore[no-untyped-def]
        seen.append(no_repeat_ngram)
        return original(self, documents, beam, batch_size, no_repeat_ngram)

    monkeypatch.setattr(TextAgent, "generate", spy)
    assert TextConfig().no_repeat_ngram == 3
    cfg = TextConfig(data=str(tiny_data), no_repeat_ngram=2, **{**TINY, "total_steps": 150})
    train_text(cfg, tmp_path / "run", progress=False)
    assert seen and set(seen) == {2}  # warm-start and DQN evaluations alike
    seen.clear()
    report = evaluate_run(tmp_path / "run", split="validation", limit=4, baselines=False)
    assert seen == [2] and report["decoding"] == "greedy, no-repeat-2-gram"
    seen.clear()
    report = evaluate_run(tmp_path / "run", split="validation", limit=4, no_repeat_ngram=0)
    assert set(seen) == {0} and report["decoding"] == "greedy"  # agent and warm start alike
    seen.clear()
    report = evaluate_run(tmp_path / "run", split="validation", limit=4, beam=2, baselines=False)
    assert seen == [0] and report["decoding"] == "beam-2"  # beam search has no such constraint
    seen.clear()
    with pytest.raises(ValueError, match="against_weights: expected one of"):
        evaluate_run(tmp_path / "run", against=tmp_path / "run", against_weights="last")
    assert not seen  # refused before any decoding
    assert main(["generate", str(tmp_path / "run"), "The council met on Monday."]) == 0
    assert main(["generate", str(tmp_path / "run"), "The council met.", "--beam", "2"]) == 0
    assert seen == [2, 0]  # textrl generate decodes as textrl eval does
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["no_repeat_ngram"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    seen.clear()
    evaluate_run(tmp_path / "run", split="validation", limit=4, baselines=False)
    assert seen == [0]
    with pytest.raises(ValueError, match="no_repeat_ngram: expected a non-negative integer"):
        TextConfig(no_repeat_ngram=-1)


def test_the_weight_average_is_evaluated_checkpointed_and_resumed(
    tiny_data: Path, tmp_path: Path
) -> None:
    """--weight-average d: evaluations decode theta_avg <- d theta_avg + (1 - d) theta after
    each DQN step (it starts at the warm start); checkpoints carry it, and resuming is exact."""
    import torch

    env = make_env(TextConfig(data=str(tiny_data), **TINY), "train")
    learner = TextLearner(
        TextConfig(data=str(tiny_data), weight_average=0.75, **{**TINY, "mle": False}), env
    )
    assert learner.evaluated_network() is learner.average
    before = {k: v.clone() for k, v in learner.average.state_dict().items()}
    with torch.no_grad():
        for p in learner.online.parameters():
            p.add_(1.0)
    learner.update_average()
    for name, _ in learner.online.named_parameters():
        assert torch.allclose(learner.average.state_dict()[name], before[name] + 0.25), name
    off = TextLearner(
        TextConfig(data=str(tiny_data), weight_average=0.0, **{**TINY, "mle": False}), env
    )
    assert off.average is None and off.evaluated_network() is off.online

    cfg = TextConfig(data=str(tiny_data), weight_average=0.75, **{**TINY, "total_steps": 400})
    full = train_text(cfg, tmp_path / "full", progress=False)
    cut = train_text(
        cfg, tmp_path / "cut", progress=False, callback=lambda state: state.env_steps < 150
    )
    assert full["grad_steps"] > 0 and cut["env_steps"] < full["env_steps"]
    resumed = train_text(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed["grad_steps"] == full["grad_steps"]
    a, b = RunDir(tmp_path / "full").load_latest(), RunDir(tmp_path / "cut").load_latest()
    assert any(k.startswith("average.") for k in a.model_state)
    for key, value in a.model_state.items():
        assert torch.equal(value, b.model_state[key]), key
    online = {k[len("online.") :]: v for k, v in a.model_state.items() if k.startswith("online.")}
    average = {
        k[len("average.") :]: v for k, v in a.model_state.items() if k.startswith("average.")
    }
    assert any(not torch.equal(online[k], average[k]) for k in online)  # it lags the online weights
    from textrl.text.evaluation import load_text_run

    _, _, final = load_text_run(tmp_path / "full", "final", split=None)  # what was evaluated
    assert all(torch.equal(v, average[k]) for k, v in final.net.state_dict().items())
    with pytest.raises(ValueError, match=r"weight_average: expected a number in \[0, 1\)"):
        TextConfig(weight_average=1.0)
