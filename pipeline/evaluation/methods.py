"""Every method the papers compare, registered with its fusion overrides, label and tables.

A method is plain data: the ``fusion`` keys it sets (its head always), the label the report
prints and the paper's tables it appears in. The training options (loss, oversampling,
thresholds) come from params and apply to every method alike, so ``-S loss.name=bce`` re-runs
the whole comparison with BCE. Everything else reads this one list: ``compare.methods``
(validated against it, all of it by default), :data:`TABLES`, :data:`BASELINES` and the README.

Names say what a method is:

* ``ours``: the paper's model, the ``cross_attention`` head with MCAM and L=4 SMSAM blocks;
  ``ours-L1``: one SMSAM block; ``-no-smsam`` / ``-no-mcam``: without that module
  (``ours-no-mcam``, ``ours-L1-no-mcam``, ``ours-no-smsam``, ``ours-no-mcam-no-smsam``);
* every other method is named by its head (``concat``, ``sum``, ``gmu``, ``centralnet``,
  ``late``, ``linear``, ``naive``, ``image``, ``text``), plus its variant where a head has two
  (``late-random-init``).

Before issue 10 the paper's family was named after its head, ``mcam`` (``mcam``, ``mcam-L1``, ...,
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

from pipeline.core.registry import Registry


@dataclass(frozen=True)
class Method:
    label: str
    #: The ``fusion`` keys the method sets (``head`` always); the rest come from params.
    fusion: dict[str, Any] = field(default_factory=dict)
    #: The paper's tables it is a row of.
    tables: tuple[str, ...] = ()


#: name -> :class:`Method`, in the order the report and the default ``compare.methods`` list them.
METHODS: Registry[Method] = Registry("compare.methods")


def method(name: str, label: str, *, tables: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
           **fusion: Any) -> None:
    """Register the method ``name``: its label, tables and ``fusion`` overrides."""
    METHODS.add(name, Method(label, fusion, tables), aliases=aliases)


# the paper's model and its module ablations (Table III)
method("ours", "Ours (L=4)", head="cross_attention", layers=4, mcam=True, tables=("I", "II", "III"),
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
method("image", "Image only", head="image", tables=("II",))

#: The paper's own model: every other method is tested against it.
PAPER_HEAD = "ours"
#: The table of the paper's module ablations (its model first there).
ABLATION_TABLE = "III"


def _rows(table: str) -> list[str]:
    rows = [m for m in METHODS if table in METHODS.get(m).tables]
    if table != ABLATION_TABLE and PAPER_HEAD in rows:
        rows = [m for m in rows if m != PAPER_HEAD] + [PAPER_HEAD]
    return rows


#: The paper's tables I-III: table -> its rows (methods).
TABLES: dict[str, list[str]] = {t: _rows(t) for t in ("I", "II", "III")}

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
                        if METHODS.get(m).fusion["head"] != METHODS.get(PAPER_HEAD).fusion["head"]]


def method_fusion(name: str, fusion: dict[str, Any]) -> dict[str, Any]:
    """The fusion params of ``name``: the params' fusion group with the method's overrides."""
    return {**fusion, **METHODS.get(name).fusion}


def method_label(name: str) -> str:
    """The label the report prints for ``name`` (an earlier name: its method's; an unknown one: itself)."""
    return METHODS.get(name).label if METHODS.canonical(name) in METHODS else name
