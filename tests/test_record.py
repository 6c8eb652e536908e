"""One record type for every command that writes one: its fields are checked on
reading, records written before the schema was stamped still read, and a bad
record is a one-line error naming the file and the field."""

import json

import pytest

from wsolbench.cli import main
from wsolbench.core.errors import UserError
from wsolbench.core.record import SCHEMA_VERSION, RunRecord
from wsolbench.core.store import Store, read_record

# A protocol-1 record as written before the schema, the frame and the weights were
# recorded (the fields of the first release's runner).
OLD = {
    "run_id": "sat-cub-0123456789",
    "method": "sat",
    "dataset": "cub",
    "mode": "train+evaluate",
    "seed": 0,
    "config": {"method": "sat", "dataset": "cub", "lambda": 0.25, "seed": 0},
    "metrics": {"gt_known_loc": 81.5, "top1_cls": 77.25},
    "threshold": {"box": 0.42, "picked_on": "val"},
    "frozen_percent": 0.0,
    "history": [{"epoch": 1, "loss": 2.5}],
    "wall_time_s": 12.0,
    "finished": "2026-01-01T00:00:00+00:00",
}


def write(tmp_path, data):
    path = tmp_path / "run" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_a_record_from_before_the_schema_reads_as_schema_1(tmp_path):
    rec = read_record(write(tmp_path, OLD))
    assert rec.schema == SCHEMA_VERSION == 1
    assert rec.protocol_version == "1"  # no protocol block: the first protocol
    assert rec.metrics["gt_known_loc"] == 81.5 and rec.threshold["box"] == 0.42
    assert rec.pretrained is None and rec.maps is None
    written = rec.to_dict()
    assert {k: written[k] for k in OLD} == OLD and written["schema"] == 1  # nothing lost
    # Fields it never had: null where every record carries them, absent otherwise.
    assert written["curve"] is None and "pretrained" not in written and "maps" not in written


@pytest.mark.parametrize(
    "change, expect",
    [
        ({"metrics": [1, 2]}, "metrics: must be dict, got list"),
        ({"seed": "0"}, "seed: must be int, got str"),
        ({"seed": True}, "seed: must be int, got bool"),
        ({"gt_known": 3.0}, "gt_known: not a run record field"),
        ({"schema": 9}, "schema 9 is newer than this wsolbench reads (1); upgrade wsolbench"),
    ],
)
def test_bad_records_are_one_line_naming_file_and_field(tmp_path, change, expect):
    path = write(tmp_path, {**OLD, **change})
    with pytest.raises(UserError) as e:
        read_record(path)
    assert str(e.value) == f"{path}: {expect}"


def test_a_missing_field_and_a_torn_file_are_named(tmp_path):
    path = write(tmp_path, {k: v for k, v in OLD.items() if k != "metrics"})
    with pytest.raises(UserError, match="record.json: metrics: missing"):
        read_record(path)
    path.write_text('{"run_id": ')
    with pytest.raises(UserError, match="record.json: not a readable run record"):
        read_record(path)


def test_report_of_a_store_with_a_bad_record_skips_it_in_one_line(tmp_path, capsys):
    """One corrupt record does not take the whole store's report down: it is skipped
    with a one-line warning naming the file and the field."""
    write(tmp_path / "results", {**OLD, "metrics": "high"})
    assert main(["report", "--results", str(tmp_path / "results")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "record.json: metrics: must be dict, got str" in err
    assert err.startswith("wsolbench: warning: skipped:")


def test_evaluate_maps_and_run_write_the_same_record_type(tmp_path):
    # A maps record carries no training fields; both read back through RunRecord.
    maps = RunRecord(
        run_id="x-synthetic-maps-0123456789",
        method="x",
        dataset="synthetic",
        config={"name": "x"},
        metrics={"maxboxaccv2": 50.0},
        mode="evaluate-maps",
        notes=["GT-known / Top-1 Loc left out"],
    )
    store = Store(tmp_path)
    store.write_record(maps)
    assert store.record(maps.run_id) == maps
    on_disk = json.loads((tmp_path / maps.run_id / "record.json").read_text())
    assert "history" not in on_disk and on_disk["schema"] == 1
    assert on_disk["threshold"] is None and on_disk["seed"] is None  # as maps records were
