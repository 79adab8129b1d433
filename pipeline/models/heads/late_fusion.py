"""Late fusion (the MovieScope-ensemble paper): one network per modality, blended by a learned layer.

Each modality has its own small network (pooled embedding -> ``fusion.ffn`` -> M
logits). A single fully connected layer (2M -> M) blends their outputs into the
final prediction, as in LeBaron's ensemble.

The paper trains the modality networks first and the blending layer after. Here
both happen in one loop with the same effect: each network is trained by its
own loss, and the blending layer by the fused loss on *detached* branch outputs,
so no gradient of the blend reaches the branches (:meth:`training_loss`).

How the blend starts (``fusion.late_init``) decides whether this baseline is
measured or under-trained:

* ``mean`` (default): the blend reads the branches' *logits* and starts as each
  genre's mean of its two branch logits (weight 1/2 on the genre's own two
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
from pipeline.models.heads.pooled import _text_vector
from pipeline.models.heads.registry import HEADS


@HEADS.register("late")
class LateFusionHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        m = c["num_genres"]
        self.norm_image = nn.LayerNorm(c["image_pooled_dim"])
        self.norm_text = nn.LayerNorm(c["text_pooled_dim"])
        self.empty_text = nn.Parameter(torch.zeros(c["text_pooled_dim"]))
        self.image = ffn(c["image_pooled_dim"], c["ffn"], m, c["dropout"])
        self.text = ffn(c["text_pooled_dim"], c["ffn"], m, c["dropout"])
        self.blend = nn.Linear(2 * m, m)
        self.on_logits = c.get("late_init", "mean") == "mean"
        if self.on_logits:
            with torch.no_grad():
                eye = torch.eye(m) / 2
                self.blend.weight.copy_(torch.cat([eye, eye], dim=1))
                self.blend.bias.zero_()

    def branch_logits(self, batch):
        return (self.image(self.norm_image(batch["image_pooled"].float())),
                self.text(self.norm_text(_text_vector(batch, self.empty_text))))

    def _blend(self, image_logits, text_logits):
        if self.on_logits:
            return self.blend(torch.cat([image_logits, text_logits], dim=1))
        return self.blend(torch.cat([torch.sigmoid(image_logits), torch.sigmoid(text_logits)], dim=1))

    def forward(self, batch):
        return self._blend(*self.branch_logits(batch))

    def training_loss(self, batch, targets, loss_fn):
        image, text = self.branch_logits(batch)
        fused = self._blend(image.detach(), text.detach())
        return loss_fn(image, targets) + loss_fn(text, targets) + loss_fn(fused, targets)
