"""CAM: class activation maps of a classifier trained on image labels alone.

Zhou, Khosla, Lapedriza, Oliva, Torralba. Learning Deep Features for Discriminative
Localization, CVPR 2016. As in the WSOL evaluation benchmark (Choe et al., CVPR 2020,
clovaai/wsolevaluation): a CNN trunk (ResNet-50 on the real datasets, the last stage at
stride 1), global average pooling and a linear classifier trained at 10x the trunk's
learning rate; the map of class c is the classifier's class-c weights over the last
feature map. ``--backbone`` any timm ViT gives TS-CAM's conv head on the patch tokens
instead (TS-CAM without its attention term). A sanity floor: a method that localizes
worse than CAM adds nothing.

Differs from the benchmark: AdamW and wsolbench's schedule for every method (the
benchmark: SGD, momentum 0.9, step decay); maps are min-max scaled per image and class
inside the network (the benchmark scales them in its evaluator; boxes do not change).
"""

from __future__ import annotations

from wsolbench.core.registry import register_method
from wsolbench.models.cam import CAMBase


@register_method("cam")
class CAM(CAMBase):
    description = "CAM (CVPR 2016): a classifier's class activation maps; the sanity floor"
    paper = "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016"
