"""Freeze presets reproduce the frozen rates of the SAT paper's Table 8 on DeiT-S."""

import pytest

from wsolbench.core.config import build_config
from wsolbench.core.registry import METHODS
from wsolbench.train.freeze import apply_freeze, frozen_names

EXPECTED = {  # reference-notes: counted on DeiT-S with the conv head
    200: {"a": 0.0, "b": 23.8, "c": 47.6, "d": 71.4, "e": 88.9, "e_proj": 90.9},
    1000: {"a": 0.0, "b": 21.2, "c": 42.3, "d": 63.6, "e": 79.2, "e_proj": 80.9},
}


@pytest.fixture(scope="module", params=[200, 1000])
def deit_s(request):
    sat = METHODS.get("sat")()
    cfg = build_config(
        {"method": "sat", "backbone": "deit_small_patch16_224"},
        {
            "lambda": 0.25,
            "batch_size": 2,
            "epochs": 1,
            "lr": 1e-4,
            "loss_delay": 0.0,
            "loss_ramp": 0.0,
        },
        sat.options,
    )
    return request.param, sat.build(cfg, request.param)


def test_presets_match_paper_rates(deit_s):
    classes, model = deit_s
    for preset, want in EXPECTED[classes].items():
        got = apply_freeze(model, preset)
        assert round(got, 1) == want, (classes, preset, got)
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        assert frozen == set(frozen_names(model, preset, 12))


def test_preset_d_touches_only_first_nine_blocks(deit_s):
    _, model = deit_s
    names = frozen_names(model, "d", 12)
    assert any(n.startswith("blocks.8.") for n in names)
    assert not any(n.startswith(("blocks.9.", "blocks.10.", "blocks.11.", "head")) for n in names)
    assert "spatial_token" not in names
