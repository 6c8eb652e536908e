"""The attention-map baseline of the SAT paper's Table 5.

Wu et al., Spatial-Aware Token for Weakly Supervised Object Localization, ICCV 2023,
Table 5: "we follow the idea of TS-CAM to extract the attention maps (before softmax
and adding a sigmoid function) to synthesize the localization map, and apply the
proposed losses to it". The authors' code for this baseline is not released; what
runs here, precisely:

- no spatial token: the class token is the query;
- in each of the last 3 blocks (``sat_blocks``), the class token's pre-softmax
  attention logits to all tokens are averaged over heads and passed through a
  sigmoid; the map is the mean of the three, over the patch positions;
- with ``gate`` (default) that sigmoid row gates the keys of every query in the same
  block, exactly as SAT's spatial-query attention does, so the map gets gradient from
  classification; ``--no-gate`` makes it a pure read-out trained by the losses alone;
- SAT's three losses (cross-entropy, batch area, normalization with the Gaussian).

So this differs from ``sat`` only in which token queries: the one the classifier
also uses, or a dedicated spatial token. That is the contrast Table 5 draws.
"""

from __future__ import annotations

from torch import nn
from wsolbench.methods.sat import SAT, SATNet

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.registry import register_method


@register_method("attnmap")
class AttentionMap(SAT):
    description = "SAT Table 5 baseline: class-token attention (sigmoid) as the map, SAT losses"
    paper = "Wu et al., ICCV 2023, Table 5 (attention-map baseline)"
    class_aware = False
    options = {**SAT.options, "gate": Option(True, "sigmoid-gated read-out (--no-gate: pure)")}
    checkpoint_keys = {}

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        o = cfg.options
        return SATNet(
            cfg["backbone"],
            num_classes,
            cfg["drop_path"],
            o["sat_blocks"],
            o["fused"],
            spatial_token=False,
            gate=o["gate"],
        )
