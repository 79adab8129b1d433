import h5py
import numpy as np
import open_clip
import pytest
import torch

from pipeline.core.params import EncoderParams
from pipeline.data.images import load_rgb
from pipeline.data.ingest import ingest_folder
from pipeline.features.encoders import EncoderError, create_image_encoder, create_text_encoder
from pipeline.features.encoders.base import to_tensor
from pipeline.features.store import embed_images, embed_texts, load_features, write_features
from tests.conftest import ASSETS

TINY = str(ASSETS / "tiny-clip-test.json")


@pytest.fixture(scope="module")
def posters(posters_dir):
    table, _ = ingest_folder(posters_dir, ["Action", "Comedy", "Drama", "Horror"], limit=3)
    return table


def test_offline_encoders_real_weights(posters):
    params = EncoderParams(name="offline", device="cpu", text_max_tokens=16)
    img = create_image_encoder(params)
    out = img.encode([load_rgb(p) for p in posters["path"][:2]])
    assert out["tokens"].shape == (2, 49, 1280) and out["pooled"].shape == (2, 1280)
    np.testing.assert_allclose(out["pooled"], out["tokens"].mean(1), rtol=1e-5, atol=1e-5)
    txt = create_text_encoder(params)
    t = txt.encode(["THE TERMINATOR", ""])
    assert t["tokens"].shape == (2, 16, 384) and t["mask"][0].sum() > t["mask"][1].sum() >= 1
    np.testing.assert_allclose(np.linalg.norm(t["pooled"], axis=1), 1.0, rtol=1e-5)
    # pretrained weights give meaningful text similarity: a paraphrase is closer than an unrelated text
    texts = ["a terrifying horror movie", "a scary horror film", "a romantic comedy about a wedding"]
    a, b, c = txt.encode(texts)["pooled"]
    assert a @ b > a @ c
    assert img.identity["weights_sha256"] and txt.identity["weights_sha256"]


def test_offline_image_runtimes_agree_and_onnxruntime_is_byte_stable(posters):
    images = [load_rgb(p) for p in posters["path"]]
    ort_enc = create_image_encoder(EncoderParams(name="offline", offline_image_runtime="onnxruntime"))
    torch_enc = create_image_encoder(EncoderParams(name="offline", offline_image_runtime="pytorch"))
    # different runtimes, different cache folders; PyTorch's identity is the one from before the choice
    assert ort_enc.identity != torch_enc.identity and ort_enc.identity["runtime"] == "onnxruntime"
    assert list(torch_enc.identity) == ["encoder", "modality", "model", "weights_sha256", "preprocess", "tokens",
                                        "precision"]
    ort_out, torch_out = ort_enc.encode(images), torch_enc.encode(images)
    np.testing.assert_allclose(ort_out["tokens"], torch_out["tokens"], atol=2e-4)  # the same network
    threads = torch.get_num_threads()
    try:  # the same bytes again, and with one thread (an actor or a worker with another thread count)
        assert ort_enc.encode(images)["tokens"].tobytes() == ort_out["tokens"].tobytes()
        torch.set_num_threads(1)
        one = create_image_encoder(EncoderParams(name="offline")).encode(images)
        assert one["tokens"].tobytes() == ort_out["tokens"].tobytes()
    finally:
        torch.set_num_threads(threads)


def test_clip_tiny_random_weights_tokens(posters, allow_random_clip):
    params = EncoderParams(name="clip", model=TINY, pretrained="random", device="cpu", text_max_tokens=20)
    img = create_image_encoder(params)
    out = img.encode([load_rgb(p) for p in posters["path"][:2]])
    # class token + 16 patches, all projected to the 32-d joint space; token 0 is the image embedding f_v
    assert out["tokens"].shape == (2, 17, 32) and out["pooled"].shape == (2, 32)
    np.testing.assert_array_equal(out["tokens"][:, 0], out["pooled"])  # one product, not two (fp16 too)
    assert img.identity["pretrained"] == "random" and img.identity["image_tokens"] == "projected"
    # the pooled embedding is OpenCLIP's own image embedding (same seeded random weights)
    torch.manual_seed(0)
    fresh = open_clip.create_model("tiny-clip-test", pretrained=None).eval()
    x = torch.stack([to_tensor(load_rgb(p), img.size, img.mean, img.std, img.fit) for p in posters["path"][:2]])
    np.testing.assert_allclose(fresh.encode_image(x).detach().numpy(), out["pooled"], rtol=1e-4, atol=1e-5)
    unprojected = create_image_encoder(params.model_copy(update={"image_tokens": "unprojected"}))
    u = unprojected.encode([load_rgb(p) for p in posters["path"][:2]])
    assert u["tokens"].shape == (2, 17, 64)  # ViT width, class token first
    np.testing.assert_allclose(u["tokens"][:, 0] @ unprojected.proj.numpy(), out["pooled"], rtol=1e-4, atol=1e-5)
    assert unprojected.identity != img.identity
    txt = create_text_encoder(params)
    t = txt.encode(["HEAT AND DUST julie christie", "x"])
    assert t["tokens"].shape == (2, 20, 32) and t["pooled"].shape == (2, 32)
    assert t["mask"][0].sum() > t["mask"][1].sum() == 3  # <start> x <end>
    # token positions -> words (the review page's highlights): one per real token position, ends excluded
    long = " ".join(["vengeance"] * 40)  # more tokens than text_max_tokens 20, fewer than the context 77
    for text, row in (("HEAT AND DUST julie christie", 0), ("x", 1), (long, None)):
        positions = txt.token_words(text)
        mask = t["mask"][row] if row is not None else txt.encode([long])["mask"][0]
        assert len(positions) == int(mask.sum()) and positions[0] is None
        assert (positions[-1] is None) == (row is not None)  # a text cut at 20 positions has no end token there
    assert txt.token_words("x") == [None, 0, None]


def test_clip_refuses_random_weights_outside_tests(monkeypatch):
    monkeypatch.delenv("POSTER_GENRES_ALLOW_RANDOM_WEIGHTS", raising=False)
    with pytest.raises(EncoderError, match="encoder.name=offline"):
        create_image_encoder(EncoderParams(name="clip", model=TINY, pretrained="random", device="cpu"))


def test_clip_missing_checkpoint_and_bad_model():
    with pytest.raises(EncoderError, match="not found"):
        create_image_encoder(EncoderParams(name="clip", model=TINY, pretrained="/nowhere/ckpt.pt", device="cpu"))
    with pytest.raises(EncoderError, match="not an OpenCLIP model"):
        create_image_encoder(EncoderParams(name="clip", model="ViT-Nope", device="cpu"))


def test_clip_local_checkpoint_loads(tmp_path, allow_random_clip):
    import open_clip
    import torch

    open_clip.add_model_config(ASSETS / "tiny-clip-test.json")
    torch.manual_seed(1)
    model = open_clip.create_model("tiny-clip-test")
    torch.save(model.state_dict(), tmp_path / "ckpt.pt")
    params = EncoderParams(name="clip", model=TINY, pretrained=str(tmp_path / "ckpt.pt"), device="cpu")
    enc = create_image_encoder(params)
    assert enc.identity["pretrained"] == "file" and len(enc.identity["sha256"]) == 64


def test_feature_files_are_byte_identical_and_cached(posters, tmp_path, monkeypatch, allow_random_clip):
    monkeypatch.setenv("POSTER_GENRES_CACHE", str(tmp_path / "cache"))  # empty: the first run computes all
    params = EncoderParams(name="clip", model=TINY, pretrained="random", device="cpu", batch_size=2)
    enc = create_image_encoder(params)
    keys, arrays, rep = embed_images(posters, enc, params.batch_size)
    assert (rep["posters"], rep["computed"], rep["from_cache"], rep["failed"]) == (3, 3, 0, [])
    write_features(tmp_path / "a.h5", tmp_path / "a.parquet", keys, arrays, enc.identity)
    keys2, arrays2, rep2 = embed_images(posters, create_image_encoder(params), params.batch_size)
    assert (rep2["posters"], rep2["computed"], rep2["from_cache"], rep2["failed"]) == (3, 0, 3, [])
    assert keys2 == keys == sorted(posters["sha256"])
    write_features(tmp_path / "b.h5", tmp_path / "b.parquet", keys2, arrays2, enc.identity)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    fs = load_features(tmp_path / "a.h5", tmp_path / "a.parquet")
    assert fs.arrays["tokens"].dtype == np.float16 and fs.identity == enc.identity
    with h5py.File(tmp_path / "a.h5") as f:
        assert "identity" in f.attrs


def test_text_features_keyed_by_text(allow_random_clip):
    import polars as pl

    params = EncoderParams(name="clip", model=TINY, pretrained="random", device="cpu")
    enc = create_text_encoder(params)
    texts = pl.DataFrame({"key": ["p1", "p2", "p3"], "text": ["SAME TITLE", "SAME TITLE", ""]})
    keys, arrays, rep = embed_texts(texts, enc, 8)
    assert rep["unique_texts"] == 2 and keys == ["p1", "p2", "p3"]
    np.testing.assert_array_equal(arrays["tokens"][0], arrays["tokens"][1])
    assert arrays["has_text"].tolist() == [True, True, False]
