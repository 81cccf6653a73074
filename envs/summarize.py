"""``textrl/Summarize-v0``: write a summary of a document one token at a time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from textrl.data import Example, load_examples
from textrl.data.tokenizer import TextTokenizer, get_tokenizer
from textrl.scoring.incremental import IncrementalScorer, shared_tools
from textrl.scoring.reward import RewardSpec
from textrl.scoring.sentence import CJK_CHARS, METRICS, MetricConfig, SentenceScorer

# Words and punctuation a summary needs even when the document lacks them ("source" mask mode).
FUNCTION_TOKENS = (
    "the a an of in on for to and or with by from that this these is are was were be as at "
    "we our it its their which can not than into over under via using"
).split() + list(".,;:()-'\"%")

MaskFn = Callable[[Example, TextTokenizer], Iterable[int] | np.ndarray]
_STABLE_END = re.compile(r".*\s", re.S)
_STABLE_END_CJK = re.compile(f".*[\\s{CJK_CHARS}]", re.S)


class SummarizeEnv(gym.Env):
    """Write a summary of a document token by token, rewarded by BLEU/ROUGE against references.

    ## Description
    Each episode draws one (document, references) example from ``data``/``split``. The agent
    emits one vocabulary token per step until it emits end-of-sequence or reaches
    ``max_new_tokens``. The generated text is the tokenizer's decoding of the emitted ids.

    ## Action Space
    ``Discrete(n)``: action ``a`` emits token id ``action_token_ids[a]`` (``a`` itself with the
    built-in tokenizer, whose never-generated tokens come last). The actions are the
    tokenizer's vocabulary minus the special tokens that are never generated (padding,
    separator, unknown), so that every action the space can sample is a real token
    (``action_space.sample()``, ``check_env`` and mask-unaware agents work). Action 0 is the
    end-of-sequence token for the built-in tokenizer; ``eos_action`` names it in general.
    :meth:`token_id` maps an action to its token id, :meth:`action_of` back, and
    :meth:`actions_of_text` a text to the actions that write it.

    ## Observation Space
    ``Dict`` of fixed-size int32 arrays, padded with the tokenizer's ``<pad>`` id
    (``pad_id``; 1 for the built-in tokenizer):

    - ``source`` ``(max_source_tokens,)``: the document's token ids, truncated to
      ``max_source_tokens`` (the start is kept; ``info["source_truncated"]`` says so).
    - ``source_length``: ``Discrete(max_source_tokens + 1)``, number of real source tokens.
    - ``generated`` ``(max_new_tokens,)``: the token ids generated so far (not action indices).
    - ``generated_length``: ``Discrete(max_new_tokens + 1)``.

    ## Rewards
    ``reward`` is a weighted sum of ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum`` (F1,
    rouge-score semantics, stemmed, best reference per metric) and ``bleu`` (sacrebleu sentence
    BLEU / 100), e.g. ``"rougeL"``, ``"0.5*rouge1+0.5*bleu"`` or ``"rouge"`` (mean of R-1, R-2
    and R-L); see :class:`textrl.scoring.reward.RewardSpec`.

    - ``dense=False``: 0 at every step, the score of the whole text at the last step.
    - ``dense=True`` (default): ``r_t = S(prefix_t) - S(prefix_{t-1})``, where ``prefix_t`` is
      the generated text up to and including its last white-space character (the completed
      words), and the last step scores the whole text. A word being spelled by several subword
      tokens therefore earns its reward on the step that completes it (the next space or the
      end), never a mid-word partial score. Rewards telescope: their sum equals the metric of
      ``info["text"]`` exactly (bit-identical incremental scoring, see
      :mod:`textrl.scoring.incremental`).
      With ``cjk=True`` a CJK character also completes a word.

    ## Starting State
    A seeded draw from the split (``self.np_random``). ``options={"index": i}`` picks example
    ``i``; ``options={"document": str, "references": [str, ...]}`` uses any text pair.

    ## Episode End
    Terminated when the end-of-sequence action is taken (it adds no text); truncated after
    ``max_new_tokens`` generated tokens. Then ``info["text"]`` is the detokenised generation and
    ``info["scores"]`` every metric of it (``rouge*`` in [0, 1], ``bleu`` 0-100), computed by
    rouge-score and sacrebleu themselves (``final_scores="library"``) or, faster, only the
    reward's metrics from the exact incremental scorer (``final_scores="reward"``).

    ## Arguments
    - ``data``: ``"builtin"`` (default), a hub dataset name, a local file/folder
      (see :func:`textrl.data.load_examples`), or a sequence of :class:`textrl.data.Example`.
    - ``split``: ``"train"`` (default), ``"validation"``/``"dev"``, ``"test"``.
    - ``reward``: metric expression (default ``"rouge"``); ``dense``: see Rewards.
    - ``max_new_tokens`` (48), ``max_source_tokens`` (320).
    - ``tokenizer``: ``None`` (train the built-in BPE on the data's train split, cached),
      a path or hub name of a fast tokenizer, or a :class:`textrl.data.tokenizer.TextTokenizer`.
    - ``vocab_size``: size of the trained tokenizer (4096).
    - ``action_mask``: ``"none"`` (default: every action legal), ``"source"`` (the document's
      tokens, end-of-sequence, and the single-token forms of :data:`FUNCTION_TOKENS`), or a
      callable ``f(example, tokenizer)`` returning allowed token ids (or a 0/1 array over token
      ids); end-of-sequence is always added.
    - ``use_stemmer`` (True), ``cjk`` (False), ``lsum_split`` (``"sentences"``): metric settings,
      see :class:`textrl.scoring.sentence.MetricConfig`.
    - ``final_scores``: ``"library"`` (default) or ``"reward"``; ``render_mode``: ``"ansi"``.
    - ``observe_action_mask``: also put the action mask in the observation (see Information).
    - ``document_column``/``summary_column``: columns for hub or file data.
    - ``holdout``: for a single data file (which is one split), the share of its examples
      carved out, seeded, for each of ``validation`` and ``test`` (see
      :func:`textrl.data.load_examples`); the built-in tokenizer trains on the rest only.

    ## Information
    Every ``reset`` and ``step`` info has the same keys, so vector collectors (Tianshou,
    ``gymnasium`` vector envs) can stack them: ``action_mask`` (int8, shape ``(n,)``, what
    ``Discrete.sample(mask=...)`` takes), ``score`` (the reward's running value), ``text``
    (the text generated so far), ``scores`` (a dict with fixed keys), ``final`` (True on the
    step that ends the episode), ``index`` (the example, ``-1`` for a custom pair) and
    ``source_truncated``. ``scores`` is the libraries' score of the whole text when ``final``;
    before that it holds the running values of the reward's metrics (of the completed words)
    and 0 for the other metrics. A masked or out-of-range action raises ``ValueError``.
    :meth:`action_masks` returns the current mask; with ``observe_action_mask=True`` the
    observation carries it too (``"action_mask"``, the convention of RLlib, PettingZoo,
    Tianshou and TorchRL's ``ActionMask``).

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        data: str | Sequence[Example] = "builtin",
        split: str = "train",
        reward: str | dict[str, float] = "rouge",
        dense: bool = True,
        max_new_tokens: int = 48,
        max_source_tokens: int = 320,
        tokenizer: str | TextTokenizer | None = None,
        vocab_size: int = 4096,
        action_mask: str | MaskFn = "none",
        use_stemmer: bool = True,
        cjk: bool = False,
        lsum_split: str = "sentences",
        final_scores: str = "library",
        render_mode: str | None = None,
        observe_action_mask: bool = False,
        document_column: str | None = None,
        summary_column: str | None = None,
        holdout: float = 0.0,
    ) -> None:
        for name, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_source_tokens", max_source_tokens),
        ):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode: expected None or 'ansi', got {render_mode!r}")
        if final_scores not in ("library", "reward"):
            raise ValueError(f"final_scores: expected 'library' or 'reward', got {final_scores!r}")
        if not (callable(action_mask) or action_mask in ("none", "source")):
            raise ValueError(
                f"action_mask: expected 'none', 'source' or a callable, got {action_mask!r}"
            )
        self.render_mode = render_mode
        self.dense = bool(dense)
        self.max_new_tokens = int(max_new_tokens)
        self.max_source_tokens = int(max_source_tokens)
        self.reward_spec = RewardSpec.parse(reward)
        self.metric_config = MetricConfig(use_stemmer=use_stemmer, cjk=cjk, lsum_split=lsum_split)
        self.final_scores = final_scores
        self.mask_mode = action_mask

        if isinstance(data, str):
            cols = {
                "document_column": document_column,
                "summary_column": summary_column,
                "holdout": holdout,
            }
            self.examples: Sequence[Example] = load_examples(data, split, **cols)
            self.tokenizer = get_tokenizer(tokenizer, data=data, vocab_size=vocab_size, **cols)
        else:
            self.examples = [
                e if isinstance(e, Example) else Example(e[0], tuple(e[1])) for e in data
            ]
            if not self.examples:
                raise ValueError("data: the sequence of examples is empty")
            if tokenizer is None:
                from textrl.data.tokenizer import cached_trained_tokenizer, training_texts

                texts = training_texts(
                    [e.document for e in self.examples], [e.references for e in self.examples]
                )
                self.tokenizer = cached_trained_tokenizer(texts, vocab_size=vocab_size)
            else:
                self.tokenizer = get_tokenizer(tokenizer)
        tok = self.tokenizer
        self.pad_id = tok.pad_id
        self.action_token_ids = np.asarray(tok.action_token_ids(), dtype=np.int64)
        self._token_to_action = {int(t): a for a, t in enumerate(self.action_token_ids)}
        self.eos_action = self._token_to_action[tok.eos_id]
        n = len(self.action_token_ids)
        self._function_actions = self._single_token_actions(FUNCTION_TOKENS)

        high = tok.vocab_size - 1
        self.action_space = spaces.Discrete(n)
        self.observation_space = spaces.Dict(
            {
                "source": spaces.Box(0, high, (self.max_source_tokens,), np.int32),
                "source_length": spaces.Discrete(self.max_source_tokens + 1),
                "generated": spaces.Box(0, high, (self.max_new_tokens,), np.int32),
                "generated_length": spaces.Discrete(self.max_new_tokens + 1),
                **({"action_mask": spaces.Box(0, 1, (n,), np.int8)} if observe_action_mask else {}),
            }
        )
        self.observe_action_mask = bool(observe_action_mask)

        self._tools = shared_tools(self.metric_config)
        self._library = SentenceScorer(METRICS, self.metric_config)
        self._cache: dict[int, tuple[np.ndarray, int, bool, np.ndarray, IncrementalScorer]] = {}
        self._stable_end = _STABLE_END_CJK if cjk else _STABLE_END
        self._all_legal = np.ones(n, dtype=np.int8)
        self._example: Example | None = None
        self._generated: list[int] = []

    # -- helpers ----------------------------------------------------------------------------

    def _single_token_actions(self, strings: Iterable[str]) -> set[int]:
        tok, out = self.tokenizer, set()
        for s in strings:
            for form in (s, " " + s):
                ids = tok.encode(form)
                if len(ids) == 1 and ids[0] in self._token_to_action:
                    out.add(self._token_to_action[ids[0]])
            tid = tok.backend.token_to_id(s)
            if tid is not None and tid in self._token_to_action:
                out.add(self._token_to_action[tid])
        return out

    def _mask_for(self, example: Example, source_ids: Sequence[int]) -> np.ndarray:
        if self.mask_mode == "none":
            return self._all_legal
        mask = np.zeros(len(self.action_token_ids), dtype=np.int8)
        if self.mask_mode == "source":
            allowed: Iterable[int] = list(source_ids)
            mask[list(self._function_actions)] = 1
        else:
            result = self.mask_mode(example, self.tokenizer)  # type: ignore[operator]
            arr = np.asarray(result if not isinstance(result, (set, frozenset)) else sorted(result))
            if arr.dtype == bool or (
                arr.ndim == 1
                and len(arr) == self.tokenizer.vocab_size
                and set(np.unique(arr)) <= {0, 1}
            ):
                allowed = np.flatnonzero(arr).tolist()
            else:
                allowed = arr.astype(np.int64).ravel().tolist()
        for t in allowed:
            a = self._token_to_action.get(int(t))
            if a is not None:
                mask[a] = 1
        mask[self.eos_action] = 1
        return mask

    def _prepare(
        self, example: Example
    ) -> tuple[np.ndarray, int, bool, np.ndarray, IncrementalScorer]:
        ids = self.tokenizer.encode(example.document)
        truncated = len(ids) > self.max_source_tokens
        ids = ids[: self.max_source_tokens]
        source = np.full(self.max_source_tokens, self.pad_id, dtype=np.int32)
        source[: len(ids)] = ids
        scorer = IncrementalScorer(
            example.references, self.reward_spec.metrics, self.metric_config, _shared=self._tools
        )
        return source, len(ids), truncated, self._mask_for(example, ids), scorer

    def _obs(self) -> dict[str, Any]:
        gen = np.full(self.max_new_tokens, self.pad_id, dtype=np.int32)
        gen[: len(self._generated)] = self._generated
        obs = {
            "source": self._source.copy(),
            "source_length": np.int64(self._source_len),
            "generated": gen,
            "generated_length": np.int64(len(self._generated)),
        }
        if self.observe_action_mask:
            obs["action_mask"] = self._mask.copy()
        return obs

    def source_and_mask(
        self, document: str, references: Sequence[str] = ("-",)
    ) -> tuple[np.ndarray, np.ndarray]:
        """The source token ids (truncated, unpadded) and the action mask an episode on
        ``document`` would have; for agents that decode without stepping the environment."""
        example = Example(document, tuple(references))
        ids = np.asarray(self.tokenizer.encode(document)[: self.max_source_tokens], np.int32)
        return ids, self._mask_for(example, ids.tolist())

    def action_masks(self) -> np.ndarray:
        """The current action mask (sb3-contrib's convention), int8 of shape ``(n,)``."""
        return self._mask.copy()

    def token_id(self, action: int) -> int:
        """The token id that ``action`` emits (inverse of :meth:`action_of`)."""
        return int(self.action_token_ids[action])

    def actions_of_text(self, text: str) -> list[int]:
        """The actions that write ``text`` (its tokens; tokens no action emits are dropped)."""
        actions = (self.action_of(t) for t in self.tokenizer.encode(text))
        return [a for a in actions if a is not None]

    def action_of(self, token_id: int) -> int | None:
        """The action that emits ``token_id``, or ``None`` for a token no action emits
        (padding, separator, unknown, ids outside the vocabulary)."""
        return self._token_to_action.get(int(token_id))

    # -- gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "document" in options or "references" in options:
            document, refs = options.get("document", ""), options.get("references")
            if isinstance(refs, str):
                refs = [refs]
            if not isinstance(document, str):
                raise ValueError(
                    f"options['document']: expected a string, got {type(document).__name__}: "
                    f"{document!r:.60}"
                )
            if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs):
                raise ValueError(
                    "options['references']: expected a string or a list of strings, got "
                    f"{type(refs).__name__}: {refs!r:.60}"
                )
            example = Example(document, tuple(refs))
            index = -1
            prepared = self._prepare(example)
        else:
            if "index" in options:
                index = options["index"]
                if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.examples):
                    raise ValueError(
                        f"options['index']: expected an int in [0, "
                        f"{len(self.examples)}), got {index!r}"
                    )
                index = int(index)
            else:
                index = int(self.np_random.integers(len(self.examples)))
            example = self.examples[index]
            prepared = self._cache.get(index)
            if prepared is None:
                if len(self._cache) >= 50_000:
                    self._cache.clear()
                prepared = self._cache[index] = self._prepare(example)
        self._source, self._source_len, trunc, self._mask, self._scorer = prepared
        self._scorer.reset_text()
        self._example, self._index = example, index
        self._generated = []
        self._text = ""
        self._score = 0.0
        self._truncated_source = trunc
        return self._obs(), self._info(None)

    def step(self, action):
        if self._example is None:
            raise RuntimeError("SummarizeEnv: call reset() before step()")
        if self._generated is None:
            raise RuntimeError("SummarizeEnv: the episode has ended; call reset()")
        is_int = isinstance(action, (int, np.integer)) and not isinstance(action, bool)
        if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
            is_int = True
        if not is_int or not 0 <= int(action) < len(self._mask):
            raise ValueError(f"action: expected an int in [0, {len(self._mask)}), got {action!r}")
        a = int(action)
        if not self._mask[a]:
            tok = self.tokenizer.id_to_token(int(self.action_token_ids[a]))
            raise ValueError(
                f"action: {a} (token {tok!r}) is masked out for this episode "
                f"(action_mask mode {self.mask_mode!r}); see info['action_mask']"
            )
        terminated = a == self.eos_action
        if not terminated:
            self._generated.append(int(self.action_token_ids[a]))
            self._text = self.tokenizer.decode(self._generated)
        truncated = not terminated and len(self._generated) >= self.max_new_tokens
        done = terminated or truncated

        reward = 0.0
        if done or self.dense:
            if done:
                target = self._text
            else:
                m = self._stable_end.match(self._text)
                target = self._text[: m.end()] if m else ""
            score = self.reward_spec(self._scorer.update(target))
            reward = score - self._score
            self._score = score
        obs = self._obs()
        final = None
        if done:
            if self.final_scores == "library":
                final = self._library.score(self._text, list(self._example.references))
            else:
                final = dict(self._scorer.values)
            self._generated = None  # type: ignore[assignment]
        return obs, float(reward), terminated, truncated, self._info(final)

    def _info(self, final: dict[str, float] | None) -> dict[str, Any]:
        """The same keys on every reset and step (vector collectors stack them)."""
        if final is None:  # running values of the reward's metrics, 0 for the others
            running = self._scorer.values
            final_keys = METRICS if self.final_scores == "library" else self.reward_spec.metrics
            scores = {m: float(running.get(m, 0.0)) for m in final_keys}
        else:
            scores = final
        return {
            "action_mask": self._mask.copy(),
            "score": self._score,
            "text": self._text,
            "scores": scores,
            "final": final is not None,
            "index": self._index,
            "source_truncated": self._truncated_source,
        }

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        doc = self._example.document if self._example else ""
        text = getattr(self, "_text", "")
        n = len(self._generated) if self._generated is not None else "done"
        return (
            f"document: {doc[:160]}{'...' if len(doc) > 160 else ''}\n"
            f"summary ({n} tokens): {text}\n"
            f"score ({self.reward_spec}): {getattr(self, '_score', 0.0):.4f}\n"
        )
