"""The ``fastgan`` command line: help, train -> generate round trip, prepare, config files,
clear errors for bad input, and a 2-process gloo DDP run (torchrun) whose ranks stay in sync."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fastgan.cli import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--resolution", "16", "--batch", "4", "--z-dim", "32", "--w-dim", "32",
        "--channel-base", "256", "--channel-max", "32", "--mapping-layers", "2",
        "--r1-interval", "2", "--pl-interval", "2", "--workers", "0", "--device", "cpu",
        "--tick-kimg", "0.008", "--snap-kimg", "0.008", "--image-kimg", "0.008",
        "--metric-images", "0", "--grid-size", "4", "--tensorboard", "no", "--progress", "no",
        "--max-size", "32"]


def test_help_lists_every_command_and_the_key_options(capsys):
    for cmd, needles in {"train": ["--data", "--resolution", "--batch", "--kimg", "--out",
                                   "--cond", "--gpus", "--resume", "--config", "torchrun"],
                         "generate": ["--ckpt", "--n", "--truncation", "--seeds", "--out",
                                      "mixing", "interpolate"],
                         "prepare": ["--resolution", "dest"],
                         "bench": ["stylegan2", "penalties"]}.items():
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        for n in needles:
            assert n in out, (cmd, n)
    assert main([]) == 2


def test_train_then_generate_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--data", "shapes", "--kimg", "1", "--out", str(run), "--max-steps", "2",
               *TINY])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "done" and result["step"] == 2
    assert (run / "config.json").exists() and list(run.glob("ckpt-*.pt"))

    grid = tmp_path / "grid.png"
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-5", "--truncation", "0.7",
                 "--out", str(grid), "--device", "cpu"]) == 0
    im = np.asarray(Image.open(grid))
    assert im.shape == (2 * 16, 3 * 16, 3) and im.std() > 0          # 6 images, 3 per row
    # same seeds -> same images (seeded z, constant noise)
    grid2 = tmp_path / "grid2.png"
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-5", "--truncation", "0.7",
                 "--out", str(grid2), "--device", "cpu"]) == 0
    assert np.array_equal(im, np.asarray(Image.open(grid2)))
    # --n with --seeds takes the first n seeds: the first row of the 6-image grid
    grid3 = tmp_path / "grid3.png"
    assert main(["generate", "--ckpt", str(run), "--n", "3", "--seeds", "0-5", "--truncation",
                 "0.7", "--nrow", "3", "--out", str(grid3), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(grid3)), im[:16])
    assert main(["generate", "--ckpt", str(run), "--n", "9", "--seeds", "0-5",
                 "--out", str(grid3), "--device", "cpu"]) == 2

    mix = tmp_path / "mix.png"
    assert main(["generate", "--ckpt", str(run), "--mode", "mixing", "--seeds", "0-2",
                 "--col-seeds", "5-8", "--out", str(mix), "--device", "cpu"]) == 0
    assert np.asarray(Image.open(mix)).shape == (4 * 16, 5 * 16, 3)

    frames = tmp_path / "frames"
    assert main(["generate", "--ckpt", str(run), "--mode", "interpolate", "--seeds", "0,1,2",
                 "--frames", "3", "--out", str(frames), "--device", "cpu"]) == 0
    assert len(list(frames.glob("*.png"))) == 2 * 3 + 1

    # resume auto continues from step 2
    rc = main(["train", "--data", "shapes", "--kimg", "1", "--out", str(run), "--max-steps", "1",
               "--resume", "auto", *TINY])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    assert "ckpt-00000002.pt at kimg 0.008;" in (run / "log.txt").read_text()


def test_config_file_and_command_line_precedence(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: shapes\nkimg: 1\nbatch: 4\nseed: 7\nstyle-mixing: 0.5\n")
    from fastgan.cli import _train_config
    ns = build_parser().parse_args(["train", "--config", str(cfg), "--seed", "9"])
    c = _train_config(ns)
    assert (c.data, c.kimg, c.batch, c.seed, c.style_mixing) == ("shapes", 1, 4, 9, 0.5)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not_an_option": 1}))
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown option" in capsys.readouterr().err


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"),
                 *TINY]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(tmp_path / "none.pt"), "--out", "x.png"]) == 2
    assert "none.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--precision", "fp8"])


def test_prepare_writes_a_dataset_zip(tmp_path, capsys):
    dest = tmp_path / "shapes.zip"
    assert main(["prepare", "shapes", str(dest), "--resolution", "16", "--cond",
                 "--max-images", "12"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 12 and dest.exists()
    from fastgan.data import open_dataset
    ds = open_dataset(str(dest), use_labels=True)
    src = open_dataset("shapes", resolution=16)
    assert len(ds) == 12 and ds.resolution == 16 and ds.num_classes == src.num_classes
    img, label = ds[5]
    ref_img, ref_label = src[5]
    assert torch.equal(img, ref_img) and label == ref_label


def test_python_dash_m_fastgan_runs():
    r = subprocess.run([sys.executable, "-m", "fastgan", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "train" in r.stdout and "generate" in r.stdout


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "fastgan", "train", "--gpus", "2", "--data", "shapes",
           "--kimg", "1", "--out", str(run), "--max-steps", "3", *TINY]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (run / "log.txt").read_text()
    assert "batch 4 (2 x 2)" in log
    assert "DistributedDataParallel" in log and "ranks in sync: 2 processes" in log
    state = torch.load(sorted(run.glob("ckpt-*.pt"))[-1], map_location="cpu", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 3 and state["cur_nimg"] == 12


def test_bench_command_runs_a_suite(tmp_path):
    assert main(["bench", "stylegan2", "--device", "cpu", "--res", "16", "--parts", "d_fwd",
                 "--impls", "ref", "--out", str(tmp_path)]) == 0
    (js,) = tmp_path.glob("*-stylegan2.json")
    rows = json.loads(js.read_text())["rows"]
    assert rows and all(r["part"] == "d_fwd" and r["status"] == "ok" for r in rows)


# ------------------------------------------------------------------------------------------------
# robustness: run folders, one-line errors, config reuse, '~', generate outputs, usage
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One 2-step run shared by the tests below (none of them changes it)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--data", "shapes", "--kimg", "1", "--out", str(run),
                 "--max-steps", "2", *TINY]) == 0
    return run


def _snapshot(d) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in d.iterdir()}


def _one_line_error(capsys, cmd: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(f"fastgan {cmd}: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_fresh_train_into_a_run_dir_with_checkpoints_is_refused(tiny_run, capsys):
    before = _snapshot(tiny_run)
    assert main(["train", "--data", "shapes", "--kimg", "1", "--out", str(tiny_run),
                 *TINY]) == 2
    err = _one_line_error(capsys, "train")
    assert "already holds checkpoints" in err and "--resume auto" in err
    assert _snapshot(tiny_run) == before


def test_generate_ckpt_dir_takes_the_checkpoint_latest_json_names(tmp_path):
    from fastgan.cli import _resolve_ckpt
    from fastgan.train.checkpoint import CheckpointManager
    mgr = CheckpointManager(tmp_path)
    high = mgr.save({}, kimg=0.04, step=10)
    with pytest.warns(UserWarning, match="below the newest"):
        low = mgr.save({}, kimg=0.008, step=2)   # the last save, a lower step
    assert _resolve_ckpt(str(tmp_path)) == low
    (tmp_path / "latest.json").unlink()
    assert _resolve_ckpt(str(tmp_path)) == high


def test_expected_failures_are_one_line_errors(tiny_run, tmp_path, capsys):
    from fastgan.ops import available_impls
    out = tmp_path / "r"
    train = ["train", "--data", "shapes", "--kimg", "1", "--out", str(out), *TINY]
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"garbage\n")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("data: [shapes\nresolution: 8\n")
    (tmp_path / "dir.zip").mkdir()
    cases = [(train + ["--device", "bogus"], "device must be cpu, cuda or cuda:N"),
             (train + ["--resume", str(garbage)], "could not be loaded"),
             (train + ["--mbstd-group", "0"], "mbstd_group must be >= 1"),
             (["train", "--config", str(bad_yaml)], "not valid YAML"),
             (["generate", "--ckpt", str(garbage), "--out", str(tmp_path / "g.png")],
              "could not be loaded"),
             (["generate", "--ckpt", str(tiny_run), "--device", "bogus",
               "--out", str(tmp_path / "g.png")], "device must be"),
             (["prepare", "shapes", str(tmp_path / "dir.zip"), "--resolution", "8"],
              "is a folder")]
    if not torch.cuda.is_available():
        cases += [(train + ["--device", "cuda"], "CUDA is not available"),
                  (["generate", "--ckpt", str(tiny_run), "--device", "cuda",
                    "--out", str(tmp_path / "g.png")], "CUDA is not available")]
    if not available_impls("cpu")["triton"]:
        cases += [(train + ["--impl", "triton"], "impl 'triton' cannot run on cpu")]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        assert needle in _one_line_error(capsys, argv[0]), argv
        assert not out.exists(), argv      # checked before the run folder is created
    assert not (tmp_path / "g.png").exists()


def test_generate_names_rosinality_and_foreign_checkpoints(tmp_path, capsys):
    torch.save({"g": {}, "d": {}, "g_ema": {}, "latent_avg": torch.zeros(4)},
               tmp_path / "550000.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    for name, needle in (("550000.pt", "fastgan.models.load_rosinality(path)"),
                         ("other.pt", "not a fastgan training checkpoint")):
        assert main(["generate", "--ckpt", str(tmp_path / name), "--device", "cpu",
                     "--out", str(tmp_path / "g.png")]) == 2
        assert needle in _one_line_error(capsys, "generate")


def test_reused_config_json_rederives_the_automatic_defaults(tiny_run):
    from fastgan.cli import _train_config
    user = json.loads((tiny_run / "config.json").read_text())
    resolved = json.loads((tiny_run / "config_resolved.json").read_text())
    assert user["gamma"] is None and resolved["gamma"] == pytest.approx(0.0002 * 16 ** 2 / 4)
    ns = build_parser().parse_args(["train", "--config", str(tiny_run / "config.json"),
                                    "--resolution", "8", "--batch", "8"])
    c = _train_config(ns).resolved(8)
    assert c.gamma == pytest.approx(0.0002 * 8 ** 2 / 8) and c.ema_kimg == 2.5
    assert (c.channel_max, c.z_dim, c.data) == (32, 32, "shapes")   # the options set stay


def test_tilde_is_expanded_in_cli_paths(tiny_run, monkeypatch, capsys):
    from fastgan.cli import _train_config
    home = tiny_run.parent
    monkeypatch.setenv("HOME", str(home))
    (home / "c.yaml").write_text("data: ~/photos\nkimg: 1\n")
    c = _train_config(build_parser().parse_args(["train", "--config", "~/c.yaml",
                                                 "--out=~/runs/x", "--resume", "~/r.pt"]))
    assert (c.data, c.out, c.resume) == (str(home / "photos"), str(home / "runs" / "x"),
                                         str(home / "r.pt"))
    assert main(["generate", "--ckpt", "~/run", "--n", "1", "--out", "~/tilde.png",
                 "--device", "cpu"]) == 0
    assert (home / "tilde.png").is_file()
    (home / "tilde.png").unlink()


def test_generate_outputs_interpolate_replaces_stale_frames(tiny_run, tmp_path, capsys):
    frames = tmp_path / "frames"
    gen = ["generate", "--ckpt", str(tiny_run), "--device", "cpu", "--mode", "interpolate"]
    assert main(gen + ["--seeds", "0,1,2", "--frames", "2", "--out", str(frames)]) == 0
    assert len(list(frames.glob("frame_*.png"))) == 5
    foreign = ["notes.txt", "frame_final.png", "frame_00007.png.bak", "frame_0000009.png"]
    for name in foreign:
        (frames / name).write_text("not ours")
    capsys.readouterr()
    assert main(gen + ["--seeds", "0,1", "--frames", "1", "--out", str(frames)]) == 0
    assert "removed 3 stale frame(s)" in capsys.readouterr().out
    assert sorted(os.listdir(frames)) == sorted(["frame_00000.png", "frame_00001.png", *foreign])
    # a .png for a folder mode, or a folder / non-png for a one-file mode: an error, no output
    for mode, out in (("interpolate", "walk.png"), ("images", "imgs.PNG"), ("grid", "frames"),
                      ("mixing", "mix.jpg")):
        assert main(["generate", "--ckpt", str(tiny_run), "--mode", mode, "--seeds", "0,1",
                     "--out", str(tmp_path / out)]) == 2
        assert "--out" in _one_line_error(capsys, "generate"), mode
    assert sorted(os.listdir(tmp_path)) == ["frames"]


def test_train_usage_data_required_and_mistyped_flags(tmp_path, capsys):
    for argv, needle in ((["train", "--kimg", "1"], "required: --data"),
                         (["train", "--data", "shapes", "--bogus", "1"],
                          "unrecognized arguments: --bogus 1"),
                         (["generate", "--ckpt", "c", "--out", "g.png", "--nope"],
                          "unrecognized arguments: --nope")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"usage: fastgan {argv[0]}" in err and needle in err, err
    (tmp_path / "nodata.yaml").write_text("kimg: 1\n")
    with pytest.raises(SystemExit):
        main(["train", "--config", str(tmp_path / "nodata.yaml")])
    assert "--data" in capsys.readouterr().err


def test_seed_parsing_and_range(tiny_run):
    from fastgan.generate import load_generator, parse_seeds, seed_latents
    assert parse_seeds("0-3, 7,10 - 11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_seeds("4294967295") == [2 ** 32 - 1]
    with pytest.raises(ValueError, match=r"range '4-1' is reversed; write '1-4'"):
        parse_seeds("4-1")
    for bad in ("-1", "0-4294967296", "4294967296"):
        with pytest.raises(ValueError, match=r"outside \[0, 2\^32\)"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_seeds("1-2-3")
    G = load_generator(str(tiny_run / "ckpt-00000002.pt"), device="cpu")
    assert not torch.equal(seed_latents(G, [0]), seed_latents(G, [1]))
    with pytest.raises(ValueError, match=r"outside \[0, 2\^32\)"):
        seed_latents(G, [2 ** 32])       # was silently seed 0


def test_mbstd_group_help_matches_what_d_gets(capsys):
    from fastgan.train.config import TrainConfig
    from fastgan.train.trainer import model_kwargs
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "largest divisor of the per-GPU batch that is <= N (default 4)" in help_text
    group = lambda want, batch: model_kwargs(  # noqa: E731
        TrainConfig(mbstd_group=want, batch=batch).resolved(16), 3, 0, batch)[1][
        "mbstd_group_size"]
    assert (group(None, 8), group(None, 6), group(3, 4), group(8, 4), group(1, 4)) == \
        (4, 3, 2, 4, 1)
