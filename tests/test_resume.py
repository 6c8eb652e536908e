"""A run interrupted after an epoch resumes from its checkpoint and ends exactly
where an uninterrupted run ends (CPU is deterministic)."""

import pytest
import torch
from torch.utils.data import Subset

from wsolbench.core.config import build_config
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.data.splits import make_loader
from wsolbench.train.trainer import train


class InterruptOnEpoch:
    """A loader that dies when epoch ``n`` starts, like a preempted job."""

    def __init__(self, loader, n):
        self.loader, self.n, self.calls = loader, n, 0
        self.generator = loader.generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt("preempted")
        return iter(self.loader)


def test_resume_matches_uninterrupted(tmp_path):
    sat = METHODS.get("sat")()
    data = DATASETS.get("synthetic")()
    cfg = build_config(
        {"method": "sat", "epochs": 3, "batch_size": 8, "loss_delay": 0.34, "loss_ramp": 0.33},
        data.defaults,
        sat.options,
    )
    train_set = Subset(data.load(cfg).train, list(range(40)))

    def fresh():
        torch.manual_seed(cfg["seed"])
        return sat.build(cfg, 6)

    full = fresh()
    hist_full = train(sat, full, cfg, make_loader(train_set, cfg, True, 0), torch.device("cpu"))

    ckpt = tmp_path / "checkpoint.pt"
    broken = fresh()
    with pytest.raises(KeyboardInterrupt):
        train(
            sat,
            broken,
            cfg,
            InterruptOnEpoch(make_loader(train_set, cfg, True, 0), 3),
            torch.device("cpu"),
            ckpt,
        )
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    resumed = fresh()  # a new process would start from a fresh model too
    hist_resumed = train(
        sat, resumed, cfg, make_loader(train_set, cfg, True, 0), torch.device("cpu"), ckpt
    )

    assert hist_resumed == hist_full
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
