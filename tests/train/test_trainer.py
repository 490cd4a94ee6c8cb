"""The StyleGAN2 trainer on CPU: a tiny run on `shapes`, exact resume, SIGTERM, divergence,
corrupted-checkpoint fallback, bad data, config files.  Models are tiny (16^2, <= 32 channels) so
each run takes seconds."""
from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from fastgan.train.config import TrainConfig, load_config_file
from fastgan.train.trainer import Trainer, TrainingDiverged, _mbstd_group


def tiny(out, **kw) -> TrainConfig:
    """Every phase runs within 4 steps: R1 and path length every 2 steps, ADA updates every 2."""
    base = dict(data="shapes", resolution=16, batch=4, kimg=1.0, out=str(out), seed=3,
                z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2,
                r1_interval=2, pl_interval=2, ada_interval=2, ada_kimg=0.1, augment="ada",
                workers=0, tick_kimg=0.008, snap_kimg=0.012, image_kimg=0.012,
                metric_images=16, grid_size=4, tensorboard=False, progress=False,
                device="cpu", max_size=64)
    base.update(kw)
    return TrainConfig(**base)


def _tensors(trainer: Trainer) -> dict:
    out = {}
    for name in ("G", "D", "G_ema", "pl"):
        for k, v in getattr(trainer, name).state_dict().items():
            out[f"{name}.{k}"] = v
    for name in ("opt_G", "opt_D"):
        for pid, st in getattr(trainer, name).state_dict()["state"].items():
            for k, v in st.items():
                out[f"{name}.{pid}.{k}"] = torch.as_tensor(v)
    out["augment.p"] = torch.as_tensor(float(trainer.augment.p))
    return out


def test_tiny_run_writes_stats_grids_and_checkpoints(tmp_path):
    tr = Trainer(tiny(tmp_path))
    res = tr.run(max_steps=6)
    assert res["status"] == "done" and res["step"] == 6 and res["checkpoint"]
    recs = [json.loads(l) for l in open(tmp_path / "stats.jsonl")]
    ticks = [r for r in recs if "sec_per_kimg" in r]
    assert ticks and all(r["finite"] for r in ticks)
    for key in ("loss/G", "loss/D_real", "loss/D_fake", "r1/penalty", "pl/penalty",
                "augment/p", "img_per_s", "time_ms/G_main", "time_ms/D_reg"):
        assert any(key in r for r in ticks), key
    for r in ticks:
        for k, v in r.items():
            if k.startswith(("loss/", "r1/", "pl/")):
                assert v == v and abs(v) < 1e6, (k, v)
    assert any("metric/swd" in r for r in recs)
    assert (tmp_path / "grids" / "reals.png").exists()
    assert len(list((tmp_path / "grids").glob("fakes-*.png"))) >= 2
    ckpts = sorted(tmp_path.glob("ckpt-*.pt"))
    assert ckpts and json.loads((tmp_path / "latest.json").read_text())["step"] == 6
    state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    # config.json: the options as given (auto defaults stay None, so a reuse re-derives them);
    # config_resolved.json: what the run used, as stored in the checkpoint
    user = json.loads((tmp_path / "config.json").read_text())
    resolved = json.loads((tmp_path / "config_resolved.json").read_text())
    assert user["gamma"] is None and user["lr"] is None and user["ema_kimg"] is None
    assert "resume" not in user and user["batch"] == 4 and user["channel_max"] == 32
    assert resolved == state["config"] and resolved["gamma"] == pytest.approx(0.0002 * 16 ** 2 / 4)
    for k in ("G", "D", "G_ema", "opt_G", "opt_D", "augment", "rng", "config", "step",
              "cur_nimg", "G_kwargs", "D_kwargs"):
        assert k in state, k
    assert state["cur_nimg"] == 24
    # training moved the weights and G_ema trails G
    fresh = Trainer(tiny(tmp_path / "fresh"))
    moved = [not torch.equal(a, b) for a, b in zip(tr.G.parameters(), fresh.G.parameters())]
    assert all(moved)
    assert not all(torch.equal(a, b) for a, b in zip(tr.G.parameters(), tr.G_ema.parameters()))


def test_resume_is_bit_exact(tmp_path):
    a = Trainer(tiny(tmp_path / "a"))
    a.run(max_steps=7)
    b = Trainer(tiny(tmp_path / "b"))
    b.run(max_steps=3)                       # step 3: between ADA updates, after an R1 step
    del b
    # resumed from the run's own config.json (`--config run/config.json --resume auto`): the
    # unresolved options resolve to exactly the run's config
    opts = load_config_file(str(tmp_path / "b" / "config.json"))
    b = Trainer(TrainConfig.from_dict(dict(opts, resume="auto")))
    assert b.step == 3 and b.resumed_from and b.resumed_from.endswith("ckpt-00000003.pt")
    saved = torch.load(b.resumed_from, map_location="cpu", weights_only=False)["config"]
    assert dict(b.cfg.to_dict(), resume=None) == dict(saved, resume=None)
    b.run(max_steps=4)
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    diff = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not diff, diff[:5]
    assert b.step == a.step == 7
    # and the comparison can fail: one more step changes the weights
    b.run(max_steps=1)
    assert not torch.equal(_tensors(b)["G.synthesis.b16.conv0.weight"],
                           ta["G.synthesis.b16.conv0.weight"])


def test_sigterm_saves_a_loadable_checkpoint_and_stops(tmp_path):
    tr = Trainer(tiny(tmp_path, snap_kimg=100.0, image_kimg=100.0, metric_images=0))
    real_step = tr.train_step

    def step_then_signal():
        real_step()
        if tr.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    tr.train_step = step_then_signal
    res = tr.run(max_steps=50)
    assert res["status"] == "interrupted" and res["step"] == 2
    state = torch.load(res["checkpoint"], map_location="cpu", weights_only=False)
    assert state["step"] == 2
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler) or \
        callable(signal.getsignal(signal.SIGTERM))
    resumed = Trainer(tiny(tmp_path, resume="auto", metric_images=0))
    assert resumed.step == 2
    assert "at kimg 0.008;" in resumed.describe()     # not "at kimg 0.0"


def test_a_run_dir_holding_checkpoints_is_not_reused_without_resume(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    run.mkdir()
    other.mkdir()
    (run / "ckpt-00000010.pt").write_bytes(b"an older run's checkpoint")
    (other / "ckpt-00000002.pt").write_bytes(b"another run's checkpoint")
    before = sorted(os.listdir(run))
    with pytest.raises(FileExistsError, match=r"already holds checkpoints \(ckpt-00000010\.pt\)"
                       r".*--resume auto.*another --out"):
        Trainer(tiny(run))
    with pytest.raises(FileExistsError, match="a resume from"):   # mixing in a third run
        Trainer(tiny(run, resume=str(other / "ckpt-00000002.pt")))
    assert sorted(os.listdir(run)) == before                    # nothing was written
    # its own checkpoints may be resumed (here: the junk file fails to load, past the check)
    from fastgan.train.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="ckpt-00000010"):
        Trainer(tiny(run, resume=str(run / "ckpt-00000010.pt")))
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="ckpt-00000010"):
        Trainer(tiny(run, resume="auto"))
    # a folder without checkpoints (logs of a run that never saved) is fine
    assert Trainer(tiny(other / "sub", metric_images=0)).step == 0


def test_unusable_impl_fails_before_any_file_is_written(tmp_path):
    from fastgan.ops import available_impls
    if available_impls("cpu")["triton"]:
        pytest.skip("triton runs on CPU here (TRITON_INTERPRET=1)")
    with pytest.raises(ValueError, match="impl 'triton' cannot run on cpu"):
        Trainer(tiny(tmp_path / "run", impl="triton"))
    assert not (tmp_path / "run").exists()


def test_corrupted_newest_checkpoint_falls_back(tmp_path):
    Trainer(tiny(tmp_path, metric_images=0)).run(max_steps=6)   # checkpoints at steps 3 and 6
    newest = tmp_path / "ckpt-00000006.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="ckpt-00000006"):
        tr = Trainer(tiny(tmp_path, resume="auto", metric_images=0))
    assert tr.step == 3


def test_nan_loss_stops_with_a_clear_message_after_saving(tmp_path):
    tr = Trainer(tiny(tmp_path, metric_images=0, tick_kimg=0.004))
    tr.run(max_steps=3)
    with torch.no_grad():
        tr.D.b4.out.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN/Inf") as e:
        tr.run(max_steps=3)
    assert "loss/" in str(e.value) and "last good checkpoint" in str(e.value)
    saved = list(tmp_path.glob("diverged-*.pt"))
    assert len(saved) == 1
    # --resume auto ignores the diverged state and takes the last good checkpoint
    assert Trainer(tiny(tmp_path, resume="auto", metric_images=0)).step == 3


def test_conditional_and_diffaugment_and_bf16(tmp_path):
    tr = Trainer(tiny(tmp_path, cond=True, augment="diffaug", precision="bf16", metric_images=0))
    assert tr.c_dim == tr.dataset.num_classes > 0
    res = tr.run(max_steps=2)
    assert res["status"] == "done"
    recs = [json.loads(l) for l in open(tmp_path / "stats.jsonl")]
    assert all(r["finite"] for r in recs if "finite" in r)


def test_ada_at_high_p_regularises_through_the_augmentation(tmp_path):
    tr = Trainer(tiny(tmp_path, metric_images=0))
    tr.augment.set_p(0.8)
    seen = []
    real_aug = tr.augment.forward

    def spy(x, generator=None):
        y = real_aug(x, generator)
        seen.append(not torch.equal(x, y))
        return y

    tr.augment.forward = spy
    assert tr.run(max_steps=2)["status"] == "done"
    assert sum(seen) >= 4          # G_main, D_main (fake, real), R1: the images were augmented
    assert 0 < float(tr.augment.p) <= 1


def test_bad_data_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        Trainer(tiny(tmp_path, data=str(tmp_path / "no-such-dir")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        Trainer(tiny(tmp_path, data=str(empty)))
    with pytest.raises(ValueError, match="no class labels"):
        from fastgan.data import open_dataset
        ds = open_dataset("shapes", resolution=16)
        ds.num_classes = 0
        Trainer(tiny(tmp_path, cond=True), dataset=ds)


def test_config_validation_defaults_and_files(tmp_path):
    with pytest.raises(ValueError, match="resolution"):
        TrainConfig(resolution=24).validate()
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="flip").validate()
    with pytest.raises(ValueError, match="unknown option"):
        TrainConfig.from_dict({"batchsize": 3})
    c = TrainConfig(batch=32).resolved(1024)
    assert (c.channel_base, c.lr, c.mapping_layers) == (32768, 0.002, 8)
    assert c.gamma == pytest.approx(0.0002 * 1024 ** 2 / 32) and c.ema_kimg == 10
    c = TrainConfig(batch=16).resolved(32)
    assert (c.channel_base, c.lr, c.mapping_layers, c.mbstd_group) == (16384, 0.0025, 2, 4)
    with pytest.raises(ValueError, match="divisible"):
        TrainConfig(batch=6).resolved(32, world_size=4)
    (tmp_path / "c.yaml").write_text("batch: 8\nr1-interval: 4\nbetas: [0.1, 0.9]\n")
    (tmp_path / "c.json").write_text(json.dumps({"batch": 8, "kimg": 2}))
    assert load_config_file(str(tmp_path / "c.yaml")) == {"batch": 8, "r1_interval": 4,
                                                          "betas": [0.1, 0.9]}
    assert TrainConfig.from_dict(load_config_file(str(tmp_path / "c.json"))).kimg == 2
    with pytest.raises(ValueError, match="yaml"):
        (tmp_path / "c.txt").write_text("x")
        load_config_file(str(tmp_path / "c.txt"))
    assert [_mbstd_group(b, 4) for b in (1, 2, 3, 4, 6, 8)] == [1, 2, 3, 4, 3, 4]


def test_compiled_passes_match_eager(tmp_path):
    """--compile: G's synthesis and D compiled (inductor on CPU) for the passes without double
    backward.  With inductor's RNG replaced by eager's (the noise inputs), the losses of the
    first steps (R1 and path length included) match eager.  (Weights after Adam's first step are
    not compared: for zero-initialised biases that step is +-lr by the sign of a ~0 gradient.)"""
    import torch._inductor.config as inductor_config

    # config.patch, not monkeypatch: monkeypatch's undo deletes the option (inductor's config
    # module reports no prior value), and every later torch.compile in the process then fails
    with inductor_config.patch(fallback_random=True):
        kw = dict(metric_images=0, augment="none", precision="fp32")
        a = Trainer(tiny(tmp_path / "a", compile=False, **kw))
        b = Trainer(tiny(tmp_path / "b", compile=True, **kw))
        assert b.D_fast is not b.D and b.synthesis_fast is not b.G.synthesis
        for _ in range(2):
            a.train_step()
            b.train_step()
    la, _, _ = a.stats.collect()
    lb, _, _ = b.stats.collect()
    assert la.keys() == lb.keys() and {"loss/G", "loss/D_real", "r1/penalty"} <= la.keys()
    for k in la:
        assert lb[k] == pytest.approx(la[k], rel=1e-3, abs=1e-5), k
