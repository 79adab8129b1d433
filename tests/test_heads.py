import pytest
import torch

from pipeline.core.params import FusionParams
from pipeline.models.heads import HEADS, CrossAttentionFusionHead, create_head, head_config
from pipeline.models.losses import asymmetric_loss

DIMS = {"image_token_dim": 12, "image_pooled_dim": 10, "text_token_dim": 8, "text_pooled_dim": 6,
        "plot_pooled_dim": 5, "metadata_dim": 9}


def batch(n=4, ti=5, tt=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, tt, dtype=torch.bool)
    for i in range(n):
        mask[i, : 2 + i % (tt - 1)] = True
    return {
        "image_tokens": torch.randn(n, ti, 12, generator=g),
        "image_pooled": torch.randn(n, 10, generator=g),
        "text_tokens": torch.randn(n, tt, 8, generator=g),
        "text_mask": mask,
        "text_pooled": torch.randn(n, 6, generator=g),
        "has_text": torch.tensor([True, False, True, True][:n]),
        "plot_pooled": torch.randn(n, 5, generator=g),
        "has_plot": torch.tensor([True, True, False, True][:n]),
        "metadata": torch.randn(n, 9, generator=g),
    }


def make(dropout=0.0, **kw):
    torch.manual_seed(0)
    fusion = FusionParams(dim=16, heads=4, dropout=dropout, **{"plot": False, "metadata": False, **kw})
    return create_head(head_config(fusion, DIMS, num_genres=3)).eval()


FEATURES = ("image_tokens", "image_pooled", "text_tokens", "text_pooled", "plot_pooled", "metadata")


def rows(b, index):
    """Posters ``index`` (a list) of batch ``b``, as a batch."""
    return {k: v[index] for k, v in b.items()}


def assert_reads_its_inputs_per_poster(head, image, text, plot=False, metadata=False):
    """``head`` (eval) reads the feature ``image`` of every poster and ``text`` of every poster with text (None:
    that modality not at all), with ``plot`` the plot of every film that has one (never of one without), with
    ``metadata`` every film's metadata; no other feature; and a poster's output depends on that poster alone."""
    b = batch()
    out = head(b)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    has_text, has_plot = b["has_text"].tolist(), b["has_plot"].tolist()
    g = torch.Generator().manual_seed(123)
    for key in FEATURES:
        moved = (head({**b, key: torch.randn(b[key].shape, generator=g)}) - out).abs().amax(1)
        expected = ([True] * 4 if key == image or (key == "metadata" and metadata) else has_text if key == text
                    else has_plot if key == "plot_pooled" and plot else [False] * 4)
        assert (moved > 1e-4).tolist() == expected and ((moved > 1e-4) | (moved < 1e-6)).all(), (key, moved)
    # other posters in the batch (other texts, text lengths and has_text beside it) do not change poster i
    others = rows(batch(seed=1), [3, 2, 1, 0])
    for i in range(4):
        mixed = {k: v.clone() for k, v in others.items()}
        for k in mixed:
            mixed[k][i] = b[k][i]
        torch.testing.assert_close(head(mixed)[i], out[i])
        torch.testing.assert_close(head(rows(b, [i]))[0], out[i])  # nor does it change alone


def assert_dropout_only_in_training(build):
    """``build(dropout)`` makes a head with the same weights whatever the dropout: in eval mode dropout is off
    (deterministic, and the same output as without dropout); in training it is on, where the head has any."""
    b = batch()
    head = build(0.5)
    if any(isinstance(m, torch.nn.Dropout) for m in head.modules()):
        head.train()
        assert not torch.equal(head(b), head(b))
    head.eval()
    out = head(b)
    assert torch.equal(head(b), out)
    torch.testing.assert_close(out, build(0.0).eval()(b))


@pytest.mark.parametrize("kw", [
    {}, {"layers": 1}, {"layers": 0}, {"mcam": False}, {"mcam": False, "layers": 0},
    {"tokens": "pooled"}, {"tokens": "pooled", "fuse": "add"},
])
def test_cross_attention_variants_read_their_inputs_per_poster(kw):
    """Token sequences by default, pooled vectors with tokens: pooled; each poster on its own; no dropout in eval."""
    tokens = kw.get("tokens", "sequence") == "sequence"
    image, text = ("image_tokens", "text_tokens") if tokens else ("image_pooled", "text_pooled")
    assert_reads_its_inputs_per_poster(make(**kw), image, text)
    assert_dropout_only_in_training(lambda dropout: make(dropout=dropout, **kw))


def test_padding_tokens_do_not_change_the_output():
    head = make()
    b = batch()
    before = head(b)
    b["text_tokens"][~b["text_mask"]] = 1e4  # garbage in padded positions
    torch.testing.assert_close(head(b), before)


def test_empty_text_uses_learned_token_not_the_tokens():
    head = make()
    b = batch()
    before = head(b)
    b["text_tokens"][1] = torch.randn_like(b["text_tokens"][1]) * 100  # poster 1 has no text
    after = head(b)
    torch.testing.assert_close(after[1], before[1])
    torch.testing.assert_close(after[0], before[0])
    head.empty_text.data += 1.0
    assert not torch.allclose(head(b)[1], before[1])


def test_true_cross_attention_image_attends_to_text():
    """With MCAM, changing only the text changes the image stream (and vice versa)."""
    head = make(layers=0)
    b = batch()
    img, txt, mask = head.inputs(b)
    zi, zt = head.mcam(img, txt, mask)
    b2 = {**b, "text_tokens": b["text_tokens"] + 1.0}
    img2, txt2, mask2 = head.inputs(b2)
    zi2, _ = head.mcam(img2, txt2, mask2)
    assert not torch.allclose(zi[0], zi2[0])


def test_smsam_layer_count():
    assert len(make(layers=4).smsam.blocks) == 4
    assert make(layers=0).smsam is None
    assert make(mcam=False).mcam is None


def test_overfits_a_small_batch():
    torch.manual_seed(0)
    head = make()
    head.train()
    b = batch(n=4)
    y = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        loss = asymmetric_loss(head(b), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    pred = (torch.sigmoid(head(b)) > 0.5).float()
    assert torch.equal(pred, y), (loss.item(), torch.sigmoid(head(b)))


#: Every trainable head but the paper's (tested above), from the registry: a new head is tested here by itself.
BASELINES = [name for name in HEADS.names() if name not in ("cross_attention", "naive")]
#: What each baseline reads: image, text (pooled), plot, metadata.
READS = {"image": "i", "text": "t", "plot": "p", "metadata": "m", "visio_textual": "ip"}


def test_the_papers_head_is_registered_and_its_old_name_still_loads():
    assert FusionParams().head == "cross_attention" and HEADS.get("cross_attention") is CrossAttentionFusionHead
    # a checkpoint saved before the rename names its head `mcam`: it builds the same head, weights fit
    new = make()
    old_config = {**new.config, "head": "mcam"}
    old = create_head(old_config)
    assert type(old) is CrossAttentionFusionHead
    old.load_state_dict(new.state_dict())
    torch.testing.assert_close(old.eval()(batch()), new(batch()))
    # ...but params must say what the head is now
    from pipeline.core.params import ParamsError, parse_group

    with pytest.raises(ParamsError, match=r"^params.yaml: fusion.head 'mcam' was renamed 'cross_attention'$"):
        parse_group("fusion", {"head": "mcam"})
    with pytest.raises(ParamsError, match=r"^params.yaml: fusion.head 'gmo' unknown; choose one of \['cross_att"):
        parse_group("fusion", {"head": "gmo"})


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_heads_read_their_inputs_per_poster_and_overfit(name):
    """Pooled vectors only (image: not the text, text: not the image); each poster on its own; no dropout in eval;
    and enough capacity to fit four posters' labels."""
    reads = READS.get(name, "it")
    assert_reads_its_inputs_per_poster(make_named(name), "image_pooled" if "i" in reads else None,
                                       "text_pooled" if "t" in reads else None, "p" in reads, "m" in reads)
    assert_dropout_only_in_training(lambda dropout: make_named(name, dropout))
    head = make_named(name).train()
    b = batch(n=4)
    y = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    from pipeline.models.train import batch_training_loss

    for _ in range(300):
        loss = batch_training_loss(head, b, y, asymmetric_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    assert torch.equal((torch.sigmoid(head(b)) > 0.5).float(), y), name


def test_single_modality_heads_ignore_the_other_modality():
    b = batch()
    image = make_named("image")
    text = make_named("text")
    before_i, before_t = image(b), text(b)
    b2 = {**b, "text_pooled": torch.randn_like(b["text_pooled"])}  # (a constant shift would vanish in LN)
    torch.testing.assert_close(image(b2), before_i)
    assert not torch.allclose(text(b2), before_t)


def make_named(name, dropout=0.0, **kw):
    """The head ``name``; film inputs only where it must read them (or ``kw`` asks)."""
    torch.manual_seed(0)
    fusion = FusionParams(head=name, dim=16, heads=4, dropout=dropout, **{"plot": False, "metadata": False, **kw})
    return create_head(head_config(fusion, DIMS, 3)).eval()


@pytest.mark.parametrize("films", [{}, {"plot": True, "metadata": True}])
def test_late_fusion_blend_does_not_train_branches(films):
    """The head's own training loss: the branches get the gradient of their own losses only (the blend's loss
    reaches the blend alone), so removing the head's detach fails here."""
    head = make_named("late", **films).train()
    b = batch()
    y = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    head.zero_grad()
    head.training_loss(b, y, asymmetric_loss).backward()
    with_blend = {n: p.grad.clone() for n, p in head.named_parameters() if not n.startswith("blend")}
    assert head.blend.weight.grad is not None and head.blend.weight.grad.abs().sum() > 0
    head.zero_grad()
    sum(asymmetric_loss(z, y) for z in head.branch_logits(b)).backward()
    for name, p in head.named_parameters():
        if not name.startswith("blend") and p.grad is not None:
            torch.testing.assert_close(with_blend[name], p.grad, msg=name)


def test_late_fusion_blend_starts_as_the_mean_of_its_branches():
    """Before any training the ensemble is each genre's mean of its two branch logits:
    a random start mixed all 2M outputs and never recovered at lr 1e-4."""
    head = make_named("late")
    b = batch()
    image, text = head.branch_logits(b)
    torch.testing.assert_close(head(b), (image + text) / 2)


def test_late_fusion_random_start_keeps_the_earlier_blend():
    torch.manual_seed(0)
    fusion = FusionParams(head="late", dim=16, heads=4, dropout=0.0, late_init="random", plot=False, metadata=False)
    head = create_head(head_config(fusion, DIMS, 3)).eval()
    b = batch()
    image, text = head.branch_logits(b)
    expected = head.blend(torch.cat([torch.sigmoid(image), torch.sigmoid(text)], dim=1))
    torch.testing.assert_close(head(b), expected)
    assert not torch.allclose(head(b), (image + text) / 2)


def test_naive_predicts_the_k_most_frequent_genres():
    head = make_named("naive")
    labels = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=torch.float32)
    head.fit(labels)  # frequencies (1, .5, .25); 1.75 genres per poster -> k = 2: genres 0 and 1
    out = torch.sigmoid(head(batch()))
    assert ((out > 0.5).float() == torch.tensor([1.0, 1.0, 0.0])).all()
    assert out[0, 0] > out[0, 1] > 0.5 > out[0, 2]
    assert sum(p.numel() for p in head.parameters()) == 0


@pytest.mark.parametrize("films", [{"plot": True}, {"metadata": True}, {"plot": True, "metadata": True}])
@pytest.mark.parametrize("name", ["cross_attention", "late"])
def test_heads_that_read_films_read_a_plot_only_where_the_film_has_one(name, films):
    """The paper's head (a further text token) and the late ensemble (a further branch): each film input is
    read per poster, and a film without a plot never reads the plot vector."""
    head = make(**films) if name == "cross_attention" else make_named(name, **films)
    image = "image_tokens" if name == "cross_attention" else "image_pooled"
    text = "text_tokens" if name == "cross_attention" else "text_pooled"
    assert_reads_its_inputs_per_poster(head, image, text, films.get("plot", False), films.get("metadata", False))
    build = (lambda dropout: make(dropout=dropout, **films)) if name == "cross_attention" else (
        lambda dropout: make_named(name, dropout, **films))
    assert_dropout_only_in_training(build)


def test_film_inputs_resolve_auto_and_refuse_what_a_head_cannot_read():
    from pipeline.core.errors import PipelineError

    poster_only = {k: v for k, v in DIMS.items() if k not in ("plot_pooled_dim", "metadata_dim")}
    auto = FusionParams(dim=16, heads=4)  # plot: auto, metadata: auto
    assert head_config(auto, DIMS, 3)["plot"] is True and head_config(auto, DIMS, 3)["metadata"] is True
    assert head_config(auto, poster_only, 3)["plot"] is False  # no films: the poster only
    assert head_config(FusionParams(head="gmu", dim=16, heads=4), DIMS, 3)["plot"] is False  # gmu cannot: auto = off
    with pytest.raises(PipelineError, match=r"^fusion.plot: the gmu head cannot read the film's plot"):
        head_config(FusionParams(head="gmu", dim=16, heads=4, plot=True), DIMS, 3)
    with pytest.raises(PipelineError, match=r"^fusion.plot: the plot head reads the film's plot, but there is none: "
                                            r"set data.films"):
        head_config(FusionParams(head="plot", dim=16, heads=4), poster_only, 3)


def test_late_fusion_with_films_blends_four_branches_from_their_mean():
    head = make_named("late", plot=True, metadata=True)
    assert head.branch_names == ["image", "text", "plot", "metadata"]
    logits = head.branch_logits(batch())
    torch.testing.assert_close(head(batch()), sum(logits) / 4)
