"""GPU tier for the trainer: a short CUDA run per precision (bf16 autocast + channels_last, fp32,
the fp16 recipe) with the fused backends, finite losses and a loadable checkpoint; the compiled
passes; and exact resume on CUDA (same step after resume, same weights to float tolerance:
cuDNN / atomics need not be bit-exact on a GPU).  Skipped without a CUDA device."""
import json

import pytest
import torch

from fastgan.train.trainer import Trainer
from tests.train.test_trainer import _tensors, tiny

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["bf16", "fp32", "fp16"])
def test_short_cuda_run_per_precision(tmp_path, precision):
    cfg = tiny(tmp_path, device="cuda", precision=precision, resolution=32, batch=8,
               channel_base=1024, channel_max=64, metric_images=64)
    tr = Trainer(cfg)
    assert tr.cfg.channels_last is True
    res = tr.run(max_steps=6)
    assert res["status"] == "done"
    ticks = [json.loads(l) for l in open(tmp_path / "stats.jsonl")]
    ticks = [r for r in ticks if "sec_per_kimg" in r]
    assert ticks and all(r["finite"] for r in ticks) and ticks[-1]["peak_mem_gib"] > 0
    state = torch.load(res["checkpoint"], map_location="cpu", weights_only=False)
    assert state["step"] == 6


def test_compiled_passes_match_eager_losses(tmp_path, monkeypatch):
    import torch._inductor.config as inductor_config
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    kw = dict(device="cuda", precision="fp32", augment="none", metric_images=0)
    a = Trainer(tiny(tmp_path / "a", compile=False, **kw))
    b = Trainer(tiny(tmp_path / "b", compile=True, **kw))
    for _ in range(2):
        a.train_step()
        b.train_step()
    la, _, _ = a.stats.collect()
    lb, _, _ = b.stats.collect()
    for k in la:
        assert lb[k] == pytest.approx(la[k], rel=1e-2, abs=1e-4), k


def test_resume_on_cuda(tmp_path):
    a = Trainer(tiny(tmp_path / "a", device="cuda", precision="fp32"))
    a.run(max_steps=6)
    b = Trainer(tiny(tmp_path / "b", device="cuda", precision="fp32"))
    b.run(max_steps=3)
    b = Trainer(tiny(tmp_path / "b", device="cuda", precision="fp32", resume="auto"))
    b.run(max_steps=3)
    ta, tb = _tensors(a), _tensors(b)
    for k in ta:
        torch.testing.assert_close(tb[k].float(), ta[k].float(), rtol=1e-3, atol=1e-4, msg=k)
