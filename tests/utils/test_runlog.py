"""RunLogger: JSONL records, log.txt messages, the tqdm postfix, TensorBoard scalars (through a
stand-in SummaryWriter, so the test does not need tensorboard installed), rank > 0 silence."""
import json
import sys
import types
from types import SimpleNamespace

from fastgan.utils.runlog import RunLogger


def test_jsonl_messages_and_tensorboard(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, logdir):
            calls.append(("init", logdir))

        def add_scalar(self, k, v, step):
            calls.append((k, v, step))

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    cfg = SimpleNamespace(progress=True, tensorboard=True)
    log = RunLogger(str(tmp_path), cfg, total_kimg=1.0)
    log.advance(0.5)
    log.log({"kimg": 0.5, "step": 10, "sec_per_kimg": 2.0, "img_per_s": 500.0, "loss/G": 0.7,
             "finite": True, "nonfinite": []})
    log.message("hello")
    log.close()
    rec = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[0])
    assert rec["loss/G"] == 0.7 and rec["step"] == 10 and "time" in rec
    assert "hello" in (tmp_path / "log.txt").read_text()
    assert ("loss/G", 0.7, 500) in calls and ("img_per_s", 500.0, 500) in calls
    assert not any(c[0] in ("finite", "kimg", "step") for c in calls)   # only numeric scalars
    assert calls[-1] == ("close",)


def test_other_ranks_write_nothing(tmp_path):
    log = RunLogger(str(tmp_path / "r1"), SimpleNamespace(progress=True, tensorboard=True),
                    enabled=False)
    log.log({"kimg": 1.0, "sec_per_kimg": 1.0})
    log.message("x")
    log.close()
    assert not (tmp_path / "r1").exists()


def test_without_a_bar_ticks_are_printed(tmp_path, capsys):
    log = RunLogger(str(tmp_path), SimpleNamespace(progress=False, tensorboard=False),
                    total_kimg=2.0)
    log.advance(1.0)
    log.log({"kimg": 1.0, "sec_per_kimg": 3.0, "img_per_s": 333.3, "loss/D_real": 0.5})
    log.close()
    err = capsys.readouterr().err
    assert "kimg 1.00" in err and "s/kimg 3.0" in err and "Dr 0.500" in err and "eta" in err
