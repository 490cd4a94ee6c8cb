"""load_rosinality / rosinality_*_state_dict on state dicts that are not exactly a whole rosinality
model: missing keys (a truncated file must not load as a smaller model), keys that belong to no
layer, DataParallel's ``module.`` prefix, a malformed ``latent_avg``, files that hold no dict, and
fastgan checkpoints given to the rosinality loader."""
import re

import pytest
import torch

from fastgan.models import load_rosinality
from fastgan.models.convert import (RosinalityKeyError, rosinality_discriminator_state_dict,
                                    rosinality_generator_state_dict)
from fastgan.models.stylegan2 import Discriminator, Generator
from tests import _rosinality_oracle as ro

CH = {4: 8, 8: 8, 16: 4}
FIR_SUFFIXES = (".blur.kernel", ".upsample.kernel", ".0.kernel")


def _g(size=16, n_mlp=3, seed=0):
    sd = ro.make_generator_state_dict(size, 16, n_mlp, channels={r: c for r, c in CH.items()
                                                                  if r <= size},
                                      generator=torch.Generator().manual_seed(seed))
    return {k: v.float() for k, v in sd.items()}


def _d(size=16, seed=1):
    sd = ro.make_discriminator_state_dict(size, channels={r: c for r, c in CH.items() if r <= size},
                                          generator=torch.Generator().manual_seed(seed))
    return {k: v.float() for k, v in sd.items()}


def _without(sd, key):
    return {k: v for k, v in sd.items() if k != key}


# ------------------------------------------------------------------------------------------------
# missing keys: never a smaller model

@pytest.mark.parametrize("key", ["to_rgbs.1.conv.weight", "style.2.weight", "style.1.weight",
                                 "convs.1.noise.weight", "noises.noise_4", "input.input"])
def test_generator_missing_key_is_named(key):
    # a 16^2 generator without to_rgbs.1.conv.weight used to load as an 8^2 one, and one without
    # style.2.weight with a single mapping layer (style.3 dropped)
    with pytest.raises(KeyError, match=re.escape(repr(key))):
        load_rosinality(_without(_g(), key))


def test_every_generator_key_is_required_but_the_fir_kernels():
    sd = _g(8, n_mlp=2)
    for key in sd:
        if key.endswith(FIR_SUFFIXES):  # buffers without learned state: the default filter
            state, cfg = rosinality_generator_state_dict(_without(sd, key))
            assert cfg["img_resolution"] == 8 and cfg["resample_filter"] == (0.125, 0.375,
                                                                             0.375, 0.125)
            continue
        with pytest.raises(RosinalityKeyError, match=re.escape(repr(key))):
            rosinality_generator_state_dict(_without(sd, key))


def test_every_discriminator_key_is_required_but_the_fir_kernels():
    sd = _d(16)
    for key in sd:
        if key.endswith(FIR_SUFFIXES):
            state, cfg = rosinality_discriminator_state_dict(_without(sd, key))
            assert cfg["img_resolution"] == 16
            continue
        with pytest.raises(RosinalityKeyError, match=re.escape(repr(key))):
            rosinality_discriminator_state_dict(_without(sd, key))


def test_discriminator_missing_block_is_not_a_smaller_model():
    # a 16^2 discriminator without convs.2.conv1.0.weight used to load as 8^2
    with pytest.raises(KeyError, match=r"16x16 discriminator.*'convs\.2\.conv1\.0\.weight'"):
        load_rosinality(_without(_d(), "convs.2.conv1.0.weight"))


def test_missing_keys_error_is_also_a_value_error():
    # front ends that report bad input (ValueError) in one line catch it too
    with pytest.raises(ValueError):
        load_rosinality(_without(_g(), "to_rgbs.1.conv.weight"))


# ------------------------------------------------------------------------------------------------
# keys that belong to no layer

@pytest.mark.parametrize("extra", ["conv1.conv.extra", "style.0.weight", "to_rgb1.upsample.kernel",
                                   "latent_avg_copy"])
def test_generator_unknown_key_is_named(extra):
    sd = dict(_g(), **{extra: torch.zeros(1)})
    with pytest.raises(KeyError, match=re.escape(repr(extra))):
        load_rosinality(sd)


def test_discriminator_unknown_key_is_named():
    sd = dict(_d(), **{"final_linear.2.weight": torch.zeros(1, 1)})
    with pytest.raises(KeyError, match=re.escape("'final_linear.2.weight'")):
        load_rosinality(sd)


def test_stray_layer_keys_are_not_ignored():
    # higher-index layer keys used to be ignored; now they imply a bigger model that is incomplete
    sd = dict(_g(), **{"convs.4.conv.weight": torch.zeros(1, 4, 4, 3, 3),
                       "to_rgbs.5.conv.weight": torch.zeros(1, 3, 4, 1, 1)})
    with pytest.raises(KeyError, match=r"256x256 generator.*'to_rgbs\.5\.conv\.weight'.*missing"):
        load_rosinality(sd)
    with pytest.raises(KeyError, match="layer index beyond"):
        load_rosinality(dict(_g(), **{"to_rgbs.999999.conv.weight": torch.zeros(1)}))


def test_generator_and_discriminator_keys_mixed():
    with pytest.raises(KeyError, match="mixes generator keys"):
        load_rosinality({**_g(), **_d()})


def test_non_tensor_entry():
    with pytest.raises(TypeError, match="'args'"):
        load_rosinality(dict(_g(), args=["--size", "16"]))


# ------------------------------------------------------------------------------------------------
# what still loads

def test_dataparallel_prefix_is_dropped():
    gsd, dsd = _g(), _d()
    # the generator dict used to be reported as "not a rosinality ... discriminator state dict"
    G = load_rosinality({"module." + k: v for k, v in gsd.items()})
    D = load_rosinality({"g_ema": gsd, "d": {"module." + k: v for k, v in dsd.items()}},
                        which="d")
    assert isinstance(G, Generator) and G.img_resolution == 16
    assert isinstance(D, Discriminator) and D.img_resolution == 16
    z = torch.randn(2, 16)
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z, noise_mode="const"),
                                   ro.generator_forward(gsd, [z], n_mlp=3), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(D(img), ro.discriminator_forward(dsd, img), rtol=1e-4,
                                   atol=1e-4)


def test_4x4_discriminator():
    dsd = _d(4)
    D = load_rosinality(dsd)
    assert D.img_resolution == 4
    img = torch.randn(4, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(D(img), ro.discriminator_forward(dsd, img), rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize("shape", [(16,), (1, 16), (6, 16)])
def test_latent_avg_shapes(shape):
    avg = torch.randn(16)
    G = load_rosinality({"g_ema": _g(), "latent_avg": avg.expand(shape).clone()})
    assert torch.equal(G.mapping.w_avg, avg)


def test_latent_avg_in_a_bare_state_dict():
    avg = torch.randn(16)
    G = load_rosinality(dict(_g(), latent_avg=avg))
    assert torch.equal(G.mapping.w_avg, avg)


@pytest.mark.parametrize("bad,err,match", [
    (torch.zeros(7), ValueError, r"latent_avg must be \[style_dim=16\]"),
    (torch.zeros(()), ValueError, r"latent_avg must be \[style_dim=16\]"),
    (torch.randn(6, 16), ValueError, "rows that differ"),
    (torch.full((16,), float("nan")), ValueError, "non-finite"),
    (torch.zeros(16, dtype=torch.long), TypeError, "float tensor"),
    ([0.0] * 16, TypeError, "got list"),
])
def test_malformed_latent_avg(bad, err, match):
    with pytest.raises(err, match=match):
        load_rosinality({"g_ema": _g(), "latent_avg": bad})


# ------------------------------------------------------------------------------------------------
# not a rosinality checkpoint at all

def test_file_without_a_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(TypeError, match="holds a list, expected a dict"):
        load_rosinality(path)
    path = tmp_path / "model.pt"
    torch.save(Generator(z_dim=16, w_dim=16, img_resolution=8, channel_base=64, channel_max=8,
                         mapping_layers=1), path)
    with pytest.raises(TypeError, match=r"holds a Generator.*state_dict\(\)"):
        load_rosinality(path)
    with pytest.raises(TypeError, match="ckpt must be a path or a checkpoint dict"):
        load_rosinality(3)


def test_fastgan_checkpoints_point_at_the_fastgan_loaders():
    G = Generator(z_dim=16, w_dim=16, img_resolution=8, channel_base=64, channel_max=8,
                  mapping_layers=1)
    D = Discriminator(img_resolution=8, channel_base=64, channel_max=8)
    ckpt = {"G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict(),
            "G_kwargs": {"z_dim": 16}, "step": 1}
    with pytest.raises(KeyError, match=r"fastgan training checkpoint.*load_generator"):
        load_rosinality(ckpt)
    with pytest.raises(KeyError, match=r"fastgan Generator state dict.*load_state_dict"):
        load_rosinality(G.state_dict())
    with pytest.raises(KeyError, match=r"fastgan Discriminator state dict.*load_state_dict"):
        load_rosinality(D.state_dict())
