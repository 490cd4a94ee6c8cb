"""bench.run under a wall-clock limit: --budget, an interrupted run, --resume (CPU, seconds)."""
import importlib
import json
import os
import signal
import time

import pytest

from bench import harness as H
from bench import run as R

# two tiny cases (fwd and bwd of the smallest shape) and two providers: a second or two on CPU
ARGS = ["--ops", "bias_act", "--device", "cpu", "--quick", "--shapes", "512x4^2", "--dtypes", "fp32",
        "--formats", "nchw", "--variants", "lrelu", "--modes", "fwd,bwd", "--providers", "eager,ref"]


def _rows(out):
    (path,) = out.glob("*-quick.json")
    return json.loads(path.read_text())["rows"]


def _measured(rows):
    return sorted((r["mode"], r["provider"]) for r in rows if r["status"] == "ok")


def test_complete_run_then_resume_measures_only_what_is_missing(tmp_path, monkeypatch, capsys):
    assert R.main(ARGS + ["--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path)
    assert _measured(rows) == [("bwd", "eager"), ("bwd", "ref"), ("fwd", "eager"), ("fwd", "ref")]
    assert list(tmp_path.glob("*.png")), "a finished run writes its plots"

    ran = []
    real = H.run_case
    monkeypatch.setattr(H, "run_case", lambda fam, c, *a: ran.append(c.mode) or real(fam, c, *a))
    assert R.main(ARGS + ["--out", str(tmp_path), "--resume"]) == 0
    assert ran == [] and "2 of 2 cases already measured" in capsys.readouterr().err

    # drop the bwd ref row: --resume re-runs that case only, and the merge keeps the fwd rows
    (path,) = tmp_path.glob("*-quick.json")
    doc = json.loads(path.read_text())
    doc["rows"] = [r for r in doc["rows"] if not (r["mode"] == "bwd" and r["provider"] == "ref")]
    path.write_text(json.dumps(doc))
    assert R.main(ARGS + ["--out", str(tmp_path), "--resume"]) == 0
    assert ran == ["bwd"] and len(_measured(_rows(tmp_path))) == 4


def test_interrupted_run_writes_what_it_measured(tmp_path, monkeypatch, capsys):
    real, calls = H.run_case, []

    def run_case(fam, c, *a):
        calls.append(c.mode)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what the SIGTERM handler raises when `timeout` ends the command
        return real(fam, c, *a)

    monkeypatch.setattr(H, "run_case", run_case)
    assert R.main(ARGS + ["--out", str(tmp_path)]) == 1
    assert _measured(_rows(tmp_path)) == [("fwd", "eager"), ("fwd", "ref")]
    assert "stopped after 1 of 2 cases (interrupted)" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tmp"))


def test_sigterm_is_turned_into_a_clean_stop():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with H.sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this returns
    assert signal.getsignal(signal.SIGTERM) is before


def test_spent_budget_starts_no_case(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(H, "run_case", lambda *a: pytest.fail("a case ran after the budget"))
    assert R.main(ARGS + ["--out", str(tmp_path), "--budget", "0"]) == 1
    assert "before any case was measured" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_budget_stops_between_cases(tmp_path, monkeypatch, capsys):
    real, clock = H.run_case, [0.0]
    monkeypatch.setattr(R, "_clock", lambda: clock[0])

    def run_case(*a):
        clock[0] += 100.0  # each case "takes" 100 s
        return real(*a)

    monkeypatch.setattr(H, "run_case", run_case)
    assert R.main(ARGS + ["--out", str(tmp_path), "--budget", "50"]) == 0
    assert [m for m, _ in _measured(_rows(tmp_path))] == ["fwd", "fwd"]
    assert "stopped after 1 of 2 cases (time budget of 50 s spent)" in capsys.readouterr().err


# every benchmark CLI: the runner of one unit of work, and a cheap CPU argument list with >= 2 units
SUITES = {
    "stylegan2": ("run_config", ["--res", "16,32", "--parts", "d_fwd", "--impls", "ref"]),
    "penalties": ("run_config", ["--res", "16"]),
    "train": ("run_variant", []),
    "overhead": ("run_case", ["--ops", "bias_act", "--repeats", "1", "--target-ms", "1"]),
}


@pytest.mark.parametrize("suite", SUITES)
def test_suites_write_what_they_measured_when_interrupted(suite, tmp_path, monkeypatch, capsys):
    mod = importlib.import_module(f"bench.{suite}")
    runner, argv = SUITES[suite]
    real, calls = getattr(mod, runner), []

    def interrupt_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mod, runner, interrupt_second)
    assert mod.main(["--device", "cpu", "--out", str(tmp_path), *argv]) == 1
    assert len(calls) == 2
    assert "interrupted: writing the" in capsys.readouterr().err
    (path,) = tmp_path.glob("*.json")
    assert json.loads(path.read_text())["rows"], f"{suite} wrote no rows"


def test_pytest_benchmark_view_covers_every_family():
    """``pytest bench/test_ops.py`` collects every family of OP_FAMILIES, and its ref cases pass
    their check against the eager composite (benchmarking disabled: one call each)."""
    pytest.importorskip("pytest_benchmark")
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN", "--benchmark-disable",
         "bench/test_ops.py", "-k", "ref and -fwd-"],
        cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only",
         "bench/test_ops.py"], cwd=root, capture_output=True, text=True, timeout=600).stdout
    for family in R.OP_FAMILIES:
        assert f"test_op[{family}-" in collected, f"bench/test_ops.py has no {family} case"
