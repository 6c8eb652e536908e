"""The WSOL benchmark's fair comparison: seeded equal-budget search, selection on val
only, and a paired bootstrap interval checked by hand and by its coverage."""

import json
import re

import numpy as np
import pytest

from wsolbench.cluster import tune as tune_module
from wsolbench.cluster.tune import TuneRequest, tune
from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.space import log, read_space, sample_trials, uniform
from wsolbench.core.store import Store
from wsolbench.reporting.compare import Side, paired_interval

SPACE = {"lr": log(1e-4, 1e-2), "lambda": uniform(0.05, 0.5)}


def test_the_same_seed_draws_the_same_trials():
    a, b = sample_trials(SPACE, 5, seed=7), sample_trials(SPACE, 5, seed=7)
    assert a == b and len(a) == 5
    assert sample_trials(SPACE, 5, seed=8) != a
    for t in a:
        assert 1e-4 <= t["lr"] <= 1e-2 and 0.05 <= t["lambda"] <= 0.5
    # Log-uniform: about half the draws fall below the geometric middle, 1e-3.
    lrs = [t["lr"] for t in sample_trials({"lr": log(1e-4, 1e-2)}, 400, seed=0)]
    assert 0.4 < np.mean(np.array(lrs) < 1e-3) < 0.6


@pytest.mark.parametrize(
    "text, expect",
    [
        ("lr: {log: [0, 1]}\n", "lr: log: low must be > 0"),
        ("lr: {normal: [1, 2]}\n", "lr: must be {log|uniform|int: [low, high]}"),
        ("lr: {uniform: [2, 1]}\n", "lr: uniform: must be [low, high] numbers, low <= high"),
    ],
)
def test_bad_space_files_are_one_line(tmp_path, text, expect):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=re.escape(expect)):
        read_space(path)


def side(hits: np.ndarray, name: str = "x") -> Side:
    """A one-seed side whose per-image GT-known hits are ``hits`` (threshold 0)."""
    n = len(hits)
    box_hit = np.zeros((n, 100), bool)
    box_hit[:, 0] = hits
    record = RunRecord(
        run_id=name,
        method=name,
        dataset="synthetic",
        config={},
        metrics={"gt_known_loc": 100 * float(np.mean(hits))},
        threshold={"box": 0.0},
    )
    ids = np.array([f"{i}" for i in range(n)])
    return Side(name, [record], [{"box_hit": box_hit, "image_ids": ids}])


def test_interval_by_hand_when_every_draw_agrees():
    # A localizes all 5 images, B none: every resample gives 100 - 0.
    a, b = side(np.ones(5, bool)), side(np.zeros(5, bool))
    assert paired_interval(a, b, "gt_known_loc", draws=500) == (100.0, 100.0, 100.0)


def test_interval_by_hand_on_two_images():
    # A hits image 0 only, B image 1 only. Drawing 2 images with replacement gives
    # (0,0) 1/4: +100; (1,1) 1/4: -100; mixed 1/2: 0. The 2.5th / 97.5th percentiles
    # are -100 and +100 and the point difference is 0.
    a, b = side(np.array([True, False])), side(np.array([False, True]))
    point, lo, hi = paired_interval(a, b, "gt_known_loc", draws=4000, seed=3)
    assert (point, lo, hi) == (0.0, -100.0, 100.0)


def test_pairing_narrows_the_interval_of_correlated_sides():
    # B misses exactly the images A misses plus a few: paired draws see a difference
    # of at least 0 every time, so the interval cannot reach below 0.
    rng = np.random.default_rng(0)
    a_hits = rng.random(300) < 0.7
    b_hits = a_hits & (rng.random(300) < 0.9)
    point, lo, hi = paired_interval(side(a_hits), side(b_hits), "gt_known_loc", draws=1000)
    assert 0 <= lo < point < hi
    assert point == pytest.approx(100 * (a_hits.mean() - b_hits.mean()))


def test_interval_covers_the_true_difference_at_about_the_nominal_rate():
    # A population of 20,000 images; per-image hits of A and B correlated. Each
    # replicate draws 200 test images; the 95% interval should cover the population
    # difference in about 95% of 200 replicates.
    rng = np.random.default_rng(1)
    hard = rng.random(20_000)
    pop_a, pop_b = hard < 0.75, hard < 0.68
    pop_b ^= rng.random(20_000) < 0.05  # some disagreement either way
    truth = 100 * (pop_a.mean() - pop_b.mean())
    covered = 0
    for r in range(200):
        idx = rng.integers(0, len(hard), 200)
        _, lo, hi = paired_interval(side(pop_a[idx]), side(pop_b[idx]), "gt_known_loc", 400, r)
        covered += lo <= truth <= hi
    assert 0.89 <= covered / 200 <= 0.99


@pytest.mark.slow
def test_compare_prints_each_side_and_the_interval(cli, tiny_runs):
    store = next(iter(tiny_runs.values())).parent
    sat, tscam = tiny_runs["sat"].name, tiny_runs["tscam"].name
    code, out, err = cli("compare", sat, tscam, "--results", str(store), "--draws", "500")
    assert code == 0, err
    recs = {m: json.loads((tiny_runs[m] / "record.json").read_text()) for m in ("sat", "tscam")}
    for label, key in (("GT-known Loc", "gt_known_loc"), ("MaxBoxAccV2", "maxboxaccv2")):
        (row,) = [line for line in out.splitlines() if line.startswith(f"| {label} |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        # On all images, the difference is exactly the records' difference.
        diff = recs["sat"]["metrics"][key] - recs["tscam"]["metrics"][key]
        assert cells[1] == f"{recs['sat']['metrics'][key]:.2f} (1 seed)"
        assert cells[3] == f"{diff:+.2f}"
        lo, hi = (float(v) for v in cells[4].strip("[]").split(","))
        assert lo <= round(diff, 2) <= hi
    assert "| PxAP |" in out and "500 draws of the 600 test images" in out


def test_compare_refuses_a_trial_and_unknown_names(cli, tmp_path):
    code, _, err = cli("compare", "nosuch", "sat", "--results", str(tmp_path))
    assert code == 2 and "nosuch: neither a finished run id nor a method" in err


TRIALS = {"epochs": 1, "kshot": 2}


def run_tune(store, **kw):
    req = TuneRequest("sat", budget=2, seeds=1, fixed=TRIALS, executor="debug", **kw)
    return tune(req, Store(store))


@pytest.mark.slow
def test_tune_selects_on_val_and_never_reads_test(tmp_path, monkeypatch):
    from wsolbench.datasets import synthetic

    # Every image a split hands out, in order, and when the choice was made.
    events = []
    getitem = synthetic.SyntheticSplit.__getitem__

    def spy(self, i):
        events.append("test" if self.image_ids[0].startswith("test/") else "other")
        return getitem(self, i)

    choose = tune_module.choose

    def choosing(trials):
        events.append("choose")
        return choose(trials)

    monkeypatch.setattr(synthetic.SyntheticSplit, "__getitem__", spy)
    monkeypatch.setattr(tune_module, "choose", choosing)
    clean = run_tune(tmp_path / "clean")
    assert "test" not in events[: events.index("choose")]  # trials never touch test
    assert "test" in events[events.index("choose") :]  # the choice is run on test

    assert [t["val"] is not None for t in clean["trials"]] == [True, True]
    best = max(clean["trials"], key=lambda t: (t["val"], -t["trial"]))
    assert clean["choice"]["trial"] == best["trial"]
    trial = Store(tmp_path / "clean").record(clean["trials"][0]["run_id"])
    assert trial.protocol["scored_split"] == "val" and trial.data["val_images"] == 300
    assert trial.per_image and trial.config["eval_split"] == "val"
    saved = json.loads(next((tmp_path / "clean" / ".tunes").glob("*.json")).read_text())
    assert saved["choice"] == clean["choice"] and len(saved["test_runs"]) == 1

    # Poison: test-scored records of every trial's settings, the loser's made perfect.
    poisoned = tmp_path / "poisoned"
    loser = 1 - clean["choice"]["trial"]
    for t in clean["trials"]:
        given = tune_module.run_given(TuneRequest("sat", fixed=TRIALS), t["settings"], "test", 0)
        cfg = tune_module.plan(given).cfg
        perfect = 100.0 if t["trial"] == loser else 0.0
        Store(poisoned).write_record(
            RunRecord(
                run_id=cfg.run_id,
                method="sat",
                dataset="synthetic",
                config=cfg.to_dict(),
                metrics={"maxboxaccv2": perfect, "gt_known_loc": perfect},
                protocol={"version": "2", "scored_split": "test"},
            )
        )
    again = run_tune(poisoned)
    assert again["choice"] == clean["choice"]
    assert [t["val"] for t in again["trials"]] == [t["val"] for t in clean["trials"]]
