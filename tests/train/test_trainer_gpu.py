"""GPU tier for the trainer: a short CUDA run per precision (bf16 autocast + channels_last, fp32,
the fp16 recipe) with the fused backends, finite losses and a loadable checkpoint; the compiled
passes; and exact resume on CUDA (deterministic cuDNN algorithms; same step after resume, same
weights and optimiser state to float tolerance).  Skipped without a CUDA device."""
import json

import pytest
import torch

from fastgan.train.trainer import Trainer
from tests.train.test_trainer import _tensors, tiny

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _restore_backend_flags():
    # Trainer(device='cuda') sets cudnn.benchmark and both TF32 flags process-wide and leaves them
    # set; put them back after each test so the GPU tests that run later in the same process
    # (float32 tolerances, deterministic algorithm choice) see torch's settings, not the trainer's.
    # (By hand: monkeypatch cannot undo an attribute of torch.backends.cuda.matmul.)
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.benchmark, cudnn.allow_tf32, cudnn.deterministic, matmul.allow_tf32
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, cudnn.deterministic, matmul.allow_tf32 = saved


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


def test_compiled_passes_match_eager_losses(tmp_path):
    import torch._inductor.config as inductor_config
    # config.patch, not monkeypatch: monkeypatch's undo deletes the option from torch's config
    # module (it was not in the module's __dict__), breaking every later torch.compile
    kw = dict(device="cuda", precision="fp32", augment="none", metric_images=0)
    with inductor_config.patch(fallback_random=True):
        a = Trainer(tiny(tmp_path / "a", compile=False, **kw))
        b = Trainer(tiny(tmp_path / "b", compile=True, **kw))
        for _ in range(2):
            a.train_step()
            b.train_step()
    la, _, _ = a.stats.collect()
    lb, _, _ = b.stats.collect()
    assert la.keys() == lb.keys()
    for k in la:
        assert lb[k] == pytest.approx(la[k], rel=1e-2, abs=1e-4), k


def test_resume_on_cuda(tmp_path):
    # Adam's first step moves every weight by lr * sign(grad) (betas[0] = 0), so a gradient that
    # differs in its last bits between the two runs (a non-deterministic cuDNN algorithm, or one
    # that cudnn.benchmark times differently) can move an element 2 * lr = 5e-3 apart, beyond any
    # float tolerance; a lrelu mask flip makes such differences ~1e-3 of a whole gradient.  With
    # deterministic cuDNN algorithms picked by heuristics (the fused kernels use no atomics) the
    # two runs do the same arithmetic, which is what an exact-resume check needs.  (Restored by
    # _restore_backend_flags.)
    torch.backends.cudnn.deterministic = True
    kw = dict(device="cuda", precision="fp32", cudnn_benchmark=False)
    a = Trainer(tiny(tmp_path / "a", **kw))
    a.run(max_steps=6)
    b = Trainer(tiny(tmp_path / "b", **kw))
    b.run(max_steps=3)
    b = Trainer(tiny(tmp_path / "b", resume="auto", **kw))
    assert b.step == 3
    b.run(max_steps=3)
    assert a.step == b.step == 6
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        torch.testing.assert_close(tb[k].float(), ta[k].float(), rtol=1e-3, atol=1e-4, msg=k)
