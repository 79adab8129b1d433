"""The review page (pipeline/evaluation/review.py) without a browser, and what it explains with
(pipeline/models/explain.py): attention weights, words from tokens, the region grid."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.evaluation.review import Card, build_cards, per_genre_rows, render_page, write_review
from pipeline.models.explain import (
    attention_maps,
    attention_note,
    card_attention,
    image_frame,
    region_grid,
    word_weights,
)
from tests.factories import write_poster
from tests.test_heads import batch, make, make_named

GENRES = ["Action", "Comedy", "Drama"]


def _card(key, predicted, truth, probs, **kw):
    return Card(key=key, name=f"Film {key}", probabilities=dict(zip(GENRES, probs)), predicted=predicted,
                truth=truth, **kw)


def test_page_escapes_what_a_poster_says_and_runs_nothing():
    card = _card("k1", ["Action"], ["Action"], [0.9, 0.1, 0.2], text="<script>alert(1)</script> & \"more\"",
                 ocr=[("<img src=x onerror=alert(2)>", [0, 0, 10, 0, 10, 5, 0, 5], 0.9)], image="x.jpg",
                 size=(10, 20))
    card.name = '<b onclick="x()">Bold</b>'
    page = render_page([card], GENRES, title="t <i>", rule="rule <u>")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 and "alert" not in scripts[0]  # the page's own script only
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<b onclick" not in page and "&lt;b onclick=&quot;x()&quot;&gt;Bold&lt;/b&gt;" in page
    assert "<i>" not in page and "<u>" not in page


def test_a_page_for_zero_posters_says_so(tmp_path):
    counts = write_review(tmp_path / "review", [], GENRES, title="Test", rule="r")
    page = (tmp_path / "review" / "index.html").read_text()
    assert counts == {"cards": 0, "thumbnails": 0, "without_thumbnail": 0}
    assert "zero posters" in page and 'class="card"' not in page


def test_cards_carry_hits_misses_and_false_alarms_and_sort_worst_first():
    right = _card("a", ["Action"], ["Action"], [0.95, 0.05, 0.05])
    wrong = _card("b", ["Comedy"], ["Action", "Drama"], [0.2, 0.9, 0.3])
    page = render_page([right, wrong], GENRES, title="t", rule="r", thresholds=dict.fromkeys(GENRES, 0.5))
    assert wrong.loss() > right.loss()
    assert page.index('data-key="b"') < page.index('data-key="a"')  # worst first
    card_b = page[page.index('data-key="b"'):page.index('data-key="a"')]
    assert 'data-missed="2"' in card_b and 'data-false="1"' in card_b
    assert "missed Action, Drama, false alarm Comedy" in card_b
    assert re.search(r'<li class="false"[^>]*><span class="g">Comedy', card_b)
    assert re.search(r'<li class="missed"[^>]*><span class="g">Action', card_b)
    card_a = page[page.index('data-key="a"'):]
    assert "exactly right" in card_a and re.search(r'<li class="hit"[^>]*><span class="g">Action', card_a)


def test_per_genre_table_counts_the_cards_decisions():
    cards = [_card("a", ["Action"], ["Action"], [0.9, 0.1, 0.1]), _card("b", ["Action"], ["Comedy"], [0.8, 0.4, 0.1]),
             _card("c", ["Comedy"], ["Comedy", "Action"], [0.4, 0.7, 0.1])]
    rows = {r["genre"]: r for r in per_genre_rows(cards, GENRES)}
    assert rows["Action"]["precision"] == pytest.approx(1 / 2) and rows["Action"]["recall"] == pytest.approx(1 / 2)
    assert rows["Comedy"]["precision"] == pytest.approx(1.0) and rows["Comedy"]["recall"] == pytest.approx(1 / 2)
    assert rows["Action"]["posters"] == 2 and rows["Action"]["predicted"] == 2
    assert per_genre_rows([_card("x", [], None, [0.1, 0.1, 0.1])], GENRES) == []  # no truth: no table


def test_write_review_makes_thumbnails_and_a_card_for_a_poster_it_cannot_read(tmp_path):
    good = tmp_path / "good.jpg"
    write_poster(good, (200, 30, 30), (300, 450))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    cards = [_card("good", ["Action"], ["Action"], [0.9, 0.1, 0.1], image=str(good), size=(300, 450)),
             _card("bad", [], ["Drama"], [0.1, 0.1, 0.3], image=str(bad), size=(10, 10))]
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "stale.txt").write_text("from an earlier run")
    counts = write_review(tmp_path / "review", cards, GENRES, title="t", rule="r")
    assert counts == {"cards": 2, "thumbnails": 1, "without_thumbnail": 1}
    thumb = Image.open(tmp_path / "review" / "thumbs" / "good.jpg")
    assert max(thumb.size) == 240 and thumb.size[0] < thumb.size[1]
    page = (tmp_path / "review" / "index.html").read_text()
    assert "no thumbnail" in page and "bad.jpg" in page and 'src="thumbs/bad.jpg"' not in page
    assert not (tmp_path / "review" / "stale.txt").exists()  # the folder is replaced whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".review")]  # no temporary left behind
    files = [tmp_path / "review" / "index.html", tmp_path / "review" / "thumbs" / "good.jpg"]
    first = [f.read_bytes() for f in files]
    write_review(tmp_path / "review", cards, GENRES, title="t", rule="r")
    assert [f.read_bytes() for f in files] == first  # byte-identical


def test_the_page_is_complete_without_javascript():
    """Cards are HTML, not built by the script; the filters are hidden until the script shows them; the toggles
    are check boxes CSS reads."""
    page = render_page([_card("a", ["Action"], None, [0.9, 0.1, 0.1])], GENRES, title="t", rule="r")
    assert page.count('<article class="card"') == 1 and '<span id="filters" hidden>' in page
    assert "<noscript>" in page and 'id="show-boxes" class="toggle" checked' in page
    assert "#show-boxes:checked~#cards svg.boxes" in page
    assert 'data-missed="0"' in page and "loss, worst first" not in page  # no truth: no loss sort


# --- explanations ---------------------------------------------------------------------------------------------------

def test_attention_weights_are_the_ones_forward_uses():
    from pipeline.models.heads.attention import MultiHeadAttention

    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    q, k = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 4:] = False
    w = mha.weights(q, k, mask)
    v = mha._split(mha.v(k))
    out = (w @ v).transpose(1, 2).reshape(3, 5, 16)
    torch.testing.assert_close(out, mha(q, k, mask))
    assert torch.all(w[0, :, :, 4:] == 0) and torch.allclose(w.sum(-1), torch.ones(3, 4, 5))


def test_attention_maps_of_the_papers_head_and_a_note_for_heads_without():
    head = make()  # cross_attention, MCAM on, token sequences
    b = batch()
    maps = attention_maps(head, b)
    assert len(maps) == 4
    for i, m in enumerate(maps):
        real = b["text_mask"][i].numpy() if b["has_text"][i] else np.eye(1, b["text_mask"].shape[1], dtype=bool)[0]
        assert np.all(m["text"][~real] == 0)  # padding gets nothing
        assert m["text"][real].sum() == pytest.approx(1.0, abs=1e-5)  # every image query's weights sum to 1
        assert m["image"].shape == (5,) and m["image"].sum() == pytest.approx(1.0, abs=1e-5)
    # another poster's text changes neither this poster's word nor region weights
    other = {**b, "text_tokens": b["text_tokens"].clone()}
    other["text_tokens"][1:] = torch.randn_like(other["text_tokens"][1:])
    np.testing.assert_allclose(attention_maps(head, other)[0]["text"], maps[0]["text"], rtol=1e-5)
    assert attention_note(head) is None
    assert "no cross-attention" in attention_note(make(mcam=False)) and attention_maps(make(mcam=False), b) is None
    assert "does not use attention" in attention_note(make_named("concat"))
    assert "pooled" in attention_note(make(tokens="pooled"))
    with_films = attention_maps(make(plot=True, metadata=True), b)
    assert {"plot", "metadata"} <= set(with_films[0]) and with_films[2]["plot"] == 0  # poster 2's film: no plot


def test_word_weights_sum_a_words_tokens_and_skip_special_ones():
    positions = [None, 0, 1, 1, 2, None, None]
    weights = np.array([0.3, 0.1, 0.2, 0.15, 0.05, 0.2, 0.0])
    assert word_weights("THE KICK BOXER", positions, weights) == [("THE", 0.1), ("KICK", 0.35), ("BOXER", 0.05)]
    assert word_weights("x", None, weights) == [] and word_weights("", positions, weights) == []


def test_offline_tokenizer_maps_every_token_to_its_word():
    """token_words tokenises word by word; the whole text's tokens must be those, in order (checked against the
    tokenizer's own offsets)."""
    from pipeline.core.params import EncoderParams
    from pipeline.features.encoders import create_text_encoder

    encoder = create_text_encoder(EncoderParams(name="offline", text_max_tokens=16))
    text = "KICKBOXER2 the NEW definition, of VENGEANCE! ralphfiennes"
    positions = encoder.token_words(text)
    enc = encoder.tokenizer(text, truncation=True, max_length=16, return_offsets_mapping=True)
    assert len(positions) == len(enc["input_ids"]) == 16
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    for pos, (s, e) in zip(positions, enc["offset_mapping"]):
        expected = None if s == e else max(i for i, start in enumerate(starts) if start <= s)
        assert pos == expected
    short = encoder.token_words("Heat and Dust")
    assert short[0] is None and short[-1] is None and short[1:-1] == [0, 1, 2]


def test_region_grid_and_the_frame_the_encoder_saw():
    assert region_grid(np.arange(49.0))[0] == (7, 7)
    (rows, cols), cells = region_grid(np.arange(50.0))  # a class token first, as CLIP's
    assert (rows, cols) == (7, 7) and cells[0] == 1.0
    assert region_grid(np.arange(11.0)) is None
    assert image_frame("squash", 300, 450) == (0, 0, 300, 450)
    assert image_frame("crop", 300, 450) == (0, 75, 300, 375)
    assert image_frame("pad", 300, 450) == (-75, 0, 375, 450)
    row = {"text": np.array([0.5, 0.5]), "image": np.full(4, 0.25)}
    drawn = card_attention(row, "A", [None, 0], "crop", (300, 450))
    assert drawn["grid"] == [2, 2] and drawn["frame"] == [0, 75, 300, 375] and drawn["words"] == [("A", 0.5)]


def test_build_cards_from_rows_and_the_attention_drawn_on_the_page():
    scores = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2]])
    attention = [{"text": np.array([0.1, 0.6, 0.3]), "image": np.full(4, 0.25)},
                 {"text": np.array([1.0, 0, 0]), "image": np.array([0.7, 0.1, 0.1, 0.1])}]
    cards = build_cards(["k1", "k2"], ["One", "Two"], scores, scores > 0.5, GENRES, images=["a.jpg", None],
                        sizes=[(100, 150), None], texts={"k1": "BIG"}, truth=np.array([[1, 0, 0], [0, 0, 1]]),
                        attention=attention, token_words=lambda text: [None] + [0] * len(text.split()) + [None])
    assert cards[0].predicted == ["Action", "Drama"] and cards[0].truth == ["Action"]
    assert cards[0].attention["words"] == [("BIG", 0.6)]
    assert cards[1].error == "no poster file to show" and cards[1].text == ""
    page = render_page(cards, GENRES, title="t", rule="r")
    assert 'title="attention 0.600"' in page and "<svg class=\"heat\"" in page
    assert page.count("<rect ") == 4  # one cell per region of the first poster; the second has no image


def test_each_card_names_its_input_patterns_rule_and_thresholds():
    plot = _card("p", ["Action"], ["Action"], [0.9, 0.1, 0.2], rule="with_plot:per_genre",
                 thresholds={"Action": 0.3, "Comedy": 0.6, "Drama": 0.5})
    bare = _card("q", ["Comedy"], ["Comedy"], [0.2, 0.7, 0.2], rule="poster_only:per_genre_max2")
    page = render_page([plot, bare], GENRES, title="t", rule="r", thresholds=dict.fromkeys(GENRES, 0.45))
    card_p = page[page.index('data-key="p"'):page.index("</article>", page.index('data-key="p"'))]
    card_q = page[page.index('data-key="q"'):page.index("</article>", page.index('data-key="q"'))]
    assert "decided by:</span> with_plot:per_genre<" in card_p and 'title="threshold 0.30"' in card_p
    assert "decided by:</span> poster_only:per_genre_max2<" in card_q and 'title="threshold 0.45"' in card_q
