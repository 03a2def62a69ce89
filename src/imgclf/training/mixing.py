"""Mixup/CutMix on a batch (timm's Mixup), also for odd batch sizes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.data import Mixup
from torch import nn

from imgclf.config.schema import Config
from imgclf.data.competition import Competition


def make_mixer(cfg: Config, comp: Competition) -> Callable | None:
    tc = cfg.train
    if not (tc.mixup_alpha or tc.cutmix_alpha):
        return None
    # multi-label: timm mixes the 0/1 label vectors with the same lambda as the images
    mix = Mixup(mixup_alpha=tc.mixup_alpha, cutmix_alpha=tc.cutmix_alpha, prob=tc.mix_prob,
                label_smoothing=0.0, num_classes=comp.num_classes, multi_label=comp.multi_label)

    def mixed(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2 == 0:
            return mix(x, y)
        # timm pairs images by flipping the batch, so it needs an even count: with an odd batch
        # size mix all but the last image rather than never mixing at all
        last = y[-1:].float() if comp.multi_label else nn.functional.one_hot(y[-1:], comp.num_classes).float()
        if len(x) == 1:
            return x, last
        head_x, head_y = mix(x[:-1], y[:-1])
        return torch.cat([head_x, x[-1:]]), torch.cat([head_y, last.to(head_y.dtype)])

    return mixed
