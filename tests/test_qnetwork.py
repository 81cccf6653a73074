"""The text Q-network: one pass per episode equals cached step-by-step acting; heads; guards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textrl.text.qnetwork import QNetConfig, QNetwork


def make(head: str = "soft", **kw) -> QNetwork:
    torch.manual_seed(0)
    kw.setdefault("copy", head == "soft")
    cfg = QNetConfig(
        vocab_size=60,
        action_token_ids=[0] + list(range(4, 60)),
        pad_id=1,
        sep_id=2,
        d_model=32,
        n_layers=2,
        n_heads=4,
        d_ff=64,
        max_source_tokens=20,
        max_new_tokens=8,
        head=head,
        **kw,
    )
    return QNetwork(cfg).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    source = torch.randint(4, 60, (3, 12), generator=g)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, 7:] = False  # a shorter document, padded
    source[1, 7:] = 1
    generated = torch.randint(4, 60, (3, 6), generator=g)
    return source, mask, generated


@pytest.mark.parametrize(
    "head, copy", [("soft", True), ("soft", False), ("dueling", False), ("plain", False)]
)
def test_one_pass_equals_cached_steps(head: str, copy: bool) -> None:
    net = make(head, copy=copy)
    source, mask, generated = batch()
    full = net(source, mask, generated)  # (B, T+1, A)
    assert full.shape == (3, 7, net.n_actions)
    cache = net.encode_source(source, mask)
    steps = [net.step(cache)] + [net.step(cache, generated[:, t]) for t in range(6)]
    assert torch.allclose(full, torch.stack(steps, 1), atol=1e-5)


def test_padding_and_future_tokens_do_not_leak() -> None:
    net = make()
    source, mask, generated = batch()
    base = net(source, mask, generated)
    changed_pad = source.clone()
    changed_pad[1, 7:] = 30  # contents of padded positions must not matter
    assert torch.allclose(base, net(changed_pad, mask, generated), atol=1e-6)
    changed_future = generated.clone()
    changed_future[:, 4:] = 5  # Q(s_j) must not see tokens after position j
    assert torch.allclose(base[:, :5], net(source, mask, changed_future)[:, :5], atol=1e-6)
    assert not torch.allclose(base[:, 5:], net(source, mask, changed_future)[:, 5:])


def test_soft_head_softmax_is_the_logits_softmax() -> None:
    net = make("soft", tau=0.1, copy=False)
    source, mask, generated = batch()
    q = net(source, mask, generated)
    h = torch.randn(2, 32)
    q_h = net.head(h)
    # Q / tau differs from log_softmax(Q / tau) only by a per-state constant: the policy is
    # softmax(Q / tau) and V(s) = tau * logsumexp(Q / tau) up to that constant.
    shift = q_h / 0.1 - F.log_softmax(q_h / 0.1, -1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-4)
    assert torch.isfinite(q).all()


def test_copy_distribution_puts_mass_on_source_tokens() -> None:
    net = make("soft", tau=1.0)
    with torch.no_grad():
        net.copy_gate.bias.fill_(20.0)  # gate ~ 1: the policy is the copy distribution
    source, mask, generated = batch()
    with torch.no_grad():
        pi = torch.softmax(net(source, mask, generated) / 1.0, -1)  # (B, T+1, A)
    to_action = net.token_to_action
    for b in range(3):
        in_source = torch.zeros(net.n_actions, dtype=torch.bool)
        in_source[to_action[source[b][mask[b]]]] = True
        assert float(pi[b][:, in_source].sum(-1).min()) > 0.99


def test_guards() -> None:
    net = make()
    too_long = torch.randint(4, 60, (1, 21))
    with pytest.raises(ValueError, match="max_source_tokens=20"):
        net(too_long, torch.ones_like(too_long, dtype=torch.bool), torch.zeros(1, 1).long())
    with pytest.raises(ValueError, match="max_new_tokens=8"):
        net(too_long[:, :5], torch.ones(1, 5, dtype=torch.bool), torch.zeros(1, 9).long())
    with pytest.raises(ValueError, match="head"):
        make("weird")
    with pytest.raises(ValueError, match="copy needs head='soft'"):
        make("dueling", copy=True)
    with pytest.raises(ValueError, match="action_token_ids"):
        QNetwork(QNetConfig(vocab_size=10))


def test_match_features_one_pass_equals_steps_and_continue_copies_the_next_token() -> None:
    net = make("soft", tau=1.0)
    source, mask, _ = batch()
    generated = source[:, 2:8].clone()  # copies a span, so continuation matches fire
    generated[1, 5] = 1  # (row 1's document is shorter: position 7 is padding)
    with torch.no_grad():
        net.copy_match.copy_(torch.tensor([3.0, 2.0, -1.0]))
    full = net(source, mask, generated)
    cache = net.encode_source(source, mask)
    steps = [net.step(cache)] + [net.step(cache, generated[:, t]) for t in range(6)]
    assert torch.allclose(full, torch.stack(steps, 1), atol=1e-5)
    # A pointer that only follows the continuation bias copies the next source token.
    with torch.no_grad():
        net.copy_gate.bias.fill_(20.0)
        net.copy_match.copy_(torch.tensor([30.0, 0.0, 0.0]))
        net.copy_query.weight.zero_()
        net.copy_query.bias.zero_()
    src = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        pi = torch.softmax(net(src, torch.ones_like(src, dtype=torch.bool), src[:, :3]), -1)
    for j in (1, 2, 3):  # after emitting src[j-1], the next action is src[j]
        assert float(pi[0, j, net.token_to_action[src[0, j]]]) > 0.99


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_pretrained_encoder_initialisation_reproduces_its_states(tmp_path, model_type) -> None:
    from dataclasses import replace

    import transformers

    from textrl.text.pretrained import encoder_settings, load_encoder, load_encoder_weights

    kw = dict(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
    )
    if model_type == "bert":
        model = transformers.BertModel(transformers.BertConfig(**kw))
    else:
        model = transformers.RobertaModel(transformers.RobertaConfig(**kw, type_vocab_size=1))
    model.save_pretrained(tmp_path)
    encoder = load_encoder(tmp_path)
    settings = encoder_settings(encoder)
    assert settings["post_ln"] and settings["d_ff"] == 48 and settings["ln_eps"] == 1e-12
    base = make().cfg
    net = QNetwork(replace(base, **settings)).eval()
    load_encoder_weights(net, encoder)
    source, mask, generated = batch()
    states, _, _ = net.source_states(source, mask)
    with torch.no_grad():
        offset = 2 if model_type == "roberta" else 0
        ref = encoder(
            input_ids=source,
            attention_mask=mask.long(),
            position_ids=torch.arange(12)[None].expand(3, 12) + offset,
            token_type_ids=torch.zeros_like(source),
        ).last_hidden_state
    assert torch.allclose(states[mask], ref[mask], atol=1e-5)
    # the post-LN network still acts with its cache exactly as the one-pass forward
    full = net(source, mask, generated)
    cache = net.encode_source(source, mask)
    steps = [net.step(cache)] + [net.step(cache, generated[:, t]) for t in range(6)]
    assert torch.allclose(full, torch.stack(steps, 1), atol=1e-5)


def test_pretrained_encoder_errors(tmp_path) -> None:
    from textrl.text.pretrained import load_encoder

    with pytest.raises(FileNotFoundError, match="not a local Hugging Face model folder"):
        load_encoder(tmp_path / "missing")
