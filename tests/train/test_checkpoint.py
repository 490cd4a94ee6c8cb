"""fastgan.train.checkpoint: atomic saves, rotation / best tracking, corrupt-file fallback, resume
resolution and RNG state round trips."""
from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

import fastgan
from fastgan.train import checkpoint as ckpt
from fastgan.train.checkpoint import (CheckpointError, CheckpointManager, atomic_save,
                                      get_generator_states, get_rng_state, load_checkpoint,
                                      resolve_resume, set_generator_states, set_rng_state)


def _state(step: int) -> dict:
    g = torch.Generator().manual_seed(step)
    # a numpy RNG state (not loadable with weights_only=True) as the trainer's checkpoints hold
    return {"weights": torch.randn(4, 3, generator=g), "config": {"lr": 0.002, "step_seen": step},
            "numpy_rng": np.random.RandomState(step).get_state()}


def _truncate(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _leftover_temps(directory) -> list[str]:
    return [n for n in os.listdir(directory) if ".tmp-" in n]


# ---------------------------------------------------------------------------------- atomic_save
def test_atomic_save_round_trip(tmp_path):
    obj = {"w": torch.randn(3, 5), "rng": np.random.get_state(), "name": "x"}
    path = tmp_path / "sub" / "obj.pt"  # parent directory is created
    atomic_save(obj, path)
    back = torch.load(path, weights_only=False)
    torch.testing.assert_close(back["w"], obj["w"], rtol=0, atol=0)
    np.testing.assert_array_equal(back["rng"][1], obj["rng"][1])
    assert back["name"] == "x"
    assert _leftover_temps(tmp_path / "sub") == []


def test_atomic_save_crash_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "obj.pt"
    old = torch.randn(8)
    atomic_save({"w": old}, path)

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial archive bytes")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"w": torch.randn(8)}, path)
    monkeypatch.undo()
    torch.testing.assert_close(torch.load(path)["w"], old, rtol=0, atol=0)
    assert _leftover_temps(tmp_path) == []


def test_atomic_save_rejects_bad_path():
    with pytest.raises(TypeError, match="path"):
        atomic_save({}, 123)


# -------------------------------------------------------------------------------------- manager
def _fill(run_dir, keep=2, metrics=(5.0, 1.0, 3.0, None, 4.0)):
    mgr = CheckpointManager(run_dir, keep=keep)
    paths = [mgr.save(_state(i), kimg=i * 0.5, step=i * 100, metric=m)
             for i, m in enumerate(metrics, start=1)]
    return mgr, paths


def test_manager_rotation_keeps_newest_and_best(tmp_path):
    mgr, paths = _fill(tmp_path)
    assert [os.path.basename(p) for p in paths] == [f"ckpt-{s:08d}.pt" for s in (100, 200, 300,
                                                                                   400, 500)]
    # newest two (500, 400) plus the best (200, metric 1.0); 100 and 300 rotated away
    assert mgr.list() == [paths[4], paths[3], paths[1]]
    assert not os.path.exists(paths[0]) and not os.path.exists(paths[2])
    assert mgr.best() == paths[1]
    assert json.loads((tmp_path / "best.json").read_text()) == {
        "path": "ckpt-00000200.pt", "metric": 1.0, "step": 200}
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "path": "ckpt-00000500.pt", "step": 500, "kimg": 2.5}
    assert _leftover_temps(tmp_path) == []


def test_manager_metadata_and_load_latest(tmp_path):
    mgr, paths = _fill(tmp_path)
    state, path = mgr.load_latest()
    assert path == paths[4]
    assert state["step"] == 500 and state["kimg"] == 2.5 and state["metric"] == 4.0
    assert state["fastgan_version"] == fastgan.__version__
    assert isinstance(state["saved_at"], str) and "T" in state["saved_at"]
    torch.testing.assert_close(state["weights"], _state(5)["weights"], rtol=0, atol=0)
    assert state["config"] == {"lr": 0.002, "step_seen": 5}
    np.testing.assert_array_equal(state["numpy_rng"][1], _state(5)["numpy_rng"][1])


def test_manager_new_best_lets_old_best_rotate(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=1)
    p1 = mgr.save(_state(1), kimg=1.0, step=1, metric=2.0)
    p2 = mgr.save(_state(2), kimg=2.0, step=2, metric=3.0)
    assert mgr.list() == [p2, p1] and mgr.best() == p1
    p3 = mgr.save(_state(3), kimg=3.0, step=3, metric=float("nan"))  # NaN never becomes best
    assert mgr.list() == [p3, p1]
    p4 = mgr.save(_state(4), kimg=4.0, step=4, metric=0.5)  # new best: p1 is no longer protected
    assert mgr.list() == [p4] and mgr.best() == p4


def test_manager_load_latest_falls_back_past_corrupt_file(tmp_path):
    mgr, paths = _fill(tmp_path)
    _truncate(paths[4])
    with pytest.warns(UserWarning, match=r"ckpt-00000500\.pt.*falling back") as rec:
        state, path = mgr.load_latest()
    assert path == paths[3] and state["step"] == 400
    assert len(rec) == 1


def test_manager_all_corrupt_raises_naming_files(tmp_path):
    mgr, _ = _fill(tmp_path)
    for p in mgr.list():
        _truncate(p)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError) as err:
        mgr.load_latest()
    for p in mgr.list():
        assert os.path.basename(p) in str(err.value)


def test_manager_missing_required_keys_is_skipped(tmp_path):
    mgr, paths = _fill(tmp_path)
    atomic_save({"weights": torch.ones(1)}, mgr.path_for(600))  # no step / kimg metadata
    (tmp_path / "latest.json").write_text(json.dumps({"path": "ckpt-00000600.pt"}))
    with pytest.warns(UserWarning, match=r"ckpt-00000600\.pt"):
        _, path = mgr.load_latest()
    assert path == paths[4]


def test_manager_empty_dir(tmp_path):
    mgr = CheckpointManager(tmp_path / "not-created-yet")
    assert mgr.list() == [] and mgr.load_latest() is None and mgr.best() is None


def test_manager_ignores_unrelated_files_and_keeps_lower_step_save(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=1)
    (tmp_path / "ckpt-00000009.pt.tmp-4242").write_bytes(b"junk")
    (tmp_path / "other-00000100.pt").write_bytes(b"junk")
    high = mgr.save(_state(1), kimg=1.0, step=100)
    with pytest.warns(UserWarning, match="below the newest"):
        low = mgr.save(_state(2), kimg=0.5, step=50)
    assert mgr.list() == [high, low]  # the file just written is never rotated away


@pytest.mark.parametrize("kwargs, exc", [({"keep": 0}, ValueError), ({"keep": 1.5}, TypeError),
                                         ({"prefix": "a/b"}, ValueError)])
def test_manager_rejects_bad_arguments(tmp_path, kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        CheckpointManager(tmp_path, **kwargs)


def test_manager_save_rejects_bad_arguments(tmp_path):
    mgr = CheckpointManager(tmp_path)
    with pytest.raises(TypeError, match="state"):
        mgr.save([1, 2], kimg=1.0, step=1)
    with pytest.raises(ValueError, match="step"):
        mgr.save({}, kimg=1.0, step=-1)
    with pytest.raises(ValueError, match="kimg"):
        mgr.save({}, kimg=float("inf"), step=1)
    with pytest.raises(TypeError, match="metric"):
        mgr.save({}, kimg=1.0, step=1, metric="low")
    assert mgr.list() == []


def test_latest_prefers_latest_json_else_highest_step(tmp_path):
    mgr, paths = _fill(tmp_path)                   # latest.json -> step 500, the highest
    assert mgr.latest() == paths[4]
    # a run branched from step 400 saved last: latest.json names it, and so do latest() and
    # load_latest() (not the higher step 500 left by the earlier branch)
    (tmp_path / "latest.json").write_text(json.dumps({"path": "ckpt-00000400.pt", "step": 400}))
    assert mgr.latest() == paths[3]
    state, path = mgr.load_latest()
    assert path == paths[3] and state["step"] == 400
    assert resolve_resume("auto", tmp_path)[1] == paths[3]
    # an unusable pointer falls back to the highest step
    for bad in ({"path": "ckpt-00000100.pt"},            # rotated away
                {"path": "notes.pt"}, {"path": 3}, {}):   # not a checkpoint name
        (tmp_path / "latest.json").write_text(json.dumps(bad))
        assert mgr.latest() == paths[4], bad
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="latest.json"):
        assert mgr.latest() == paths[4]
    os.remove(tmp_path / "latest.json")
    assert mgr.latest() == paths[4]
    assert CheckpointManager(tmp_path / "none").latest() is None


def test_load_latest_falls_back_from_a_corrupt_latest_json_target(tmp_path):
    mgr, paths = _fill(tmp_path)
    (tmp_path / "latest.json").write_text(json.dumps({"path": "ckpt-00000400.pt"}))
    _truncate(paths[3])
    with pytest.warns(UserWarning, match=r"ckpt-00000400\.pt"):
        _, path = mgr.load_latest()
    assert path == paths[4]


# --------------------------------------------------------------------------------------- resume
def test_resolve_resume(tmp_path):
    run = tmp_path / "run"
    assert resolve_resume(None, run) is None
    assert resolve_resume("", run) is None
    assert resolve_resume("auto", run) is None  # fresh start: nothing saved yet
    mgr, paths = _fill(run)
    state, path = resolve_resume("auto", run)
    assert path == paths[4] and state["step"] == 500
    state, path = resolve_resume(paths[3], run)
    assert path == paths[3] and state["step"] == 400

    missing = str(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        resolve_resume(missing, run)
    _truncate(paths[3])
    with pytest.raises(RuntimeError, match=r"ckpt-00000400\.pt"):
        resolve_resume(paths[3], run)  # no silent fallback to another checkpoint
    with pytest.raises(TypeError, match="resume"):
        resolve_resume(3, run)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    atomic_save(torch.ones(2), tmp_path / "tensor.pt")
    with pytest.raises(RuntimeError, match="expected a dict"):
        load_checkpoint(tmp_path / "tensor.pt")
    # a CheckpointError (still a RuntimeError), which the CLI reports in one line
    (tmp_path / "garbage.pt").write_bytes(b"garbage\n")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(tmp_path / "garbage.pt")
    # required=(): a foreign dict loads, so the caller can say what it is
    atomic_save({"g_ema": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="required key"):
        load_checkpoint(tmp_path / "foreign.pt")
    assert load_checkpoint(tmp_path / "foreign.pt", required=()) == {"g_ema": {}}


def test_resolve_resume_expands_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    mgr, paths = _fill(tmp_path / "run")
    state, path = resolve_resume("~/run/ckpt-00000500.pt", tmp_path / "other")
    assert state["step"] == 500 and path == paths[4]


# ------------------------------------------------------------------------------------------ RNG
def _draw(gens=None):
    out = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    if gens:
        out += tuple(torch.rand(3, generator=g).tolist() for g in gens.values())
    return out


def test_rng_state_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = get_rng_state()
    first = _draw()
    _draw()  # move on
    atomic_save({"rng": state}, tmp_path / "rng.pt")
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=False)["rng"])
    assert _draw() == first
    assert first != _draw()  # the generators do advance


def test_generator_states_round_trip():
    gens = {"z": torch.Generator().manual_seed(7), "aug": torch.Generator().manual_seed(8)}
    states = get_generator_states(gens)
    first = {k: torch.randn(4, generator=g) for k, g in gens.items()}
    set_generator_states(gens, states)
    again = {k: torch.randn(4, generator=g) for k, g in gens.items()}
    for k in gens:
        torch.testing.assert_close(again[k], first[k], rtol=0, atol=0)
    assert not torch.equal(first["z"], first["aug"])


def test_rng_state_bad_input():
    with pytest.raises(TypeError, match="state"):
        set_rng_state([1, 2])
    with pytest.raises(ValueError, match="numpy"):
        set_rng_state({"python": random.getstate(), "torch": torch.get_rng_state()})
    with pytest.raises(TypeError, match=r"generators\['z'\]"):
        get_generator_states({"z": 3})
    with pytest.raises(ValueError, match="aug"):
        set_generator_states({"aug": torch.Generator()}, {})
