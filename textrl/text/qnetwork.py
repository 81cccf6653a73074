"""Transformer-encoder Q-network over (document, generated prefix) -> Q-values of the next token.

One transformer stack (pre-LayerNorm; BERT's post-LayerNorm layout when initialised from a
pretrained encoder, :mod:`textrl.pretrained`) reads ``[source tokens ; <sep> ; generated
tokens]``. The attention mask makes source positions attend to the source only
(bidirectional) and target positions (``<sep>`` and the generated tokens) attend to the whole
source plus, causally, to the target prefix. Hence:

- the output at target position ``j`` (``<sep>`` is ``j = 0``) is ``Q(s_j, .)``, the value of
  every action after ``j`` generated tokens, so **one forward pass over an episode yields Q for
  every step** (:meth:`QNetwork.forward`), which is what makes learning from whole episodes cheap;
- source states never depend on the generated text, so acting encodes the source once per
  episode (:meth:`QNetwork.encode_source`) and then costs one target position per step with a
  key/value cache (:meth:`QNetwork.step`). Both paths give the same numbers (tested).

The head's logits are tied to the token embeddings of the action tokens (``l_a = h · E[a] + b_a``,
as in language models). Three heads turn them into Q-values:

- ``soft`` (default): ``Q(s, a) = V(s) + tau * log_softmax(l)_a``, a dueling decomposition
  (Wang et al. 2016) whose advantage is ``tau`` times a log-policy, the soft-Q view of Guo et al.
  (2021): ``softmax(Q / tau) = softmax(l)``, so cross-entropy on the references ("Q as logits")
  trains the ranking, and the TD phase only has to learn the level ``V(s)`` before it refines
  the ranking. Without it, DQN targets on MLE logits (a scale unrelated to returns) wipe out the
  warm start within a few updates (observed here).
- ``dueling``: ``V(s) + l - mean(l)``; ``plain``: ``Q = l``.

With ``copy=True`` (soft head only) the policy inside the soft head is a pointer-generator
mixture (See et al. 2017): ``pi = (1 - g) softmax(l) + g * copy``, where ``copy`` spreads an
attention distribution over the source positions onto the actions emitting those tokens and
``g`` is a learned gate. Summaries mostly reuse document words, so this inductive bias lets a
small model trained for minutes on a CPU produce sensible text.

With ``copy_features=True`` the pointer's scores also get three learned biases from exact token
matches, which content attention alone learns slowly: "continue" (source position ``i`` follows
a source token equal to the last generated token), "continue a bigram" (and the one before it
equals the token generated before that) and "repeat" (source token ``i`` equals the last
generated token). The first two make copying a whole span one learned number away (the "next
position" of a pointer that the model would otherwise have to infer from position embeddings),
the third lets it learn not to stutter ("Ambulance Ambulance").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class QNetConfig:
    """Sizes of the text Q-network; the defaults fit a 2-core CPU."""

    vocab_size: int
    """Token embedding rows (the tokenizer's vocabulary, special tokens included)."""
    action_token_ids: list[int] = field(default_factory=list)
    """Token id emitted by each action (the env's ``action_token_ids``)."""
    pad_id: int = 1
    """Padding token id (ignored by attention)."""
    sep_id: int = 2
    """Separator token id placed between source and generated tokens."""
    d_model: int = 128
    """Width of the transformer."""
    n_layers: int = 2
    """Number of transformer layers."""
    n_heads: int = 4
    """Attention heads per layer."""
    d_ff: int = 512
    """Hidden width of the feed-forward blocks."""
    max_source_tokens: int = 320
    """Longest source the position table covers."""
    max_new_tokens: int = 64
    """Longest generated prefix the position table covers (plus the separator)."""
    dropout: float = 0.0
    """Dropout inside the stack (0 keeps Q-targets deterministic)."""
    head: str = "soft"
    """Q head: 'soft' (V + tau * log_softmax(logits)), 'dueling' (V + A - mean A) or 'plain'."""
    tau: float = 0.05
    """Temperature of the soft head: Q / tau are the warm start's logits."""
    copy: bool = True
    """Pointer-generator copy distribution inside the soft head (See et al. 2017)."""
    copy_features: bool = True
    """Learned continue/continue-bigram/repeat biases in the pointer's scores (module doc)."""
    post_ln: bool = False
    """BERT's layout: LayerNorm after each residual sum and after the embeddings (needed to
    load a pretrained encoder, :mod:`textrl.pretrained`); default pre-LayerNorm (GPT-2)."""
    ln_eps: float = 1e-5
    """LayerNorm epsilon."""
    activation: str = "gelu"
    """Feed-forward activation: 'gelu' (exact), 'gelu_tanh' or 'relu'."""


class _Layer(nn.Module):
    def __init__(self, cfg: QNetConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.post_ln = cfg.post_ln
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        act = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}
        if cfg.activation not in act:
            raise ValueError(
                f"QNetConfig.activation: expected one of {sorted(act)}, got {cfg.activation!r}"
            )
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), act[cfg.activation], nn.Linear(cfg.d_ff, cfg.d_model)
        )
        self.drop = nn.Dropout(cfg.dropout)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, d = x.shape
        q, k, v = self.qkv(x if self.post_ln else self.ln1(x)).split(d, dim=-1)
        shape = (b, n, self.n_heads, d // self.n_heads)
        return (
            q.view(shape).transpose(1, 2),
            k.view(shape).transpose(1, 2),
            v.view(shape).transpose(1, 2),
        )  # each (B, H, N, Dh)

    def _finish(self, x: Tensor, att: Tensor) -> Tensor:
        b, h, n, dh = att.shape
        att = self.drop(self.proj(att.transpose(1, 2).reshape(b, n, h * dh)))
        if self.post_ln:  # BERT: x = LN(x + f(x))
            x = self.ln1(x + att)
            return self.ln2(x + self.drop(self.ff(x)))
        x = x + att
        return x + self.drop(self.ff(self.ln2(x)))

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention over ``x`` (B, N, D) with boolean ``mask`` (B, 1, N, N), True = see."""
        q, k, v = self._heads(x)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self._finish(x, att), k, v

    def attend(
        self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """New positions ``x`` (B, n, D) attending to cached keys/values plus themselves."""
        q, k, v = self._heads(x)
        keys, values = torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2)
        att = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self._finish(x, att), k, v


@dataclass
class SourceCache:
    """Per-layer source keys/values and the key mask of one batch of documents."""

    keys: list[Tensor]  # n_layers x (B, H, S, Dh)
    values: list[Tensor]
    key_mask: Tensor  # (B, S) True where a real source token
    copy_keys: Tensor | None = None  # (B, S, D) pointer keys of the final source states
    copy_index: Tensor | None = None  # (B, S) action index of each source token
    source: Tensor | None = None  # (B, S) source ids (for the pointer's match features)
    history: Tensor | None = None  # (B, 2) the last two target-side tokens fed
    target_keys: list[Tensor] = field(default_factory=list)
    target_values: list[Tensor] = field(default_factory=list)
    steps: int = 0


class QNetwork(nn.Module):
    """Q(s, .) over the action tokens for every target position; see the module docstring."""

    def __init__(self, cfg: QNetConfig) -> None:
        super().__init__()
        if not cfg.action_token_ids:
            raise ValueError("QNetConfig.action_token_ids: expected the env's action token ids")
        if cfg.d_model % cfg.n_heads:
            raise ValueError(
                f"QNetConfig.d_model={cfg.d_model} must be divisible by n_heads={cfg.n_heads}"
            )
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.src_pos = nn.Embedding(cfg.max_source_tokens, cfg.d_model)
        self.tgt_pos = nn.Embedding(cfg.max_new_tokens + 1, cfg.d_model)
        self.segment = nn.Embedding(2, cfg.d_model)
        self.emb_ln = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps) if cfg.post_ln else nn.Identity()
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.register_buffer("action_tokens", torch.tensor(cfg.action_token_ids), persistent=False)
        self.q_bias = nn.Parameter(torch.zeros(len(cfg.action_token_ids)))
        if cfg.head not in ("soft", "dueling", "plain"):
            raise ValueError(
                f"QNetConfig.head: expected 'soft', 'dueling' or 'plain', got {cfg.head!r}"
            )
        self.value = nn.Linear(cfg.d_model, 1) if cfg.head != "plain" else None
        if cfg.copy and cfg.head != "soft":
            raise ValueError(
                f"QNetConfig.copy needs head='soft' (a mixture of probabilities), "
                f"got head={cfg.head!r}"
            )
        if cfg.copy:
            self.copy_query = nn.Linear(cfg.d_model, cfg.d_model)
            self.copy_key = nn.Linear(cfg.d_model, cfg.d_model)
            self.copy_gate = nn.Linear(cfg.d_model, 1)
            to_action = torch.full((cfg.vocab_size,), -1, dtype=torch.long)
            to_action[torch.tensor(cfg.action_token_ids)] = torch.arange(len(cfg.action_token_ids))
            self.register_buffer("token_to_action", to_action, persistent=False)
            if cfg.copy_features:
                # A prior for copying spans (learned from there): a continuation gets
                # e^5 ~ 150 times the weight of another position of an untrained pointer.
                self.copy_match = nn.Parameter(torch.tensor([2.5, 2.5, -2.5]))
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)  # GPT-2's initialisation
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def n_actions(self) -> int:
        return len(self.cfg.action_token_ids)

    # -- pieces -----------------------------------------------------------------------------

    def _embed_source(self, source: Tensor) -> Tensor:
        s = source.shape[1]
        if s > self.cfg.max_source_tokens:
            raise ValueError(f"source: {s} tokens > max_source_tokens={self.cfg.max_source_tokens}")
        pos = torch.arange(s, device=source.device)
        return self.emb_ln(self.embed(source) + self.src_pos(pos) + self.segment.weight[0])

    def _embed_target(self, tokens: Tensor, start: int) -> Tensor:
        """``tokens`` (B, n) at target positions ``start..start+n-1`` (0 = the separator)."""
        n = tokens.shape[1]
        if start + n > self.cfg.max_new_tokens + 1:
            raise ValueError(
                f"generated: {start + n - 1} tokens > max_new_tokens={self.cfg.max_new_tokens}"
            )
        pos = torch.arange(start, start + n, device=tokens.device)
        return self.emb_ln(self.embed(tokens) + self.tgt_pos(pos) + self.segment.weight[1])

    def _copy_source(
        self, source: Tensor, source_mask: Tensor, src_h: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Pointer keys (B, S, D) and action indices (B, S; -1 = not an action) of a source."""
        index = self.token_to_action[source].masked_fill(~source_mask, -1)
        return self.copy_key(self.ln_out(src_h)), index

    def _match_bias(self, source: Tensor, prev: Tensor, prev2: Tensor) -> Tensor:
        """Pointer score biases (B, T, S) from token matches; see the module docstring.

        ``prev`` (B, T) is the token fed at each target position (the last generated one, or
        the separator) and ``prev2`` the one before it (the separator when there is none)."""
        pad = torch.full_like(source[:, :1], self.cfg.pad_id)
        before = torch.cat([pad, source[:, :-1]], 1)  # token before source position i
        before2 = torch.cat([pad, pad, source[:, :-2]], 1)[:, : source.shape[1]]
        real = (prev != self.cfg.sep_id)[:, :, None]
        cont = (before[:, None, :] == prev[:, :, None]) & real
        cont2 = (
            cont
            & (before2[:, None, :] == prev2[:, :, None])
            & (prev2 != self.cfg.sep_id)[:, :, None]
        )
        repeat = (source[:, None, :] == prev[:, :, None]) & real
        w = self.copy_match
        return w[0] * cont.float() + w[1] * cont2.float() + w[2] * repeat.float()

    def head(
        self,
        h: Tensor,
        copy_keys: Tensor | None = None,
        copy_index: Tensor | None = None,
        match_bias: Tensor | None = None,
    ) -> Tensor:
        """Q-values (B, T, A) from target hidden states (B, T, D) (and the pointer's source,
        with ``match_bias`` (B, T, S) added to its scores)."""
        h = self.ln_out(h)
        w = self.embed(self.action_tokens)  # (A, D), tied to the token embeddings
        logits = h @ w.t() / math.sqrt(self.cfg.d_model) + self.q_bias  # (B, T, A)
        if self.cfg.head == "soft" and self.cfg.copy:
            d = self.cfg.d_model
            scores = self.copy_query(h) @ copy_keys.transpose(1, 2) / math.sqrt(d)  # (B, T, S)
            if match_bias is not None:
                scores = scores + match_bias
            valid = copy_index >= 0  # (B, S)
            scores = scores.masked_fill(~valid[:, None, :], torch.finfo(scores.dtype).min)
            attn = torch.softmax(scores, -1) * valid[:, None, :]  # zero if no copyable token
            copy = torch.zeros_like(logits).scatter_add_(
                -1, copy_index.clamp(min=0)[:, None, :].expand_as(attn), attn
            )  # (B, T, A)
            gate = torch.sigmoid(self.copy_gate(h))  # (B, T, 1)
            log_pi = torch.logaddexp(
                torch.log1p(-gate + 1e-6) + F.log_softmax(logits, -1), torch.log(gate * copy + 1e-9)
            )
            return self.value(h) + self.cfg.tau * log_pi
        if self.cfg.head == "soft":
            return self.value(h) + self.cfg.tau * F.log_softmax(logits, dim=-1)
        if self.cfg.head == "dueling":
            return self.value(h) + logits - logits.mean(dim=-1, keepdim=True)
        return logits

    # -- whole episodes ---------------------------------------------------------------------

    def forward(self, source: Tensor, source_mask: Tensor, generated: Tensor) -> Tensor:
        """Q for every state of each episode.

        ``source`` (B, S) token ids, ``source_mask`` (B, S) bool (True = real token),
        ``generated`` (B, T) generated token ids (pad beyond each episode's length; padded
        positions give unused Q-values). Returns (B, T + 1, A): index ``j`` is ``Q(s_j, .)``,
        the state after ``j`` generated tokens.
        """
        b, s = source.shape
        t = generated.shape[1]
        sep = torch.full((b, 1), self.cfg.sep_id, dtype=generated.dtype, device=generated.device)
        x = torch.cat(
            [self._embed_source(source), self._embed_target(torch.cat([sep, generated], 1), 0)], 1
        )  # (B, S+T+1, D)
        n = s + t + 1
        see_source = torch.cat(
            [source_mask, torch.zeros(b, t + 1, dtype=torch.bool, device=source.device)], 1
        )  # (B, N)
        causal = torch.ones(t + 1, t + 1, dtype=torch.bool, device=source.device).tril()
        mask = see_source[:, None, :].expand(b, n, n).clone()  # (B, N, N)
        mask[:, s:, s:] = causal
        # A padded source row sees nothing; let it see itself so softmax stays finite.
        idx = torch.arange(s, device=source.device)
        mask[:, idx, idx] |= ~source_mask
        mask = mask[:, None]  # (B, 1, N, N)
        for layer in self.layers:
            x, _, _ = layer(x, mask)
        if self.cfg.copy:
            keys, index = self._copy_source(source, source_mask, x[:, :s])
            bias = None
            if self.cfg.copy_features:
                fed = torch.cat([sep, generated], 1)  # token fed at each target position
                bias = self._match_bias(source, fed, torch.cat([sep, fed[:, :-1]], 1))
            return self.head(x[:, s:], keys, index, bias)  # (B, T+1, A)
        return self.head(x[:, s:])  # (B, T+1, A)

    # -- acting with a cache ----------------------------------------------------------------

    def source_states(
        self, source: Tensor, source_mask: Tensor
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Final source states (B, S, D) and each layer's keys and values."""
        b, s = source.shape
        x = self._embed_source(source)
        mask = source_mask[:, None, :].expand(b, s, s).clone()
        idx = torch.arange(s, device=source.device)
        mask[:, idx, idx] |= ~source_mask
        mask = mask[:, None]
        keys, values = [], []
        for layer in self.layers:
            x, k, v = layer(x, mask)
            keys.append(k)
            values.append(v)
        return x, keys, values

    @torch.no_grad()
    def encode_source(self, source: Tensor, source_mask: Tensor) -> SourceCache:
        """Encode a batch of documents once; returns the cache :meth:`step` extends."""
        b = source.shape[0]
        x, keys, values = self.source_states(source, source_mask)
        cache = SourceCache(keys, values, source_mask)
        if self.cfg.copy:
            cache.copy_keys, cache.copy_index = self._copy_source(source, source_mask, x)
            cache.source = source
            cache.history = torch.full(
                (b, 2), self.cfg.sep_id, dtype=torch.long, device=source.device
            )
        return cache

    @torch.no_grad()
    def step(self, cache: SourceCache, last_tokens: Tensor | None = None) -> Tensor:
        """Q(s_j, .) for the next state of each episode in the batch, updating ``cache``.

        The first call (no argument) feeds the separator and returns Q(s_0); each later call
        feeds the tokens just generated (B,) and returns Q after them. (B, A).
        """
        b = cache.key_mask.shape[0]
        if last_tokens is None:
            if cache.steps:
                raise ValueError("step: last_tokens is required after the first step")
            last_tokens = torch.full(
                (b,), self.cfg.sep_id, dtype=torch.long, device=cache.key_mask.device
            )
        x = self._embed_target(last_tokens.view(b, 1).long(), cache.steps)  # (B, 1, D)
        n_prev = cache.steps
        see = torch.cat(
            [cache.key_mask, torch.ones(b, n_prev + 1, dtype=torch.bool, device=x.device)], 1
        )
        mask = see[:, None, None, :]  # (B, 1, 1, S + n_prev + 1)
        for i, layer in enumerate(self.layers):
            keys, values = cache.keys[i], cache.values[i]
            if n_prev:
                keys = torch.cat([keys, cache.target_keys[i]], 2)
                values = torch.cat([values, cache.target_values[i]], 2)
            x, k, v = layer.attend(x, keys, values, mask)
            if n_prev:
                cache.target_keys[i] = torch.cat([cache.target_keys[i], k], 2)
                cache.target_values[i] = torch.cat([cache.target_values[i], v], 2)
            else:
                cache.target_keys.append(k)
                cache.target_values.append(v)
        cache.steps += 1
        bias = None
        if self.cfg.copy and self.cfg.copy_features:
            prev2 = cache.history[:, 1]
            cache.history = torch.stack([prev2, last_tokens.view(b).long()], 1)
            bias = self._match_bias(cache.source, cache.history[:, 1:], prev2[:, None])
        return self.head(x, cache.copy_keys, cache.copy_index, bias)[:, 0]

    def select(self, cache: SourceCache, rows: Tensor) -> SourceCache:
        """The cache restricted to batch ``rows`` (e.g. to drop finished episodes)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return SourceCache(
            [k[rows] for k in cache.keys],
            [v[rows] for v in cache.values],
            cache.key_mask[rows],
            pick(cache.copy_keys),
            pick(cache.copy_index),
            pick(cache.source),
            pick(cache.history),
            [k[rows] for k in cache.target_keys],
            [v[rows] for v in cache.target_values],
            cache.steps,
        )
