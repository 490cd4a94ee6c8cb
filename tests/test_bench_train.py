"""CPU smoke tests of bench/train.py (``python -m bench.train``): the tiny training run writes
JSON / Markdown / PNG with consistent throughput numbers, a failing or out-of-memory variant
becomes a row without stopping the others, speed-ups and the target line follow the rows, and
the synthetic dataset is fixed per index."""
from __future__ import annotations

import json

import pytest
import torch

from bench import train as B
from fastgan.train.trainer import PHASES


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread, as the CLI uses on CPU (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rows(tmp_path) -> dict[str, dict]:
    (js,) = tmp_path.glob("*-train.json")
    return {r["variant"]: r for r in json.loads(js.read_text())["rows"]}


def test_cpu_run_writes_consistent_rows_tables_and_chart(tmp_path):
    assert B.main(["--device", "cpu", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path)
    assert set(rows) == set(B.CPU_VARIANTS)
    for name, r in rows.items():
        assert r["status"] == "ok", r
        assert (r["res"], r["batch"], r["steps"], r["warmup"]) == (16, 4, 4, 2)
        assert (r["channel_base"], r["channel_max"], r["z_dim"]) == (256, 32, 32)
        assert r["img_per_s"] > 0 and r["seconds"] > 0
        assert r["sec_per_kimg"] == pytest.approx(1000 / r["img_per_s"], rel=1e-6)
        assert r["img_per_s"] == pytest.approx(r["steps"] * r["batch"] / r["seconds"], rel=1e-6)
        assert r["peak_gib"] is None and r["finite"] is True
        assert 0.0 <= r["ada_p"] < 0.01  # ADA bookkeeping ran, p stayed near 0
        # R1 and path length every 2nd step: every phase ran within the 4 timed steps
        assert set(r["phase_ms"]) == set(PHASES)
        assert all(r["phase_ms"][p] > 0 for p in PHASES), r["phase_ms"]
        # the phases happen inside the timed steps: their sum cannot exceed the step time
        assert sum(r["phase_ms"].values()) <= 1e3 * r["seconds"] / r["steps"] * 1.001
    assert rows["ref-fp32"]["x_ref_fp32"] == pytest.approx(1.0)
    assert rows["ref-fp32"]["impl"] == "ref" and rows["fastgan-fp32"]["impl"] == "auto"
    fast = rows["fastgan-fp32"]
    assert fast["x_ref_fp32"] == pytest.approx(fast["img_per_s"] / rows["ref-fp32"]["img_per_s"])
    assert fast["channels_last"] is True and rows["ref-fp32"]["channels_last"] is False

    md = next(tmp_path.glob("*-train.md")).read_text()
    assert "## 16^2 · batch 4" in md and "| ref-fp32 | ref | fp32 |" in md
    assert "not measured here" in md  # no 1024^2 rows in the smoke set
    assert next(tmp_path.glob("*-train.png")).stat().st_size > 1000


def _failing_trainer(monkeypatch, fail_impl, exc):
    """Make Trainer construction raise ``exc`` for variants with impl ``fail_impl``."""
    real = B.Trainer

    def trainer(cfg, dataset=None):
        if cfg.impl == fail_impl:
            raise exc
        return real(cfg, dataset=dataset)

    monkeypatch.setattr(B, "Trainer", trainer)


def test_an_error_in_one_variant_becomes_a_row_and_the_others_run(tmp_path, monkeypatch):
    _failing_trainer(monkeypatch, "ref", RuntimeError("kernel exploded"))
    assert B.main(["--device", "cpu", "--out", str(tmp_path)]) == 1  # an error fails the command
    rows = _rows(tmp_path)
    assert rows["ref-fp32"]["status"] == "error"
    assert "RuntimeError: kernel exploded" in rows["ref-fp32"]["reason"]
    assert rows["ref-fp32"]["img_per_s"] is None
    assert rows["fastgan-fp32"]["status"] == "ok" and rows["fastgan-fp32"]["img_per_s"] > 0
    assert rows["fastgan-fp32"]["x_ref_fp32"] is None  # no baseline to compare with
    assert "kernel exploded" in next(tmp_path.glob("*-train.md")).read_text()


def test_out_of_memory_is_an_oom_row_and_fp16_on_cpu_a_skip(tmp_path, monkeypatch):
    _failing_trainer(monkeypatch, "ref", torch.OutOfMemoryError("CUDA out of memory"))
    assert B.main(["--device", "cpu", "--out", str(tmp_path), "--variants",
                   "ref-fp32,fastgan-fp16"]) == 0  # oom and skip are outcomes, not failures
    rows = _rows(tmp_path)
    assert rows["ref-fp32"]["status"] == "oom" and "batch 4" in rows["ref-fp32"]["reason"]
    assert rows["fastgan-fp16"]["status"] == "skip" and "CUDA" in rows["fastgan-fp16"]["reason"]


def _row(variant: str, img_per_s, res: int = 1024, batch: int = 32, **kw) -> dict:
    return dict(variant=variant, res=res, batch=batch, status="ok" if img_per_s else "error",
                img_per_s=img_per_s, channel_base=32768, channel_max=512, z_dim=512, w_dim=512,
                mapping_layers=8, **kw)


def test_speedups_merge_and_target_line_follow_the_rows():
    base = _row("ref-fp32", 10.0)
    assert "not measured" in B.target_status(B.add_speedups([base]))
    met = B.add_speedups([base, _row("fastgan", 25.0)])
    assert met[1]["x_ref_fp32"] == pytest.approx(2.5)
    assert "**met** (2.50x)" in B.target_status(met)
    assert "**not met** (1.50x)" in B.target_status(B.add_speedups([base, _row("fastgan", 15.0)]))
    # another resolution or batch is not compared with this baseline
    other = B.add_speedups([base, _row("fastgan", 30.0, res=256), _row("fastgan", 30.0, batch=16)])
    assert [r["x_ref_fp32"] for r in other[1:]] == [None, None]
    # a same-day rerun of one variant replaces its row and is compared with the earlier baseline
    merged = B.merge_rows([base, _row("fastgan", 12.0, tag="old")], [_row("fastgan", 40.0, tag="new")])
    assert [(r["variant"], r.get("tag")) for r in merged] == [("ref-fp32", None), ("fastgan", "new")]
    assert merged[1]["x_ref_fp32"] == pytest.approx(4.0)


def test_configs_and_variant_configs():
    (cpu,) = B.configs("cpu", False, None, None, None, None)
    assert (cpu.res, cpu.batch, cpu.warmup, cpu.steps) == (16, 4, 2, 4)
    full = B.configs("cuda", False, None, None, None, None)
    quick = B.configs("cuda", True, None, 16, None, 3)
    assert [(c.res, c.batch, c.warmup, c.steps) for c in full] == [(256, 32, 16, 32), (1024, 32, 16, 32)]
    assert [(c.res, c.batch, c.warmup, c.steps) for c in quick] == [(256, 16, 8, 3), (1024, 16, 8, 3)]
    cfg = B.make_config("fastgan", full[1], "cpu", "/tmp/unused")
    assert (cfg.impl, cfg.precision, cfg.channels_last, cfg.augment) == (None, "bf16", True, "ada")
    assert (cfg.workers, cfg.metric_images, cfg.tensorboard, cfg.progress) == (0, 0, False, False)
    resolved = cfg.resolved(1024)
    assert (resolved.channel_base, resolved.mapping_layers, resolved.r1_interval) == (32768, 8, 16)
    ref = B.make_config("ref-fp32", cpu, "cpu", "/tmp/unused")
    assert (ref.impl, ref.precision, ref.channels_last, ref.channel_base) == ("ref", "fp32", False, 256)
    with pytest.raises(ValueError, match="variant must be one of"):
        B.make_config("fastest", cpu, "cpu", "/tmp/unused")


def test_synthetic_dataset_is_fixed_per_index_and_checks_its_arguments():
    ds, again, other = B.SyntheticDataset(8, size=5), B.SyntheticDataset(8, size=5), \
        B.SyntheticDataset(8, size=5, seed=1)
    assert (len(ds), ds.resolution, ds.num_channels, ds.num_classes, ds.name) == \
        (5, 8, 3, 0, "synthetic")
    img, label = ds[3]
    assert img.dtype == torch.uint8 and img.shape == (3, 8, 8) and label == 0
    assert img.float().std() > 10  # random pixels, not a constant image
    assert torch.equal(img, again[3][0])
    assert torch.equal(ds[-1][0], ds[4][0]) and not torch.equal(ds[0][0], ds[1][0])
    assert not torch.equal(img, other[3][0])
    with pytest.raises(IndexError, match="out of range"):
        ds[5]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1.5]
    with pytest.raises(ValueError, match="resolution must be a power of two"):
        B.SyntheticDataset(12)
    with pytest.raises(ValueError, match="num_channels"):
        B.SyntheticDataset(8, num_channels=2)
    with pytest.raises(TypeError, match="size must be an int"):
        B.SyntheticDataset(8, size=2.0)


@pytest.mark.parametrize("argv", [["--variants", "fastest"], ["--steps", "0"], ["--warmup", "-1"],
                                  ["--res", "12"], ["--batch", "0"]])
def test_bad_options_are_refused(argv, tmp_path):
    with pytest.raises(SystemExit) as e:
        B.main(["--device", "cpu", "--out", str(tmp_path), *argv])
    assert e.value.code == 2
    assert not list(tmp_path.iterdir())
