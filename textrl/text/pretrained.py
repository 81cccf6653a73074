"""Initialise the text Q-network from a local pretrained Hugging Face encoder.

Supported: BERT-layout encoders (``model_type`` ``bert``, ``roberta``, ``xlm-roberta``,
``camembert``, and ``electra`` when its embedding size equals its hidden size), loaded with
``transformers.AutoModel.from_pretrained(path, local_files_only=True)`` (safetensors or
``torch.load(weights_only=True)`` inside transformers; ``trust_remote_code`` stays off).

The Q-network takes the encoder's shape: width, layers, heads, feed-forward width, activation,
LayerNorm epsilon, and post-LayerNorm layers with a LayerNorm after the embeddings
(:func:`encoder_settings`). Then :func:`load_encoder_weights` copies token embeddings,
position embeddings (source positions ``0..S-1`` and target positions ``0..T`` both read the
pretrained table from its first position, after RoBERTa's padding offset), token-type embeddings
(source = type 0, target = type 1 when the model has two, else type 0), and every layer's
attention, feed-forward and LayerNorm weights. With the same inputs, the Q-network's source
states then equal the encoder's ``last_hidden_state`` (tested). The Q head, value head, pointer
and any token the tokenizer added (e.g. an end-of-sequence token) start fresh.

Use the encoder's own tokenizer (``--tokenizer`` defaults to the ``--init-encoder`` path), so
that token ids index the pretrained embeddings. Small encoders suit this CPU (e.g. a 2-layer,
128-wide BERT has 4.4M parameters); base-size models train, but slowly, without a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from textrl.text.qnetwork import QNetwork

SUPPORTED = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
}


def load_encoder(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The pretrained ``transformers`` model at local ``path`` (checked and on CPU, fp32)."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"init_encoder: {str(path)!r} is not a local Hugging Face model "
            "folder (expected config.json and weights in it)"
        )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(
        str(path), local_files_only=True, trust_remote_code=trust_remote_code, dtype=torch.float32
    )
    cfg = model.config
    if cfg.model_type not in SUPPORTED:
        raise ValueError(
            f"init_encoder: model_type {cfg.model_type!r} is not supported; "
            f"expected one of {SUPPORTED} (BERT-layout encoders)"
        )
    if getattr(cfg, "embedding_size", cfg.hidden_size) != cfg.hidden_size:
        raise ValueError(
            f"init_encoder: embedding_size={cfg.embedding_size} differs from "
            f"hidden_size={cfg.hidden_size}; only equal sizes are supported"
        )
    if cfg.hidden_act not in ACTIVATIONS:
        raise ValueError(
            f"init_encoder: hidden_act {cfg.hidden_act!r} is not supported; "
            f"expected one of {sorted(ACTIVATIONS)}"
        )
    return model.eval()


def encoder_settings(model: Any) -> dict[str, Any]:
    """Q-network settings (``TextTrainConfig`` field names) that reproduce ``model``'s stack."""
    cfg = model.config
    return {
        "d_model": cfg.hidden_size,
        "n_layers": cfg.num_hidden_layers,
        "n_heads": cfg.num_attention_heads,
        "d_ff": cfg.intermediate_size,
        "post_ln": True,
        "ln_eps": float(cfg.layer_norm_eps),
        "activation": ACTIVATIONS[cfg.hidden_act],
    }


def _position_offset(model: Any) -> int:
    # RoBERTa-style models number positions from padding_idx + 1.
    if model.config.model_type in ("roberta", "xlm-roberta", "camembert"):
        return model.config.pad_token_id + 1
    return 0


def load_encoder_weights(net: QNetwork, model: Any) -> list[str]:
    """Copy ``model``'s encoder weights into ``net`` (built with :func:`encoder_settings`).

    Returns the names of the Q-network parameters that were initialised."""
    c = net.cfg
    if (
        not c.post_ln
        or c.d_model != model.config.hidden_size
        or c.n_layers != model.config.num_hidden_layers
    ):
        raise ValueError(
            "init_encoder: the Q-network was not built with the encoder's "
            "settings (textrl.pretrained.encoder_settings)"
        )
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    emb = model.get_input_embeddings().weight.detach().float()
    pos = sd["embeddings.position_embeddings.weight"]
    types = sd["embeddings.token_type_embeddings.weight"]
    offset = _position_offset(model)
    need = offset + max(c.max_source_tokens, c.max_new_tokens + 1)
    if pos.shape[0] < need:
        raise ValueError(
            f"init_encoder: the encoder has {pos.shape[0]} positions; "
            f"max_source_tokens={c.max_source_tokens} needs {need}"
        )
    done = []
    with torch.no_grad():
        rows = min(emb.shape[0], net.embed.weight.shape[0])
        net.embed.weight[:rows] = emb[:rows]
        net.src_pos.weight.copy_(pos[offset : offset + c.max_source_tokens])
        net.tgt_pos.weight.copy_(pos[offset : offset + c.max_new_tokens + 1])
        net.segment.weight[0] = types[0]
        net.segment.weight[1] = types[1] if types.shape[0] > 1 else types[0]
        net.emb_ln.weight.copy_(sd["embeddings.LayerNorm.weight"])
        net.emb_ln.bias.copy_(sd["embeddings.LayerNorm.bias"])
        done += ["embed", "src_pos", "tgt_pos", "segment", "emb_ln"]
        for i, layer in enumerate(net.layers):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            layer.qkv.weight.copy_(
                torch.cat([sd[att + n + ".weight"] for n in ("query", "key", "value")])
            )
            layer.qkv.bias.copy_(
                torch.cat([sd[att + n + ".bias"] for n in ("query", "key", "value")])
            )
            pairs = {
                "proj": "attention.output.dense",
                "ln1": "attention.output.LayerNorm",
                "ff.0": "intermediate.dense",
                "ff.2": "output.dense",
                "ln2": "output.LayerNorm",
            }
            for ours, theirs in pairs.items():
                module = layer.get_submodule(ours)
                module.weight.copy_(sd[p + theirs + ".weight"])
                module.bias.copy_(sd[p + theirs + ".bias"])
            done.append(f"layers.{i}")
    return done
