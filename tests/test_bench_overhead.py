"""CPU smoke test of bench/overhead.py (``python -m bench.overhead``): it times every op family's
smallest case through eager, the fast path and the dispatcher, checks them against eager, and
writes JSON / Markdown / PNG with the fast-path-vs-dispatcher ratios."""
import json

from bench import overhead as B
from bench.run import OP_FAMILIES


def test_overhead_bench_runs_and_writes_results(tmp_path):
    rc = B.main(["--device", "cpu", "--repeats", "1", "--target-ms", "2", "--out", str(tmp_path)])
    assert rc == 0
    (js,) = tmp_path.glob("*-overhead.json")
    doc = json.loads(js.read_text())
    rows = doc["rows"]
    assert {r["op"] for r in rows} == set(OP_FAMILIES)
    assert {r["provider"] for r in rows} == {"eager", "ref", "ref-dispatcher"}
    assert {r["mode"] for r in rows} == set(B.MODES)
    for r in rows:
        assert r["status"] == "ok", r
        assert r["us"] > 0 and r["shape"][0] == 1  # batch 1 on CPU
        if r["provider"] == "ref":
            assert r["x_dispatcher"] > 0 and r["max_rel_err"] < 1e-3
    md = js.with_suffix(".md").read_text()
    assert "## fwd+bwd" in md and "ref-dispatcher" in md and "(×" in md
    assert js.with_suffix(".png").stat().st_size > 1000
    # a second, partial run on the same day merges by key instead of replacing the file
    assert B.main(["--device", "cpu", "--ops", "bias_act", "--repeats", "1", "--target-ms", "1",
                   "--out", str(tmp_path)]) == 0
    assert len(json.loads(js.read_text())["rows"]) == len(rows)


def test_overhead_bench_rejects_bad_arguments(capsys):
    import pytest
    with pytest.raises(SystemExit):
        B.main(["--device", "cpu", "--ops", "nope"])
    assert "--ops" in capsys.readouterr().err
