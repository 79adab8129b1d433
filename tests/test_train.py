import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.features import FeatureSet
from pipeline.params import FusionParams, LossParams, TrainParams
from pipeline.train import build_datasets, feature_dims, load_head, predict_scores, save_checkpoint, train_head

GENRES = ["A", "B", "C"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 60
    keys = [f"k{i:03d}" for i in range(n)]
    labels = ["|".join(g for g, p in zip(GENRES, (0.6, 0.4, 0.15)) if rng.random() < p) or "A" for _ in range(n)]
    y = np.array([[g in s.split("|") for g in GENRES] for s in labels], dtype=np.float32)
    image_tokens = rng.normal(size=(n, 4, 8)).astype(np.float16) + y[:, None, :].repeat(3, 2)[:, :, :8].astype(np.float16)
    image = FeatureSet(keys, {"tokens": image_tokens, "pooled": image_tokens.mean(1)}, {"x": 1}, None)
    mask = np.zeros((n, 5), dtype=bool)
    mask[:, :3] = True
    text_tokens = rng.normal(size=(n, 5, 6)).astype(np.float16)
    text = FeatureSet(keys, {"tokens": text_tokens, "pooled": text_tokens.mean(1), "mask": mask,
                             "has_text": np.arange(n) % 5 != 0}, {"y": 1}, None)
    posters = pd.DataFrame({"imdb_id": [f"tt{i:07d}" for i in range(n)], "sha256": keys, "labels": labels})
    split = pd.DataFrame({"imdb_id": posters["imdb_id"], "split": ["train"] * 40 + ["val"] * 10 + ["test"] * 10})
    datasets, info = build_datasets(posters, split, image, text, GENRES)
    return datasets, feature_dims(image, text), info


@pytest.mark.parametrize("loss,head,oversample", [
    ("asymmetric", "mcam", False), ("bce", "concat", True), ("weighted_bce", "gmu", False),
    ("soft_f1", "late", True), ("asymmetric", "naive", False),
])
def test_train_variants_run_and_checkpoint_roundtrips(data, tmp_path, loss, head, oversample):
    datasets, dims, info = data
    assert info["train_posters"] == 40 and info["posters_without_features"] == 0
    ckpt, curve, summary = train_head(datasets, dims, GENRES, FusionParams(head=head, dim=16, heads=4),
                                      TrainParams(epochs=3, patience=2, oversample=oversample), LossParams(name=loss))
    assert all(np.isfinite(r["val_loss"]) for r in curve)
    save_checkpoint(ckpt, tmp_path / "m.pt")
    model, meta = load_head(tmp_path / "m.pt")
    s = predict_scores(model, datasets["test"], torch.device("cpu"))
    assert s.shape == (10, 3) and np.all((s >= 0) & (s <= 1))
    assert meta["head_config"]["head"] == head


def test_training_is_deterministic(data, tmp_path):
    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4), TrainParams(epochs=2), LossParams())
    a, ca, _ = train_head(*args)
    b, cb, _ = train_head(*args)
    assert ca == cb
    save_checkpoint(a, tmp_path / "a.pt")
    save_checkpoint(b, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
