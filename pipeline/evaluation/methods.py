"""Every method the papers compare, as named overrides of the fusion params.

A method is plain data: which head, and which ``fusion`` keys it changes. The
training options (loss, oversampling, thresholds) come from params and apply to
every method alike, so ``-S loss.name=bce`` re-runs the whole comparison with BCE.

Tables follow the paper: Table I compares bi-modal methods, Table II modalities,
Table III the module ablations of the paper's own head.
"""

from __future__ import annotations

from typing import Any

METHODS: dict[str, dict[str, Any]] = {
    # the paper's head and its ablations (Table III)
    "mcam": {"head": "mcam", "layers": 4, "mcam": True, "label": "Ours (L=4)"},
    "mcam-L1": {"head": "mcam", "layers": 1, "mcam": True, "label": "Ours (L=1)"},
    "mcam-no-smsam": {"head": "mcam", "layers": 0, "mcam": True, "label": "Ours -SMSAM"},
    "mcam-no-mcam": {"head": "mcam", "layers": 4, "mcam": False, "label": "Ours (L=4) -MCAM"},
    "mcam-L1-no-mcam": {"head": "mcam", "layers": 1, "mcam": False, "label": "Ours (L=1) -MCAM"},
    "mcam-no-mcam-no-smsam": {"head": "mcam", "layers": 0, "mcam": False,
                              "label": "Ours -MCAM -SMSAM (token sequences, mean-pooled)"},
    # baselines on pooled embeddings (Table I) and single modalities (Table II)
    "concat": {"head": "concat", "label": "concat (image || text)"},
    "sum": {"head": "sum", "label": "sum (image + text; the paper's -MCAM -SMSAM)"},
    "gmu": {"head": "gmu", "label": "GMU"},
    "centralnet": {"head": "centralnet", "label": "CentralNet"},
    "late": {"head": "late", "late_init": "mean", "label": "Late fusion (MovieScope ensemble)"},
    "late-random-init": {"head": "late", "late_init": "random",
                         "label": "Late fusion, random blend start (earlier row)"},
    "linear": {"head": "linear", "label": "Linear probe"},
    "naive": {"head": "naive", "label": "Naive (k most frequent)"},
    "image": {"head": "image", "label": "Image only"},
    "text": {"head": "text", "label": "Text only"},
}

TABLES = {
    "I": ["concat", "sum", "gmu", "centralnet", "late", "late-random-init", "linear", "naive", "mcam"],
    "II": ["text", "image", "mcam"],
    "III": ["mcam", "mcam-L1", "mcam-no-smsam", "mcam-no-mcam", "mcam-L1-no-mcam", "mcam-no-mcam-no-smsam", "sum"],
}

#: The paper's own head: every other method is tested against it.
PAPER_HEAD = "mcam"

TABLE_NOTES = {
    "III": (
        "Two end points of the ablation: in the paper, removing both MCAM and SMSAM leaves its CLIP "
        "linear-addition baseline (the same 64.81 in Tables I and III): pooled image + pooled text, added, FFN; "
        "here that is the `sum` row. `Ours -MCAM -SMSAM` keeps this project's token sequences instead "
        "(aligned image and text tokens concatenated, mean-pooled, FFN), so it isolates the two modules "
        "while keeping the sequence input."
    ),
}

#: Methods that are not the paper's own head: the "best baseline" is chosen among these.
BASELINES = ["concat", "sum", "gmu", "centralnet", "late", "late-random-init", "linear", "naive", "image", "text"]


def method_fusion(name: str, fusion: dict[str, Any]) -> dict[str, Any]:
    """The fusion params of ``name``: the params' fusion group with the method's overrides."""
    if name not in METHODS:
        raise KeyError(f"method '{name}' unknown; choose from {sorted(METHODS)}")
    overrides = {k: v for k, v in METHODS[name].items() if k != "label"}
    return {**fusion, **overrides}
