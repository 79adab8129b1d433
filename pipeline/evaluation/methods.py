"""Every method the papers compare, registered with its fusion overrides, label and tables.

A method is plain data: the ``fusion`` keys it sets (its head always), the label the report
prints and the paper's tables it appears in. The training options (loss, oversampling,
thresholds) come from params and apply to every method alike, so ``-S loss.name=bce`` re-runs
the whole comparison with BCE, except for the two other papers' systems, which are trained as
their papers say (``loss`` and ``train`` overrides: the visio-textual model with macro double
soft-F1 and oversampling, the MovieScope ensemble with positive-weighted BCE).

Film inputs (``fusion.plot`` / ``fusion.metadata``) are off for every method that does not set
them, so the poster-only rows stay poster only when ``data.films`` is set. The methods that read
a film's plot or metadata are Table V's rows; they need ``data.films``.

Everything else reads this one list: ``compare.methods`` (validated against it; by default every
method that reads the poster only), :data:`TABLES`, :data:`BASELINES` and the README.

Names say what a method is:

* ``ours``: the paper's model, the ``cross_attention`` head with MCAM and L=4 SMSAM blocks;
  ``ours-L1``: one SMSAM block; ``-no-smsam`` / ``-no-mcam``: without that module
  (``ours-no-mcam``, ``ours-L1-no-mcam``, ``ours-no-smsam``, ``ours-no-mcam-no-smsam``);
* every other method is named by its head (``concat``, ``sum``, ``gmu``, ``centralnet``,
  ``late``, ``linear``, ``naive``, ``image``, ``text``), plus its variant where a head has two
  (``late-random-init``).

Older comparisons named the paper's family after its head, ``mcam`` (``mcam``, ``mcam-L1``, ...,
``mcam-no-mcam``, which read as a contradiction). Those names are aliases: ``compare.methods``
refuses them with one line naming today's name, and an earlier comparison's run folders keep
their labels in a report.

Tables follow the paper: Table I compares bi-modal methods, Table II modalities, Table III the
module ablations of the paper's own model. A table's rows are the methods registered with it, in
registration order, with the paper's model last where it is compared with the others (I, II, as
the paper lays them out) and first in its own ablation table (III).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.registry import Registry


@dataclass(frozen=True)
class Method:
    label: str
    #: The ``fusion`` keys the method sets (``head`` always); the rest come from params.
    fusion: dict[str, Any] = field(default_factory=dict)
    #: The paper's tables it is a row of.
    tables: tuple[str, ...] = ()
    #: ``loss`` and ``train`` keys the method sets (its paper's training), over the params'.
    loss: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    #: A blend is not trained: its scores are the mean of these methods' sigmoid probabilities, run by run of the
    #: same seed (each member trained and early-stopped on its own); the report makes it where every member ran.
    blend: tuple[str, ...] = ()

    def training_refused(self, name: str) -> str | None:
        """Why ``name`` cannot be trained (a blend: the report makes it), or None."""
        if self.blend:
            return f"{name} is not trained: the report averages the runs of {', '.join(self.blend)} (list those)"
        return None


#: name -> :class:`Method`, in the order the report and the default ``compare.methods`` list them.
METHODS: Registry[Method] = Registry("compare.methods")


def method(name: str, label: str, *, tables: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
           loss: dict[str, Any] | None = None, train: dict[str, Any] | None = None, blend: tuple[str, ...] = (),
           **fusion: Any) -> None:
    """Register the method ``name``: its label, tables and ``fusion`` (``loss``, ``train``) overrides, or the
    methods it ``blend``s."""
    METHODS.add(name, Method(label, fusion, tables, loss or {}, train or {}, blend), aliases=aliases)


# the paper's model and its module ablations (Table III)
method("ours", "Ours (L=4)", head="cross_attention", layers=4, mcam=True, tables=("I", "II", "III", "V"),
       aliases=("mcam",))
method("ours-L1", "Ours (L=1)", head="cross_attention", layers=1, mcam=True, tables=("III",),
       aliases=("mcam-L1",))
method("ours-no-smsam", "Ours -SMSAM", head="cross_attention", layers=0, mcam=True, tables=("III",),
       aliases=("mcam-no-smsam",))
method("ours-no-mcam", "Ours (L=4) -MCAM", head="cross_attention", layers=4, mcam=False, tables=("III",),
       aliases=("mcam-no-mcam",))
method("ours-L1-no-mcam", "Ours (L=1) -MCAM", head="cross_attention", layers=1, mcam=False, tables=("III",),
       aliases=("mcam-L1-no-mcam",))
method("ours-no-mcam-no-smsam", "Ours -MCAM -SMSAM (token sequences, mean-pooled)", head="cross_attention",
       layers=0, mcam=False, tables=("III",), aliases=("mcam-no-mcam-no-smsam",))
# baselines on pooled embeddings (Table I; sum is also Table III's end point) and single modalities (Table II)
method("concat", "concat (image || text)", head="concat", tables=("I",))
method("sum", "sum (image + text; the paper's -MCAM -SMSAM)", head="sum", tables=("I", "III"))
method("gmu", "GMU", head="gmu", tables=("I",))
method("centralnet", "CentralNet", head="centralnet", tables=("I",))
method("late", "Late fusion (MovieScope ensemble)", head="late", late_init="mean", tables=("I",))
method("late-random-init", "Late fusion, random blend start (earlier row)", head="late", late_init="random",
       tables=("I",))
method("linear", "Linear probe", head="linear", tables=("I",))
method("naive", "Naive (k most frequent)", head="naive", tables=("I",))
method("text", "Text only", head="text", tables=("II",))
method("image", "Image only", head="image", tables=("II", "V"))
# films: a film's plot and metadata beside its poster (Table V; need data.films)
method("plot", "Plot only (visio-textual paper's text branch, frozen encoder)", head="plot", plot=True,
       tables=("V",))
method("metadata", "Metadata only", head="metadata", metadata=True, tables=("V",))
method("image-plot", "Poster image + plot (concatenated, the paper's loss)", head="visio_textual", plot=True,
       tables=("V",))
method("image-plot-dropout", "Poster image + plot, a quarter of training plots hidden", head="visio_textual",
       plot=True, train={"plot_dropout": 0.25}, tables=("V",))
method("visio-textual", "Visio-textual integrated model (image + plot, soft-F1, oversampling)",
       head="visio_textual", plot=True, loss={"name": "soft_f1"},
       # its soft-F1 validation loss wanders on a long plateau: patience 3 stopped two of three recorded runs
       # before their best epoch (results/product's replay), 10 kept all three
       train={"oversample": True, "patience": 10}, tables=("V",))
method("moviescope", "MovieScope ensemble (image, OCR text, plot, metadata; weighted BCE; no trailers)",
       head="late", late_init="mean", plot=True, metadata=True, loss={"name": "weighted_bce"}, tables=("V",))
method("ours-plot", "Ours + plot (a further text stream)", head="cross_attention", layers=4, mcam=True, plot=True,
       tables=("V",))
method("ours-films", "Ours + plot + metadata (every modality a film has)", head="cross_attention", layers=4,
       mcam=True, plot=True, metadata=True, tables=("V",))
# recipe against architecture: each of the two film systems' heads on the other's loss, so a gap between the
# MovieScope ensemble and the paper's head can be put on the head or on the loss (the pairs below)
method("late-films", "Late fusion of image, OCR text, plot, metadata on the paper's loss (MovieScope's head)",
       head="late", late_init="mean", plot=True, metadata=True, tables=("V",))
method("ours-films-wbce", "Ours + plot + metadata on weighted BCE (MovieScope's loss)", head="cross_attention",
       layers=4, mcam=True, plot=True, metadata=True, loss={"name": "weighted_bce"}, tables=("V",))
# the MovieScope paper as it trains: one network per modality, each early-stopped on its own, their sigmoid
# probabilities averaged (no OCR text: its poster network reads the artwork); made by the report, not trained
method("moviescope-separate", "MovieScope as its paper trains it (image, plot, metadata networks apart; "
       "probabilities averaged)", blend=("image", "plot", "metadata"), plot=True, metadata=True, tables=("V",))

#: The paper's own model: every other method is tested against it.
PAPER_HEAD = "ours"
#: The table of the paper's module ablations (its model first there).
ABLATION_TABLE = "III"
#: The films table (plot and metadata beside the poster): not the paper's; its rows in registration order.
FILMS_TABLE = "V"


def _rows(table: str) -> list[str]:
    rows = [m for m in METHODS if table in METHODS.get(m).tables]
    if table not in (ABLATION_TABLE, FILMS_TABLE) and PAPER_HEAD in rows:
        rows = [m for m in rows if m != PAPER_HEAD] + [PAPER_HEAD]
    return rows


#: The paper's tables I-III: table -> its rows (methods).
TABLES: dict[str, list[str]] = {t: _rows(t) for t in ("I", "II", "III", "V")}

TABLE_NOTES = {
    "III": (
        "Two end points of the ablation: in the paper, removing both MCAM and SMSAM leaves its CLIP "
        "linear-addition baseline (the same 64.81 in Tables I and III): pooled image + pooled text, added, FFN; "
        "here that is the `sum` row. `Ours -MCAM -SMSAM` keeps this project's token sequences instead "
        "(aligned image and text tokens concatenated, mean-pooled, FFN), so it isolates the two modules "
        "while keeping the sequence input."
    ),
}

#: Methods that are not the paper's own model or one of its ablations (another head): the "best
#: baseline" is chosen among these.
BASELINES: list[str] = [m for m in METHODS
                        if METHODS.get(m).fusion.get("head") != METHODS.get(PAPER_HEAD).fusion["head"]
                        and not (METHODS.get(m).fusion.get("plot") or METHODS.get(m).fusion.get("metadata"))]


ALL, WITH_PLOT, WITHOUT_PLOT = "all", "with_plot", "without_plot"
#: Table V's questions: the pairs the report tests (a - b), what each asks, and on which test films (all, those
#: with a plot, those without one: there a film model is asked against falling back to a poster-only model).
FILM_PAIRS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("image-plot", "plot", "what the poster image adds over the plot", (ALL, WITH_PLOT)),
    ("ours-plot", "plot", "what the poster (image and OCR text) adds over the plot", (ALL, WITH_PLOT)),
    ("ours-plot", "ours", "what the plot adds over the poster", (ALL, WITH_PLOT, WITHOUT_PLOT)),
    ("ours-films", "ours-plot", "what metadata adds over poster and plot", (ALL, WITH_PLOT)),
    ("ours-films", "ours", "every modality a film has against the poster only", (ALL, WITHOUT_PLOT)),
    ("visio-textual", "image-plot", "the visio-textual paper's training (soft-F1, oversampling), same head", (ALL,)),
    ("ours-films", "moviescope", "the paper's head against the MovieScope ensemble, same modalities", (ALL,)),
    ("image-plot-dropout", "image-plot", "hiding a quarter of the training plots", (ALL, WITHOUT_PLOT)),
    ("image-plot-dropout", "image", "a plot model without a plot against falling back to the image model",
     (WITHOUT_PLOT,)),
    ("ours-films", "late-films", "the paper's head against late fusion, same modalities, the paper's loss", (ALL,)),
    ("ours-films-wbce", "moviescope", "the paper's head against late fusion, same modalities, MovieScope's loss",
     (ALL,)),
    ("moviescope", "late-films", "MovieScope's loss against the paper's, same late-fusion head", (ALL,)),
    ("ours-films-wbce", "ours-films", "MovieScope's loss against the paper's, the paper's head", (ALL,)),
    ("moviescope-separate", "moviescope", "MovieScope's networks trained apart and averaged against one late-fusion "
     "head trained jointly", (ALL,)),
]


def method_fusion(name: str, fusion: dict[str, Any]) -> dict[str, Any]:
    """The fusion params of ``name``: the params' fusion group with the method's overrides (film inputs off
    unless the method reads them)."""
    if why := METHODS.get(name).training_refused(name):
        raise PipelineError(why)
    return {**fusion, "plot": False, "metadata": False, **METHODS.get(name).fusion}


def method_training(name: str, train: dict[str, Any], loss: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The train and loss params of ``name``: the params' groups with the method's overrides."""
    m = METHODS.get(name)
    return {**train, **m.train}, {**loss, **m.loss}


def reads_films(name: str) -> bool:
    """True when the method reads a film's plot or metadata (it needs data.films)."""
    fusion = METHODS.get(name).fusion
    return bool(fusion.get("plot") or fusion.get("metadata"))


def method_label(name: str) -> str:
    """The label the report prints for ``name`` (an earlier name: its method's; an unknown one: itself)."""
    return METHODS.get(name).label if METHODS.canonical(name) in METHODS else name
