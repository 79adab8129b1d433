import numpy as np
import polars as pl
import pytest
import torch

from pipeline.core.params import FusionParams, LossParams, TrainParams
from pipeline.features.store import FeatureSet
from pipeline.models.checkpoint import load_head, save_checkpoint
from pipeline.models.datasets import Dataset, StoredTensor, build_datasets, feature_dims, predict_scores
from pipeline.models.early_stopping import min_delta_table, replay_early_stopping
from pipeline.models.heads import create_head, head_config
from pipeline.models.train import attach_decisions, epoch_batches, train_head
from pipeline.scoring.thresholds import DecisionRule

GENRES = ["A", "B", "C"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 60
    keys = [f"k{i:03d}" for i in range(n)]
    labels = ["|".join(g for g, p in zip(GENRES, (0.6, 0.4, 0.15)) if rng.random() < p) or "A" for _ in range(n)]
    y = np.array([[g in s.split("|") for g in GENRES] for s in labels], dtype=np.float32)
    signal = y[:, None, :].repeat(3, 2)[:, :, :8].astype(np.float16)
    image_tokens = rng.normal(size=(n, 4, 8)).astype(np.float16) + signal
    image = FeatureSet(keys, {"tokens": image_tokens, "pooled": image_tokens.mean(1)}, {"x": 1}, None)
    mask = np.zeros((n, 5), dtype=bool)
    mask[:, :3] = True
    text_tokens = rng.normal(size=(n, 5, 6)).astype(np.float16)
    text = FeatureSet(keys, {"tokens": text_tokens, "pooled": text_tokens.mean(1), "mask": mask,
                             "has_text": np.arange(n) % 5 != 0}, {"y": 1}, None)
    posters = pl.DataFrame({"imdb_id": [f"tt{i:07d}" for i in range(n)], "sha256": keys, "labels": labels})
    split = pl.DataFrame({"imdb_id": posters["imdb_id"], "split": ["train"] * 40 + ["val"] * 10 + ["test"] * 10})
    datasets, info = build_datasets(posters, split, image, text, GENRES)
    return datasets, feature_dims(image, text), info


@pytest.mark.parametrize("loss,head,oversample", [
    ("asymmetric", "cross_attention", False), ("bce", "concat", True), ("weighted_bce", "gmu", False),
    ("soft_f1", "late", True), ("asymmetric", "naive", False),
])
def test_train_variants_run_and_checkpoint_roundtrips(data, tmp_path, loss, head, oversample):
    datasets, dims, info = data
    assert info["train_posters"] == 40 and info["posters_without_features"] == 0
    seen = []
    result = train_head(datasets, dims, GENRES, FusionParams(head=head, dim=16, heads=4),
                        TrainParams(epochs=3, patience=2, oversample=oversample), LossParams(name=loss),
                        on_epoch=lambda record, model, scores: seen.append(record))
    assert all(np.isfinite(r.val_loss) for r in result.curve)
    assert seen == result.curve  # the hook saw every epoch, as it ended
    assert result.summary.epochs_run == sum(r.epoch > 0 for r in result.curve)  # naive: one record, epoch 0
    assert "seconds" not in result.summary.reproducible()
    save_checkpoint(result.checkpoint, tmp_path / "m.pt")
    model, meta = load_head(tmp_path / "m.pt")
    s = predict_scores(model, datasets["test"], torch.device("cpu"))
    assert s.shape == (10, 3) and np.all((s >= 0) & (s <= 1))
    assert meta["head_config"]["head"] == head


def test_training_is_deterministic(data, tmp_path):
    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4), TrainParams(epochs=2), LossParams())
    ra, rb = train_head(*args), train_head(*args)
    a, ca, b, cb = ra.checkpoint, ra.curve, rb.checkpoint, rb.curve
    assert ca == cb
    assert attach_decisions(a, datasets["val"]) == attach_decisions(b, datasets["val"])
    save_checkpoint(a, tmp_path / "a.pt")
    save_checkpoint(b, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_a_smaller_patience_replayed_on_a_recorded_curve_is_what_training_with_it_gives(data, tmp_path):
    """replay_early_stopping reads a curve recorded with a large patience; training with the smaller patience
    stops where it says, and where the best epoch is the recorded one the checkpoint is the same bytes."""
    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4))
    full = train_head(*args, TrainParams(epochs=12, patience=12, lr=3e-3), LossParams())
    losses = [e.val_loss for e in full.curve]
    assert replay_early_stopping(losses, 12) == (full.summary.best_epoch, full.summary.epochs_run)
    checked = 0
    for patience in (1, 2, 3):
        best, run = replay_early_stopping(losses, patience)
        short = train_head(*args, TrainParams(epochs=12, patience=patience, lr=3e-3), LossParams())
        assert (short.summary.best_epoch, short.summary.epochs_run) == (best, run)
        assert [e.val_loss for e in short.curve] == losses[:run]
        if best == full.summary.best_epoch:
            save_checkpoint(full.checkpoint, tmp_path / "full.pt")
            save_checkpoint(short.checkpoint, tmp_path / "short.pt")
            assert (tmp_path / "full.pt").read_bytes() == (tmp_path / "short.pt").read_bytes()
            checked += 1
    assert checked, losses  # at least one smaller patience keeps the best epoch on this curve
    assert replay_early_stopping([3.0, 2.0, 2.5, 2.4, 1.0], 2) == (2, 4)  # stops before the later, lower loss
    assert replay_early_stopping([3.0, 2.0, 2.5, 2.4, 1.0], 3) == (5, 5)



def test_a_minimum_improvement_ignores_small_late_gains_and_so_moves_the_best_epoch():
    """A late loss lower by under min_delta of the best is not a new best: the run stops sooner, from an earlier
    best epoch; the table counts such runs as changed."""
    curve = [1.0, 0.9, 0.8995, 0.95, 0.96, 0.97]
    assert replay_early_stopping(curve, 3) == (3, 6)
    assert replay_early_stopping(curve, 3, min_delta=0.01) == (2, 5)
    flat = [1.0, 0.5, 0.6, 0.7, 0.8]  # its one improvement is large: any min_delta here keeps it
    rows = min_delta_table([("a", curve), ("b", flat)], patience=3, min_deltas=(0.0, 0.01))
    assert [(r["min_delta"], r["kept"], r["runs"], r["epochs"], r["moved"]) for r in rows] == [
        (0.0, 2, 2, 11, []), (0.01, 1, 2, 10, ["a"])]


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


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A tiny trained head whose checkpoint carries its decision rule, as the train stage saves it."""
    datasets, dims, _ = data
    fusion = FusionParams(dim=16, heads=4)
    ckpt = train_head(datasets, dims, GENRES, fusion, TrainParams(epochs=2), LossParams()).checkpoint
    ckpt["features"] = {"image": {"x": 1}, "text": {"y": 1}}  # the identities of the data fixture
    summary = attach_decisions(ckpt, datasets["val"], "f1_samples", 0.5, "none")["poster_only"]
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(ckpt, path)
    return path, ckpt, summary


def test_checkpoint_carries_the_decision_rule_chosen_on_validation(data, trained):
    from pipeline.scoring.thresholds import choose_rule

    datasets, _, _ = data
    path, ckpt, summary = trained
    model, meta = load_head(path)
    assert list(meta["decisions"]) == ["poster_only"]  # a poster-only head: one decision, for every film
    saved = meta["decisions"]["poster_only"]
    rule = DecisionRule.from_dict(saved["rule"])
    # the rule is the one choose_rule picks from the best checkpoint's validation scores
    val = datasets["val"]
    expected, report = choose_rule(val.labels.numpy(), predict_scores(model, val, "cpu"), GENRES)
    assert rule == expected and rule.genres == GENRES
    assert {k: v for k, v in saved["validation"].items() if k != "calibration"} == report
    assert saved["calibration"] is None and saved["validation"]["calibration"]["chosen"] == "none"
    assert report["paper"]["name"] == "global@0.5"
    assert summary.name == rule.name and summary.max_genres == rule.max_genres
    assert summary.metric == "f1_samples" and summary.validation_score == report["chosen"]["f1_samples"]
    assert summary.genres_per_poster_true == report["genres_per_poster_true"]


def _stub_feature_pipeline(monkeypatch, datasets, posters):
    """predict's OCR and encoders replaced by the data fixture's features of the first test posters."""
    from types import SimpleNamespace

    import pipeline.models.predict as pp
    from pipeline.data.images import read_poster

    keys = [read_poster(p)[1].sha256 for p in posters]
    t = {k: v[: len(keys)].numpy() for k, v in datasets["test"].tensors.items()}
    image = {"tokens": t["image_tokens"], "pooled": t["image_pooled"]}
    text = {"tokens": t["text_tokens"], "mask": t["text_mask"], "pooled": t["text_pooled"], "has_text": t["has_text"]}
    monkeypatch.setattr(pp, "create_image_encoder", lambda enc: SimpleNamespace(identity={"x": 1}))
    monkeypatch.setattr(pp, "create_text_encoder", lambda enc: SimpleNamespace(identity={"y": 1}))
    monkeypatch.setattr(pp, "run_ocr", lambda posters, ocr, ray=None: (None, {"failed": []}))
    monkeypatch.setattr(pp, "ocr_texts", lambda table, params: None)
    monkeypatch.setattr(pp, "embed_texts", lambda texts, enc, bs, ray=None: (keys, text, {}))
    monkeypatch.setattr(pp, "embed_images", lambda rows, enc, bs, ray=None: (keys, image, {"failed": []}))


def test_predict_uses_the_checkpoints_rule_unless_a_threshold_is_given(data, trained, tmp_path, monkeypatch):
    from PIL import Image

    from pipeline.core.params import EncoderParams, OcrParams
    from pipeline.models.predict import predict

    datasets, _, _ = data
    _, ckpt, _ = trained
    posters = []
    for i in range(4):
        posters.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (96, 64, 3), dtype=np.uint8)).save(posters[-1])
    _stub_feature_pipeline(monkeypatch, datasets, posters)
    # a rule no threshold reproduces: every genre is above 0, one genre a poster, the top-scoring one
    top1 = DecisionRule.per_genre(GENRES, [0.0] * 3, max_genres=1)
    model = tmp_path / "model.pt"
    save_checkpoint({**ckpt, "decisions": {"poster_only": {"pattern": "poster_only", "calibration": None,
                                                           "rule": top1.to_dict(), "validation": None}}}, model)
    args = (posters, model, OcrParams(), EncoderParams())

    notes: list[str] = []
    out, errors = predict(*args, notes=notes)
    assert errors == [] and len(out) == 4
    for r in out:
        assert r.rule == "per_genre_max1" and r.genres == [max(r.probabilities, key=r.probabilities.get)]
    assert notes == ["poster_only: rule: threshold 0 for every genre, at most 1 genre [calibration none]"]

    notes = []
    paper, _ = predict(*args, threshold=0.5, notes=notes)
    for r in paper:
        assert r.rule == "global@0.5" and r.genres == [g for g, p in r.probabilities.items() if p > 0.5]
    assert notes == ["rule: threshold 0.5 for every genre, no cap (the paper's rule)"]
    assert [r.probabilities for r in paper] == [r.probabilities for r in out]

    # the train stage's own checkpoint: its rule, named with its figure on validation
    save_checkpoint(ckpt, model)
    notes = []
    chosen, _ = predict(*args, notes=notes)
    rule = DecisionRule.from_dict(ckpt["decisions"]["poster_only"]["rule"])
    assert all(r.rule == rule.name and r.pattern == "poster_only" for r in chosen)
    scores = np.array([list(r.probabilities.values()) for r in chosen])
    assert [r.genres for r in chosen] == [[g for g, keep in zip(GENRES, row) if keep] for row in rule.apply(scores)]
    score = ckpt["decisions"]["poster_only"]["validation"]["chosen"]["f1_samples"]
    assert len(notes) == 1 and notes[0].startswith(f"poster_only: rule: {rule.describe()}")
    assert notes[0].endswith(f"[calibration none, f1_samples {score:.2f} on validation]")

    # a checkpoint from before decision rules: eval.threshold for every genre, and a note saying so
    old = {k: v for k, v in ckpt.items() if k != "decisions"}
    save_checkpoint(old, model)
    notes = []
    fallback, _ = predict(*args, fallback_threshold=0.3, notes=notes)
    assert all(r.rule == "global@0.3" and r.genres == [g for g, p in r.probabilities.items() if p > 0.3]
               for r in fallback)
    assert notes[0].startswith("note: the checkpoint has no decision rule")
    assert notes[1] == ("poster_only: rule: threshold 0.3 for every genre, no cap (one threshold for every genre, as "
                        "the paper's rule, at another value) [calibration none]")

    # a checkpoint of one rule (before input patterns): that rule and its calibration for every film
    single = {**old, "decision_rule": top1.to_dict(), "calibration": None}
    save_checkpoint(single, model)
    again, _ = predict(*args)
    assert [r.genres for r in again] == [r.genres for r in out]


def test_dvclive_logs_every_epoch_and_changes_nothing(data, tmp_path):
    """The DVCLive hook writes one row per epoch for each metric, and the model is the one trained without it."""
    from pipeline.evaluation.live import EpochLogger, open_live

    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4), TrainParams(epochs=3, patience=5), LossParams())
    plain = train_head(*args)
    with open_live(tmp_path / "live") as live:
        logged = train_head(*args, on_epoch=EpochLogger(live, datasets["val"]))
    save_checkpoint(plain.checkpoint, tmp_path / "a.pt")
    save_checkpoint(logged.checkpoint, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    for name in ("train/loss", "val/loss", "val/f1_macro", "val/average_precision_macro"):
        rows = (tmp_path / "live" / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()
        assert [int(r.split("\t")[0]) for r in rows[1:]] == [1, 2, 3]
    val_losses = [float(r.split("\t")[1]) for r in
                  (tmp_path / "live" / "plots" / "metrics" / "val" / "loss.tsv").read_text().splitlines()[1:]]
    assert val_losses == [r.val_loss for r in logged.curve]


@pytest.mark.parametrize(("head", "tokens", "grouped"), [
    ("cross_attention", "sequence", True), ("cross_attention", "pooled", False), ("concat", "sequence", False),
    ("late", "sequence", False), ("image", "sequence", False),
])
def test_only_heads_reading_text_tokens_group_batches_by_text_length(data, monkeypatch, head, tokens, grouped):
    """group_by_length changes which posters share a batch: only where a head reads text token sequences."""
    import pipeline.models.train as tr

    datasets, dims, _ = data
    seen = []
    real = tr.epoch_batches

    def spy(n, batch_size, generator, weights=None, lengths=None, **kw):
        seen.append(lengths is not None)
        return real(n, batch_size, generator, weights, lengths, **kw)

    monkeypatch.setattr(tr, "epoch_batches", spy)
    train_head(datasets, dims, GENRES, FusionParams(head=head, tokens=tokens, dim=16, heads=4),
               TrainParams(epochs=1, group_by_length=True), LossParams())
    assert seen == [grouped]
    if not grouped:  # the same run with grouping off: the same checkpoint, byte for byte
        seen.clear()
        a = train_head(datasets, dims, GENRES, FusionParams(head=head, tokens=tokens, dim=16, heads=4),
                       TrainParams(epochs=1, group_by_length=True), LossParams()).checkpoint
        b = train_head(datasets, dims, GENRES, FusionParams(head=head, tokens=tokens, dim=16, heads=4),
                       TrainParams(epochs=1, group_by_length=False), LossParams()).checkpoint
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_token_arrays_read_per_batch_from_the_store_train_the_same_bytes_as_in_memory(data, tmp_path):
    """The feature file's token arrays stay on disk and are read per batch (any order, repeats): the values,
    the batches and so the trained checkpoint are those of the arrays held in memory."""
    from pipeline.features.store import StoredArray, load_features, write_features

    datasets, dims, _ = data
    train = datasets["train"]
    tokens = train.tensors["image_tokens"].numpy()
    keys = [f"r{i}" for i in range(len(tokens))]
    write_features(tmp_path / "t.h5", tmp_path / "t.parquet", keys,
                   {"tokens": tokens, "pooled": tokens.mean(1)}, {"x": 1})
    stored = load_features(tmp_path / "t.h5", tmp_path / "t.parquet")
    assert isinstance(stored.arrays["tokens"], StoredArray) and isinstance(stored.arrays["pooled"], np.ndarray)
    idx = np.array([7, 3, 3, 39, 0])
    np.testing.assert_array_equal(stored.arrays["tokens"][idx], tokens[idx])
    np.testing.assert_array_equal(stored.arrays["tokens"].take(idx[::-1])[np.array([0, 4])], tokens[[0, 7]])
    assert stored.arrays["tokens"][np.array([], dtype=np.int64)].shape == (0, *tokens.shape[1:])
    assert not isinstance(load_features(tmp_path / "t.h5", tmp_path / "t.parquet", in_memory=True)
                          .arrays["tokens"], StoredArray)

    # the same datasets with every token array read from a store: the same checkpoint, byte for byte
    def streamed(data_set):
        out = {}
        for name, tensor in data_set.tensors.items():
            if tensor.dim() == 3:
                path = tmp_path / f"{name}-{len(data_set)}-{id(data_set)}"
                write_features(path.with_suffix(".h5"), path.with_suffix(".parquet"), data_set.keys,
                               {"tokens": tensor.numpy()}, {"x": 1})
                array = load_features(path.with_suffix(".h5"), path.with_suffix(".parquet")).arrays["tokens"]
                out[name] = StoredTensor(array)
            else:
                out[name] = tensor
        return Dataset(data_set.keys, data_set.imdb_ids, out, data_set.labels)

    args = (dims, GENRES, FusionParams(dim=16, heads=4), TrainParams(epochs=2), LossParams())
    in_memory = train_head(datasets, *args)
    from_store = train_head({k: streamed(v) for k, v in datasets.items()}, *args)
    assert isinstance(streamed(train).tensors["image_tokens"], StoredTensor)
    save_checkpoint(in_memory.checkpoint, tmp_path / "a.pt")
    save_checkpoint(from_store.checkpoint, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert in_memory.curve == from_store.curve


def test_bfloat16_training_steps_are_deterministic_and_near_float32(data, tmp_path):
    """train.precision bfloat16 autocasts the training steps only: run to run the same bytes, a different model
    from float32's, validation loss of the same order; the weights stay float32."""
    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4))
    f32 = train_head(*args, TrainParams(epochs=3), LossParams())
    a = train_head(*args, TrainParams(epochs=3, precision="bfloat16"), LossParams())
    b = train_head(*args, TrainParams(epochs=3, precision="bfloat16"), LossParams())
    for name, result in (("a", a), ("b", b), ("f32", f32)):
        save_checkpoint(result.checkpoint, tmp_path / f"{name}.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert (tmp_path / "a.pt").read_bytes() != (tmp_path / "f32.pt").read_bytes()
    assert all(v.dtype == torch.float32 for v in a.checkpoint["state_dict"].values() if v.is_floating_point())
    assert abs(a.curve[-1].val_loss - f32.curve[-1].val_loss) < 0.2 * f32.curve[-1].val_loss


@pytest.mark.slow  # inductor compiles C++ for the head (about 45 s on two cores)
def test_compiled_training_steps_train_the_same_model_within_rounding(data):
    datasets, dims, _ = data
    args = (datasets, dims, GENRES, FusionParams(dim=16, heads=4))
    eager = train_head(*args, TrainParams(epochs=2), LossParams())
    compiled = train_head(*args, TrainParams(epochs=2, compile=True), LossParams())
    assert list(compiled.checkpoint["state_dict"]) == list(eager.checkpoint["state_dict"])  # no _orig_mod. keys
    for name, weights in eager.checkpoint["state_dict"].items():
        torch.testing.assert_close(compiled.checkpoint["state_dict"][name], weights, atol=1e-2, rtol=0)
    assert abs(compiled.curve[-1].val_loss - eager.curve[-1].val_loss) < 1e-3
