import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.features import FeatureSet
from pipeline.params import FusionParams, LossParams, TrainParams
from pipeline.heads import create_head, head_config
from pipeline.train import (Dataset, build_datasets, epoch_batches, feature_dims, load_head, predict_scores,
                            save_checkpoint, train_head)

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


def test_epoch_batches_cover_every_poster_once_and_group_lengths():
    lengths = torch.from_numpy(np.random.default_rng(0).integers(1, 78, size=1000))
    plain = epoch_batches(1000, 32, torch.Generator().manual_seed(1))
    grouped = epoch_batches(1000, 32, torch.Generator().manual_seed(1), lengths=lengths, pool_batches=10)
    for batches in (plain, grouped):
        assert sorted(torch.cat(batches).tolist()) == list(range(1000))
        assert max(len(b) for b in batches) == 32
    padding = {name: float(np.mean([(lengths[b].max() - lengths[b].float().mean()).item() for b in batches]))
               for name, batches in (("plain", plain), ("grouped", grouped))}
    assert padding["grouped"] < padding["plain"] / 4  # the point of grouping: little padding per batch
    # the batch order is shuffled, not longest-first over the epoch
    first_max = [int(lengths[b].max()) for b in grouped[:10]]
    assert first_max != sorted(first_max, reverse=True)
    again = epoch_batches(1000, 32, torch.Generator().manual_seed(1), lengths=lengths, pool_batches=10)
    assert all(torch.equal(a, b) for a, b in zip(grouped, again))


def test_predict_scores_keep_poster_order_with_length_sorted_batches():
    rng = np.random.default_rng(0)
    n, t = 23, 7
    lengths = rng.integers(1, t + 1, size=n)
    mask = torch.from_numpy(np.arange(t)[None, :] < lengths[:, None])
    tensors = {"image_tokens": torch.randn(n, 4, 8), "image_pooled": torch.randn(n, 8),
               "text_tokens": torch.randn(n, t, 6), "text_mask": mask, "text_pooled": torch.randn(n, 6),
               "has_text": torch.ones(n, dtype=torch.bool)}
    data = Dataset([f"k{i}" for i in range(n)], [f"tt{i}" for i in range(n)], tensors, torch.zeros(n, 3))
    dims = {"image_token_dim": 8, "image_pooled_dim": 8, "text_token_dim": 6, "text_pooled_dim": 6}
    torch.manual_seed(0)
    model = create_head(head_config(FusionParams(dim=16, heads=4, layers=1), dims, 3)).eval()
    batched = predict_scores(model, data, torch.device("cpu"), batch_size=5)
    one_by_one = np.concatenate([predict_scores(model, Dataset([data.keys[i]], [data.imdb_ids[i]],
                                 {k: v[i:i + 1] for k, v in tensors.items()}, data.labels[i:i + 1]),
                                 torch.device("cpu")) for i in range(n)])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
