import pytest

from wsolbench.core.config import build_config, load_yaml
from wsolbench.core.errors import UserError

DEFAULTS = {
    "lambda": 0.2,
    "batch_size": 8,
    "epochs": 2,
    "lr": 1e-3,
    "backbone": "b",
    "loss_delay": 0.0,
    "loss_ramp": 0.0,
}


def cfg(**given):
    return build_config({"method": "sat", **given}, DEFAULTS, {"area_loss": True, "sat_blocks": 3})


def test_defaults_fill_unset_fields_and_user_values_win():
    c = cfg(batch_size=32)
    assert c["batch_size"] == 32 and c["epochs"] == 2 and c["lambda"] == 0.2
    assert c.options == {"area_loss": True, "sat_blocks": 3}


def test_run_id_is_stable_and_follows_every_result_setting():
    assert cfg(seed=1).run_id == cfg(seed=1).run_id
    assert cfg(seed=1).run_id != cfg(seed=2).run_id
    assert cfg().run_id != cfg(options={"area_loss": False}).run_id
    # where the data lives and how many workers load it do not change the result
    assert cfg().run_id == cfg(data_root="/x", workers=3, device="cpu").run_id
    assert cfg().run_id.startswith("sat-synthetic-")


@pytest.mark.parametrize(
    "text, message",
    [
        ("lamda: 0.3\n", "run.yaml: lamda: unknown key"),
        ("lambda: 1.5\n", "run.yaml: lambda: must be in (0.0, 1.0), got 1.5"),
        ("lambda: 0\n", "run.yaml: lambda: must be in (0.0, 1.0), got 0.0"),
        ("batch_size: 0\n", "run.yaml: batch_size: must be >= 1, got 0"),
        ("batch_size: eight\n", "run.yaml: batch_size: must be an integer, got 'eight'"),
        ("epochs: true\n", "run.yaml: epochs: must be an integer, got True"),
        ("kshot: -1\n", "run.yaml: kshot: must be >= 1, got -1"),
        (
            "schedule: linear\n",
            "run.yaml: schedule: must be one of constant, cosine, step, got 'linear'",
        ),
        ("- 1\n- 2\n", "run.yaml: must hold a mapping of run settings"),
        ("seed: [1\n", "run.yaml: line 2 is not valid YAML"),
    ],
)
def test_yaml_errors_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        load_yaml(path)
    got = str(e.value).replace(str(tmp_path) + "/", "")
    assert got == message or got.startswith(message + " (known: method, dataset,")
    assert "\n" not in got


def test_yaml_accepts_all_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "method: sat\nkshot: 5\nfreeze: d\nlambda: 0.3\nbatch_size: 16\nseed: 3\n"
        "options: {area_loss: false}\n"
    )
    got = load_yaml(path)
    assert got == {
        "method": "sat",
        "kshot": 5,
        "freeze": "d",
        "lambda": 0.3,
        "batch_size": 16,
        "seed": 3,
        "options": {"area_loss": False},
    }


def test_method_options_are_checked():
    with pytest.raises(UserError, match="unknown option 'aera_loss'"):
        cfg(options={"aera_loss": False})
    with pytest.raises(UserError, match="sat_blocks must be of type int"):
        cfg(options={"sat_blocks": "3"})
