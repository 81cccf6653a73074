"""The Summarize-v0 contract: Gymnasium's checker, seeding, masks, episode ends, exact rewards."""

from __future__ import annotations

import random
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import textrl
from textrl.data import Example
from textrl.envs.summarize import SummarizeEnv
from textrl.scoring.sentence import METRICS, SentenceScorer


@pytest.fixture(scope="module")
def env() -> SummarizeEnv:
    return SummarizeEnv(final_scores="library")


def feed(env: SummarizeEnv, text: str, reset_options: dict, eos: bool = True):
    """Write ``text`` token by token, then end with EOS (``eos``) or by repeating the text until
    the episode is truncated; return (rewards, final info)."""
    env.reset(options=reset_options)
    actions = [env.action_of(t) for t in env.tokenizer.encode(text)]
    if eos:
        actions.append(env.eos_action)
    else:
        actions = actions * (env.max_new_tokens // max(len(actions), 1) + 1)
    rewards, info = [], {}
    for a in actions:
        _, r, term, trunc, info = env.step(a)
        rewards.append(r)
        if term or trunc:
            break
    return rewards, info


@pytest.mark.parametrize("env_id", textrl.envs.ENV_IDS)
def test_check_env_passes_without_warnings(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = gym.make(env_id)
        check_env(made.unwrapped)
        made.close()


def test_seeded_rollouts_are_identical() -> None:
    def rollout(seed: int):
        e = gym.make("textrl/Summarize-v0", action_mask="source")
        obs, info = e.reset(seed=seed)
        e.action_space.seed(seed)
        trace = [obs["source"].tolist()]
        for _ in range(60):
            obs, r, term, trunc, info = e.step(e.action_space.sample(mask=info["action_mask"]))
            trace.append((obs["generated"].tolist(), r, term, trunc))
            if term or trunc:
                obs, info = e.reset()
                trace.append(obs["source"].tolist())
        return trace

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_observation_layout_and_padding(env: SummarizeEnv) -> None:
    obs, info = env.reset(options={"index": 5})
    n_src = int(obs["source_length"])
    ids = env.tokenizer.encode(env.examples[5].document)[: env.max_source_tokens]
    assert obs["source"][:n_src].tolist() == ids
    assert (obs["source"][n_src:] == env.pad_id).all()
    assert obs["generated_length"] == 0 and (obs["generated"] == env.pad_id).all()
    assert info["index"] == 5 and info["action_mask"].dtype == np.int8
    assert info["action_mask"].shape == (env.action_space.n,)
    a = env.action_of(ids[0])
    obs, *_ = env.step(a)
    assert obs["generated"][0] == ids[0] and obs["generated_length"] == 1
    assert env.observation_space.contains(obs)


def test_action_space_holds_only_generatable_tokens(env: SummarizeEnv) -> None:
    tok = env.tokenizer
    assert env.action_space.n == tok.vocab_size - 3
    assert env.token_id(env.eos_action) == tok.eos_id
    emitted = set(env.action_token_ids.tolist())
    assert not emitted & {tok.pad_id, tok.sep_id, tok.unk_id}


def test_source_mask_and_illegal_actions() -> None:
    e = SummarizeEnv(action_mask="source")
    obs, info = e.reset(options={"index": 0})
    mask = info["action_mask"]
    src_actions = {e.action_of(t) for t in obs["source"][: obs["source_length"]]}
    assert all(mask[a] for a in src_actions)
    assert mask[e.eos_action] == 1
    the = e.action_of(e.tokenizer.encode(" the")[0])
    assert mask[the] == 1  # function words stay available
    assert 50 < mask.sum() < e.action_space.n // 4
    assert (e.action_masks() == mask).all()
    illegal = int(np.flatnonzero(mask == 0)[0])
    with pytest.raises(ValueError, match=f"action: {illegal} .* masked out"):
        e.step(illegal)
    for bad in (-1, e.action_space.n, 2.5, 2.0, True, "x", np.array([1])):
        with pytest.raises(ValueError, match="action: expected an int"):
            e.step(bad)


def test_callable_mask_keeps_eos() -> None:
    def only_first_tokens(example: Example, tokenizer) -> list[int]:
        return tokenizer.encode(example.document)[:3]

    e = SummarizeEnv(action_mask=only_first_tokens)
    _, info = e.reset(options={"index": 1})
    assert info["action_mask"].sum() <= 4 and info["action_mask"][e.eos_action] == 1


def test_eos_terminates_and_max_tokens_truncates() -> None:
    e = SummarizeEnv(max_new_tokens=5, final_scores="library")
    e.reset(seed=0)
    _, _, term, trunc, info = e.step(e.eos_action)
    assert term and not trunc and info["text"] == ""
    assert info["scores"] == SentenceScorer().score("", list(e._example.references))
    e.reset(seed=0)
    word = e.action_of(e.tokenizer.encode(" the")[0])
    for _ in range(5):
        _, _, term, trunc, info = e.step(word)
    assert trunc and not term and info["text"] == "the the the the the"
    with pytest.raises(RuntimeError, match="episode has ended"):
        e.step(word)


def test_custom_pair_and_bad_options(env: SummarizeEnv) -> None:
    text = "the cat sat on the mat"
    rewards, info = feed(
        env, text, {"document": "A cat sat on a mat.", "references": ["the cat sat on the mat"]}
    )
    assert info["text"] == text and sum(rewards) == pytest.approx(1.0)
    assert info["scores"]["rouge1"] == 1.0
    with pytest.raises(ValueError, match=r"options\['index'\]"):
        env.reset(options={"index": len(env.examples)})
    with pytest.raises(ValueError, match="references"):
        env.reset(options={"document": "x", "references": []})


def test_dense_false_pays_only_at_the_end(env: SummarizeEnv) -> None:
    e = SummarizeEnv(dense=False, reward="rougeL")
    text = e.examples[2].references[0]
    rewards, info = feed(e, text, {"index": 2})
    assert all(r == 0.0 for r in rewards[:-1])
    assert rewards[-1] == pytest.approx(info["scores"]["rougeL"], abs=1e-12)


def test_dense_rewards_pay_completed_words_only() -> None:
    e = SummarizeEnv(reward="rouge1")
    e.reset(options={"document": "unbelievably long words", "references": ["unbelievably"]})
    pieces = e.tokenizer.encode(" unbelievably")
    rewards = [e.step(e.action_of(t))[1] for t in pieces]
    assert all(r == 0.0 for r in rewards)  # the word is still being spelled
    _, r, *_ = e.step(e.eos_action)
    assert r == pytest.approx(1.0)


def test_render_ansi() -> None:
    e = gym.make("textrl/Summarize-v0", render_mode="ansi", reward="rougeL")
    e.reset(seed=1)
    for t in e.unwrapped.tokenizer.encode(" the report said"):
        e.step(e.unwrapped.action_of(t))
    screen = e.render()
    assert screen.startswith("document: ") and "summary (3 tokens): the report said" in screen
    assert "score (1*rougeL)" in screen


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs(vector_cls) -> None:
    venv = vector_cls([lambda: gym.make("textrl/Summarize-v0", max_new_tokens=8) for _ in range(2)])
    obs, info = venv.reset(seed=0)
    assert obs["source"].shape == (2, 320) and info["action_mask"].shape == (2, 4093)
    total = np.zeros(2)
    for _ in range(10):
        obs, r, term, trunc, info = venv.step(venv.action_space.sample())
        total += r
    assert obs["generated"].shape == (2, 8)
    venv.close()


def test_rewards_equal_library_on_500_real_pairs(scitldr_dir) -> None:
    """Sum of dense rewards (and the terminal reward) == library value on info["text"]."""
    rng = random.Random(0)
    envs = {
        m: SummarizeEnv(
            data=str(scitldr_dir), split="test", reward=m, max_new_tokens=160, final_scores="reward"
        )
        for m in METRICS
    }
    sparse = SummarizeEnv(
        data=str(scitldr_dir),
        split="test",
        reward="rouge",
        dense=False,
        max_new_tokens=160,
        final_scores="reward",
    )
    library = SentenceScorer()
    examples = envs["bleu"].examples
    assert len(examples) >= 500
    for i, ex in enumerate(examples[:500]):
        other = examples[(i + 1) % len(examples)]
        doc_sents = ex.document.split(". ")
        hyp = rng.choice(
            [
                doc_sents[0],
                rng.choice(doc_sents),
                other.references[0],
                " ".join(rng.sample(ex.document.split(), 25)),
                ex.references[-1],
            ]
        )
        texts = set()
        eos = rng.random() < 0.8
        for metric, e in envs.items():
            rewards, info = feed(e, hyp, {"index": i}, eos=eos)
            texts.add(info["text"])
            expected = library.score(info["text"], list(ex.references))[metric]
            scale = 100.0 if metric == "bleu" else 1.0
            assert abs(sum(rewards) - expected / scale) < 1e-9, (metric, hyp, info["text"])
        assert len(texts) == 1
        rewards, info = feed(sparse, hyp, {"index": i})
        values = library.score(info["text"], list(ex.references))
        expected = (values["rouge1"] + values["rouge2"] + values["rougeL"]) / 3
        assert abs(rewards[-1] - expected) < 1e-9 and sum(abs(r) for r in rewards[:-1]) == 0


def test_text_to_actions_and_back() -> None:
    env = gym.make("textrl/Summarize-v0").unwrapped
    actions = env.actions_of_text("The council met \u00a9 \U0001f600.")
    env.reset(seed=0)
    for a in actions:
        _, _, _, _, info = env.step(a)
    assert info["text"] == "The council met \u00a9 \U0001f600."
    assert [env.token_id(a) for a in actions] == env.tokenizer.encode(info["text"])
    assert all(env.token_id(a) == a for a in actions)  # built-in tokenizer: action == token id
    assert env.action_of(env.tokenizer.pad_id) is None


def test_reset_options_are_checked() -> None:
    env = SummarizeEnv(data=[Example("A river flooded the town.", ("River floods town.",))])
    with pytest.raises(ValueError, match=r"options\['references'\]: expected a string or a list"):
        env.reset(options={"document": "text", "references": 5})
    with pytest.raises(ValueError, match=r"options\['document'\]: expected a string"):
        env.reset(options={"document": 3, "references": ["x"]})
    _, info = env.reset(options={"document": "a b", "references": "a"})
    assert info["index"] == -1


def test_a_folder_without_train_says_the_tokenizer_needs_it(tmp_path) -> None:
    (tmp_path / "test.jsonl").write_text('{"document": "d", "summary": "s"}\n')
    with pytest.raises(
        ValueError,
        match=r"tokenizer: the built-in tokenizer is trained on the "
        r"data's train split.*--tokenizer",
    ):
        SummarizeEnv(data=str(tmp_path), split="test")


def test_observe_action_mask_puts_the_mask_in_the_observation() -> None:
    env = gym.make("textrl/Summarize-v0", observe_action_mask=True)
    check_env(env.unwrapped)
    env = gym.make("textrl/Summarize-v0", observe_action_mask=True, action_mask="source")
    obs, info = env.reset(seed=3)
    keys = set(info)
    assert obs["action_mask"].dtype == np.int8 and (obs["action_mask"] == info["action_mask"]).all()
    assert 0 < obs["action_mask"].sum() < len(obs["action_mask"])  # the source mask, not all
    obs, _, _, _, info = env.step(int(np.flatnonzero(info["action_mask"])[1]))
    assert set(info) == keys and env.observation_space.contains(obs)
