"""CPU smoke test of bench/penalties.py (``python -m bench.penalties``): it runs its reduced set,
writes its results, and its two discriminator variants (fastgan ops vs plain PyTorch layers)
agree -- in float64 to rounding, so the timings compare the same computation."""
import json

import torch

from bench import penalties as B


def test_fastgan_and_plain_discriminators_agree_float64():
    params = B.make_params(16, 256, 32, "cpu", torch.float64)
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert B.check_agreement(params, 16, x) < 1e-10
    # and the check is not vacuous: a changed weight is noticed
    params["b16.conv0.w"] = params["b16.conv0.w"] * 1.01
    Dp = B.BenchDiscriminator(B.make_params(16, 256, 32, "cpu", torch.float64), 16, "plain")
    Df = B.BenchDiscriminator(params, 16, "fastgan")
    assert not torch.allclose(Dp(x), Df(x), rtol=1e-6, atol=0)


def test_bench_runs_and_writes_results(tmp_path):
    rc = B.main(["--device", "cpu", "--res", "16", "--out", str(tmp_path)])
    assert rc == 0
    (js,) = tmp_path.glob("*-penalties.json")
    doc = json.loads(js.read_text())
    assert doc["device_kind"] == "cpu" and doc["date"]
    rows = doc["rows"]
    assert {(r["part"], r["variant"]) for r in rows} == \
        {(p, v) for p, vs in B.PARTS.items() for v in vs}
    for r in rows:
        assert r["status"] == "ok", r
        assert r["ms"] > 0 and r["max_rel_err_vs_plain"] < 1e-3
    md = js.with_suffix(".md").read_text()
    assert "inner · fp32 · nchw" in md and "r1_step · fp32 · nchw" in md
