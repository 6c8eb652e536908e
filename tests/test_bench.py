"""The benchmarks' own references: they must compute what they claim to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import micro_config

from wsolbench.bench.metrics import pxap_per_threshold
from wsolbench.bench.train import _losses, _models, _step, check_equal
from wsolbench.core.registry import METHODS
from wsolbench.evaluation.metrics import MapBatch, PixelAP


def test_step_by_step_sat_equals_ours_and_gets_the_same_gradients():
    cfg = micro_config("sat", drop_path=0.0)
    models = _models(cfg)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for m in models.values():
        m.eval()
    assert check_equal(models, x) < 1e-5
    y = torch.tensor([0, 1, 2, 3])
    grads = []
    for name in ("SAT (ours)", "SAT step by step"):
        out = models[name](x)
        loss, _ = METHODS.get("sat")().loss(out, y, cfg, 1.0)
        loss.backward()
        grads.append(models["SAT (ours)"].spatial_token.grad.clone())
        models["SAT (ours)"].zero_grad()
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    # The plain model shares every weight but the spatial token.
    plain, sat = models["timm DeiT, same head"], models["SAT (ours)"]
    torch.testing.assert_close(plain.head.weight, sat.head.weight)
    _step(
        plain, _losses(cfg)["timm DeiT, same head"], x, y, amp=False
    )  # runs, and leaves no gradients behind
    assert all(p.grad is None for p in plain.parameters())


def test_a_wrong_reference_is_refused():
    models = _models(micro_config("sat", drop_path=0.0))
    for m in models.values():
        m.eval()
    models["SAT (ours)"].gate = False  # ours no longer gates: not the same model
    with pytest.raises(RuntimeError, match="differ"):
        check_equal(models, torch.randn(2, 3, 64, 64))


def test_pxap_reference_agrees_with_the_accumulator_and_by_hand():
    # One 2x2 map: object pixels score 0.9 and 0.3, background 0.6 and 0.1. From the
    # top: at t > 0.6 precision 1 recall 1/2; at t in (0.3, 0.6] precision 1/2 recall
    # 1/2; at t in (0.1, 0.3] precision 2/3 recall 1. PxAP = 1 * 1/2 + 2/3 * 1/2.
    m = np.array([[0.9, 0.6], [0.3, 0.1]])
    mask = np.array([[1, 0], [1, 0]])
    ref = pxap_per_threshold([m], [mask])
    acc = PixelAP()
    acc.update(MapBatch.one(m, mask=mask == 1))
    assert ref["pxap"] == pytest.approx(100 * (0.5 + 2 / 3 * 0.5))
    assert acc.compute()["pxap"] == pytest.approx(ref["pxap"])
    assert acc.compute()["piou"] == pytest.approx(ref["piou"]) == pytest.approx(100 * 2 / 3)
    # The benchmark's first step: 1.0 on the object, 0.5 elsewhere gives 100, in the
    # reference (its cut at 1.0 after the empty one at 2.0) as in the accumulator.
    m = np.full((4, 4), 0.5)
    m[1:3, 1:3] = 1.0
    assert pxap_per_threshold([m], [(m == 1.0).astype(int)])["pxap"] == pytest.approx(100.0)
