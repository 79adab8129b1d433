"""Late fusion (the MovieScope-ensemble paper): one network per modality, blended by a learned layer.

Each modality has its own small network (pooled embedding -> ``fusion.ffn`` -> M
logits). A single fully connected layer (kM -> M, k branches) blends their outputs
into the final prediction, as in LeBaron's ensemble.

Branches: the poster image and its OCR text (this project's addition; the paper has
no OCR), then, with films (``fusion.plot`` / ``fusion.metadata``), the plot and the
metadata: the paper's poster, plot and metadata networks. The paper's trailer branch
is absent: no trailer can be had here. A film without a plot feeds its plot branch
a learned empty-plot vector, so that branch learns what to say without one and the
blend learns how much to trust it.

The paper trains the modality networks first and the blending layer after. Here
both happen in one loop with the same effect: each network is trained by its
own loss, and the blending layer by the fused loss on *detached* branch outputs,
so no gradient of the blend reaches the branches (:meth:`training_loss`).

How the blend starts (``fusion.late_init``) decides whether this baseline is
measured or under-trained:

* ``mean`` (default): the blend reads the branches' *logits* and starts as each
  genre's mean of its k branch logits (weight 1/k on the genre's own k
  outputs, 0 across genres, bias 0). Before it has learned anything the ensemble
  is the equal-weight average of its branches, so it starts as good as a plain
  ensemble and the fused loss only moves it from there.
* ``random``: the blend reads the branches' sigmoid probabilities and starts from
  PyTorch's random initialisation, a random mix of all 2M outputs. At lr 1e-4 it
  never recovers within the epochs early stopping allows: on the shared posters it
  scored below its own image branch. Kept to reproduce that earlier row.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.cross_attention_fusion import ffn
from pipeline.models.heads.pooled import WIDTH, masked_vector
from pipeline.models.heads.registry import HEADS


@HEADS.register("late", reads=("plot", "metadata"))
class LateFusionHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        m = c["num_genres"]
        #: the branches, in blend order (a checkpoint without film inputs has image and text only)
        self.branch_names = ["image", "text"] + [f for f in ("plot", "metadata") if c.get(f)]
        for name in self.branch_names:  # attributes norm_<name>, <name>, empty_<name>: checkpoints' names
            width = c[WIDTH[name]]
            setattr(self, f"norm_{name}", nn.LayerNorm(width))
            if name in ("text", "plot"):
                setattr(self, f"empty_{name}", nn.Parameter(torch.zeros(width)))
            setattr(self, name, ffn(width, c["ffn"], m, c["dropout"]))
        k = len(self.branch_names)
        self.blend = nn.Linear(k * m, m)
        self.on_logits = c.get("late_init", "mean") == "mean"
        if self.on_logits:
            with torch.no_grad():
                eye = torch.eye(m) / k
                self.blend.weight.copy_(torch.cat([eye] * k, dim=1))
                self.blend.bias.zero_()

    def branch_logits(self, batch) -> tuple[torch.Tensor, ...]:
        """Each branch's logits, in :attr:`branch_names` order."""
        return tuple(getattr(self, name)(getattr(self, f"norm_{name}")(
            masked_vector(batch, name, getattr(self, f"empty_{name}", None)) if name != "image"
            else batch["image_pooled"].float())) for name in self.branch_names)

    def _blend(self, *logits):
        if self.on_logits:
            return self.blend(torch.cat(logits, dim=1))
        return self.blend(torch.cat([torch.sigmoid(z) for z in logits], dim=1))

    def forward(self, batch):
        return self._blend(*self.branch_logits(batch))

    def training_loss(self, batch, targets, loss_fn):
        branches = self.branch_logits(batch)
        fused = self._blend(*(z.detach() for z in branches))
        return sum(loss_fn(z, targets) for z in branches) + loss_fn(fused, targets)
