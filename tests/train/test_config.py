"""fastgan.train.config: value types from YAML / JSON files (coerced or rejected naming the
option), range checks naming the option, '~' in paths, device and backend checks, and what a
run's config.json keeps for reuse.  No training here: every test is milliseconds."""
from __future__ import annotations

import json

import pytest
import torch

from fastgan.train.config import TrainConfig, check_device, check_impl, load_config_file


def _from_yaml(tmp_path, line: str) -> TrainConfig:
    (tmp_path / "c.yaml").write_text(f"data: shapes\nbatch: 4\n{line}\n")
    return TrainConfig.from_dict(load_config_file(str(tmp_path / "c.yaml")))


@pytest.mark.parametrize("line, name, value", [
    ("lr: 1e-3", "lr", 0.001),                 # PyYAML (YAML 1.1) reads 1e-3 as a string
    ('kimg: "0.01"', "kimg", 0.01),
    ("kimg: 2", "kimg", 2.0),
    ("batch: 8.0", "batch", 8),
    ('resolution: "16"', "resolution", 16),
    ('cond: "no"', "cond", False),
    ("mirror: yes", "mirror", True),
    ("betas: [0, 0.9]", "betas", (0.0, 0.9)),
    ("gamma: null", "gamma", None),             # Optional: the automatic default
])
def test_config_file_values_are_coerced_to_the_field_types(tmp_path, line, name, value):
    c = _from_yaml(tmp_path, line)
    got = getattr(c, name)
    assert got == value and type(got) is type(value), (got, value)
    c.validate()


@pytest.mark.parametrize("line, message", [
    ("lr: 1e-3x", "config option 'lr' must be a number, got '1e-3x' (str)"),
    ("batch: 4.5", "config option 'batch' must be an integer, got 4.5 (float)"),
    ("betas: 0.5", "config option 'betas' must be two numbers"),
    ("betas: [0.1, 0.2, 0.3]", "config option 'betas' must be two numbers"),
    ("tick_kimg: null", "config option 'tick_kimg' must be a number, got null"),
    ("extra: [1]", "config option 'extra' must be a mapping"),
    ("seed: true", "config option 'seed' must be an integer, got True (bool)"),
    ("kimg: .nan", "config option 'kimg' must be a finite number"),
    ('cond: "maybe"', "config option 'cond' must be a boolean"),
    ("data: 3", "config option 'data' must be a string"),
])
def test_config_file_values_of_the_wrong_type_name_the_option(tmp_path, line, message):
    with pytest.raises(ValueError) as e:
        _from_yaml(tmp_path, line)
    assert message in str(e.value)


def test_validate_checks_types_of_a_config_built_in_python():
    assert TrainConfig(lr="2e-3", batch=8.0).validate().lr == 0.002
    with pytest.raises(ValueError, match="config option 'kimg' must be a number"):
        TrainConfig(kimg="lots").validate()


@pytest.mark.parametrize("name, value", [
    ("mbstd_group", 0), ("mbstd_group", -2), ("gamma", -1.0), ("ema_kimg", -1.0),
    ("channel_max", 0), ("channel_base", 0), ("lr", -1.0), ("lr", 0.0), ("seed", -1),
    ("ada_interval", 0), ("betas", (0.0, 1.0)), ("pl_decay", 2.0), ("metric_kimg", 0.0),
    ("ema_rampup", -0.1), ("mapping_layers", 0), ("max_size", 0),
])
def test_out_of_range_options_are_rejected_naming_them(name, value):
    with pytest.raises(ValueError, match=rf"TrainConfig: {name} must be"):
        TrainConfig(**{name: value}).validate()


def test_boundary_values_stay_valid():
    c = TrainConfig(gamma=0.0, ema_kimg=0.0, mbstd_group=1, channel_max=1, pl_weight=0.0)
    assert c.validate() is c


def test_tilde_is_expanded_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = TrainConfig.from_dict({"data": "~/photos", "out": "~/runs/x", "resume": "~/c.pt"})
    assert (c.data, c.out, c.resume) == (str(tmp_path / "photos"), str(tmp_path / "runs/x"),
                                         str(tmp_path / "c.pt"))
    assert TrainConfig(out="~/y", resume="auto", data="shapes").validate().out == \
        str(tmp_path / "y")
    assert TrainConfig(resume="auto").validate().resume == "auto"
    (tmp_path / "c.yaml").write_text("out: ~/z\n")
    assert load_config_file("~/c.yaml") == {"out": "~/z"}   # read from HOME
    assert TrainConfig.from_dict(load_config_file("~/c.yaml")).out == str(tmp_path / "z")


def test_bad_config_files_give_value_errors_naming_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: [shapes\nresolution: 8\n")
    with pytest.raises(ValueError, match=r"bad\.yaml' is not valid YAML.*line 2"):
        load_config_file(str(tmp_path / "bad.yaml"))
    (tmp_path / "bad.json").write_text("{\"data\": ")
    with pytest.raises(ValueError, match=r"bad\.json' is not valid JSON"):
        load_config_file(str(tmp_path / "bad.json"))


def test_device_is_checked_before_use():
    assert check_device("cpu") == torch.device("cpu")
    for bad in ("bogus", "meta", "cuda:x", 3):
        with pytest.raises(ValueError, match="device must be"):
            check_device(bad)
    with pytest.raises(ValueError, match="--device must be cpu, cuda or cuda:N, got 'bogus'"):
        check_device("bogus", "--device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            TrainConfig(device="cuda:1").validate()
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            check_device(f"cuda:{torch.cuda.device_count()}")


def test_impl_is_checked_against_the_device(monkeypatch):
    from fastgan.ops import available_impls
    cpu = torch.device("cpu")
    check_impl(None, cpu)
    check_impl("ref", cpu)
    with pytest.raises(ValueError, match=r"impl 'cuda' cannot run on cpu: .*CUDA tensors"):
        check_impl("cuda", cpu)
    monkeypatch.setenv("FASTGAN_IMPL", "cuda")  # the env var forces a backend too
    with pytest.raises(ValueError, match="FASTGAN_IMPL 'cuda' cannot run"):
        check_impl(None, cpu)
    monkeypatch.setenv("FASTGAN_IMPL", "fast")
    with pytest.raises(ValueError, match="FASTGAN_IMPL must be one of"):
        check_impl(None, cpu)
    monkeypatch.delenv("FASTGAN_IMPL")
    if not available_impls(cpu)["triton"]:
        with pytest.raises(ValueError, match="impl 'triton' cannot run on cpu"):
            check_impl("triton", cpu)


def test_user_dict_keeps_auto_defaults_and_drops_resume():
    c = TrainConfig(data="shapes", batch=8, resume="auto").validate()
    d = c.to_user_dict()
    assert "resume" not in d and d["gamma"] is None and d["lr"] is None and d["batch"] == 8
    again = TrainConfig.from_dict(json.loads(json.dumps(d)))
    assert again.to_user_dict() == d
    # a reused config follows the new batch / resolution (the resolved values would not)
    r = TrainConfig.from_dict(dict(d, batch=16)).resolved(64)
    assert r.gamma == pytest.approx(0.0002 * 64 ** 2 / 16) and r.ema_kimg == 5.0
