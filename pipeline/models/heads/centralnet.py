"""CentralNet (Vielzeuf et al., ECCV-W 2018), adapted to poster image + poster text.

Two modality branches (MLPs on the pooled embeddings, widths ``fusion.ffn``) and a
central branch that, at every depth i, takes a learned weighted sum of its own
previous hidden state and both branches' hidden states:

    h_c^{i+1} = f_c^i(a_c^i h_c^i + a_v^i h_v^i + a_t^i h_t^i)

The central branch makes the prediction. As in the original, it is trained
multi-task: the loss is the central loss plus each branch's own loss
(:meth:`training_loss`), so each branch stays a good unimodal classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.heads.pooled import _text_vector
from pipeline.models.heads.registry import HEADS


@HEADS.register("centralnet")
class CentralNetHead(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.config = dict(c)
        widths = [c["dim"], *c["ffn"]]
        self.norm_image = nn.LayerNorm(c["image_pooled_dim"])
        self.norm_text = nn.LayerNorm(c["text_pooled_dim"])
        self.empty_text = nn.Parameter(torch.zeros(c["text_pooled_dim"]))
        self.in_image = nn.Linear(c["image_pooled_dim"], widths[0])
        self.in_text = nn.Linear(c["text_pooled_dim"], widths[0])
        self.image_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.text_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.central_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        # a_c, a_v, a_t per depth (a_c unused at depth 0, where there is no central state yet)
        self.weights = nn.Parameter(torch.ones(len(widths), 3))
        self.drop = nn.Dropout(c["dropout"])
        self.out_image = nn.Linear(widths[-1], c["num_genres"])
        self.out_text = nn.Linear(widths[-1], c["num_genres"])
        self.out_central = nn.Linear(widths[-1], c["num_genres"])

    def branches(self, batch):
        hv = torch.relu(self.in_image(self.norm_image(batch["image_pooled"].float())))
        ht = torch.relu(self.in_text(self.norm_text(_text_vector(batch, self.empty_text))))
        w = self.weights
        hc = w[0, 1] * hv + w[0, 2] * ht
        for i, (lv, lt, lc) in enumerate(zip(self.image_layers, self.text_layers, self.central_layers), start=1):
            hv, ht, hc = (self.drop(torch.relu(lv(hv))), self.drop(torch.relu(lt(ht))),
                          self.drop(torch.relu(lc(hc))))
            hc = w[i, 0] * hc + w[i, 1] * hv + w[i, 2] * ht
        return self.out_central(hc), self.out_image(hv), self.out_text(ht)

    def forward(self, batch):
        return self.branches(batch)[0]

    def training_loss(self, batch, targets, loss_fn):
        central, image, text = self.branches(batch)
        return loss_fn(central, targets) + loss_fn(image, targets) + loss_fn(text, targets)
