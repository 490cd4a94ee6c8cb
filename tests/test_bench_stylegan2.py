"""CPU smoke tests of bench/stylegan2.py (``python -m bench.stylegan2``): the reduced set runs and
writes JSON / Markdown / PNG, same-day reruns merge, bad options are refused, and the
correctness check against impl='ref' is not vacuous (different weights are caught and flagged)."""
from __future__ import annotations

import json

import pytest
import torch

from bench import stylegan2 as B

TINY = B.ModelConfig(res=8, batch=4, channel_base=64, channel_max=16, z_dim=32, w_dim=32,
                     mapping_layers=2)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread, as the CLI uses on CPU: on a busy 2-core box two threads are often
    ten times slower for these tiny models."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _doc(tmp_path) -> dict:
    (js,) = tmp_path.glob("*-stylegan2.json")
    return json.loads(js.read_text())


def test_cpu_run_writes_results_and_merges_reruns(tmp_path):
    assert B.main(["--device", "cpu", "--res", "16", "--out", str(tmp_path)]) == 0
    doc = _doc(tmp_path)
    assert doc["device_kind"] == "cpu" and doc["date"]
    assert "cudnn_allow_tf32" in doc and "cuda_matmul_allow_tf32" in doc
    rows = doc["rows"]
    assert {(r["part"], r["impl"]) for r in rows} == {(p, i) for p in B.PARTS for i in B.IMPLS}
    for r in rows:
        assert (r["res"], r["batch"], r["mode"]) == (16, 4, "fp32")
        if r["impl"] == "ref":
            assert r["status"] == "ok", r
            assert r["ms"] > 0 and r["img_s"] == pytest.approx(4 / (r["ms"] * 1e-3))
            assert r["x_ref"] == pytest.approx(1.0) and r["peak_gib"] is None
        else:  # no GPU: the fused backends are recorded as skips, with why
            assert r["status"] == "skip" and r["reason"] and r["ms"] is None, r
    md = next(tmp_path.glob("*-stylegan2.md")).read_text()
    for part in B.PARTS:
        assert f"## {part} · 16^2 · fp32" in md
    png = next(tmp_path.glob("*-stylegan2.png"))
    assert png.stat().st_size > 1000

    # a same-day rerun of one part replaces its rows and keeps the others
    old_ms = {r["part"]: r["ms"] for r in rows if r["impl"] == "ref"}
    assert B.main(["--device", "cpu", "--res", "16", "--parts", "d_fwd", "--impls", "ref",
                   "--out", str(tmp_path)]) == 0
    merged = _doc(tmp_path)["rows"]
    assert len(merged) == len(rows)
    new_ms = {r["part"]: r["ms"] for r in merged if r["impl"] == "ref"}
    assert {p for p in B.PARTS if new_ms[p] == old_ms[p]} >= {"g_fwd", "r1_step", "g_step"}


def test_compare_reports_different_weights_and_accepts_equal_ones():
    inputs = B.make_inputs(TINY, "cpu")
    w0, w1 = B.master_weights(TINY, seed=0), B.master_weights(TINY, seed=5)
    ref = B.build_models(TINY, "fp32", "ref", w0, "cpu")
    same = B.build_models(TINY, "fp32", "ref", w0, "cpu")
    other = B.build_models(TINY, "fp32", "ref", w1, "cpu")
    for part in B.PARTS:
        assert B.compare_models(part, "fp32", ref, same, inputs, "cpu") < 1e-6, part
        assert B.compare_models(part, "fp32", ref, other, inputs, "cpu") > 0.1, part


def test_max_rel_err_judges_each_tensor_on_its_own_scale():
    big, small = torch.tensor([100.0, -50.0]), torch.tensor([1e-2, 2e-2])
    want = ([big], [big, small])
    assert B.max_rel_err(([big], [big, small]), want) == 0.0
    # a 10% error in the small gradient counts although it is tiny next to the big one
    assert B.max_rel_err(([big], [big, small * 1.1]), want) == pytest.approx(0.1, rel=1e-5)
    assert B.max_rel_err(([big], [big, None]), want) == float("inf")
    with pytest.raises(TypeError, match="outputs, gradients"):
        B.max_rel_err([big], want)


def test_disagreeing_backend_is_flagged_but_timed(monkeypatch):
    """Pretend 'cuda' runs on CPU but with other weights: its rows must be mismatches (✗),
    still timed, with the error recorded -- the check runs before timing for every part."""
    real_build = B.build_models
    other = B.master_weights(TINY, seed=5)

    def build(cfg, mode, impl, weights, device, which="GD"):
        return real_build(cfg, mode, "ref", other if impl == "cuda" else weights, device, which)

    monkeypatch.setattr(B, "build_models", build)
    monkeypatch.setattr(B, "impl_skip_reason", lambda impl, device: None)
    timing = B.H.Timing(0, 1, 2, 2)
    info = dict(device="test", date="2000-01-01")
    rows = B.run_config(TINY, "fp32", B.PARTS, ["ref", "cuda"], "cpu", timing, info)
    by = {(r["part"], r["impl"]): r for r in rows}
    for part in B.PARTS:
        bad = by[part, "cuda"]
        assert bad["status"] == "mismatch" and "differs" in bad["reason"], bad
        assert bad["max_rel_err_vs_ref"] > B.TOLERANCE["fp32"]
        assert bad["ms"] > 0 and bad["x_ref"] > 0
        assert by[part, "ref"]["status"] == "ok" and by[part, "ref"]["max_rel_err_vs_ref"] is None


@pytest.mark.parametrize("argv", [["--res", "12"], ["--batch", "6"], ["--modes", "fp8"],
                                  ["--parts", "g_fwd,nope"], ["--channel-max", "0"]])
def test_bad_options_are_refused(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        B.main(["--device", "cpu", "--out", str(tmp_path), *argv])
    assert e.value.code == 2
    assert argv[0] in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_mode_without_device_support_is_a_skip():
    rows = B.run_config(TINY, "fp16", ["d_fwd"], ["ref"], "cpu", B.H.Timing(0, 1, 2, 2),
                        dict(device="test", date="2000-01-01"))
    assert [(r["status"], r["impl"]) for r in rows] == [("skip", "ref")]
    assert "CUDA" in rows[0]["reason"]
    with pytest.raises(ValueError, match="mode must be one of"):
        B.mode_kwargs("fp8")
