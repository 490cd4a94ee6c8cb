"""Triton kernels of modulated_conv2d's small passes: the demodulation coefficients and the fused
epilogue that follows a cuDNN / conv2d_resample convolution.

Compute only: argument checking, layout and autograd live in ``fastgan/ops/modulated_conv2d.py``.

    modconv_dcoefs_triton(d, s, wsq, eps):
        d[n, o] = rsqrt(sum_i s[n, i]^2 * wsq[o, i] + eps)
        s [N, I], wsq [O, I], d [N, O]: all float32 (or all float64), contiguous.

    modconv_epilogue_triton(y, c, d, noise, b, act_id, alpha, gain, clamp):
        y[n, o, h, w] = clamp(act(c[n, o, h, w] * d[n, o] + noise[n, o, h, w] + b[o]) * gain)
        c [N, O, H, W] contiguous or channels_last, y with exactly c's strides; d [N, O] in the
        compute type or None; noise a 4-D view [N, O, H, W] of any float dtype with any strides
        (an expand(): stride 0 on broadcast dims) or None; b [O] or None; clamp < 0: none.
"""
import triton
import triton.language as tl

from .bias_act import _act


@triton.jit
def modconv_dcoefs_kernel(d_ptr, s_ptr, wsq_ptr, eps_ptr, N, I, O, eps,
                          BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    n = tl.program_id(0)
    ob = tl.program_id(1)
    CDT: tl.constexpr = tl.float64 if d_ptr.dtype.element_ty == tl.float64 else tl.float32
    if CDT == tl.float64:  # a Python float arrives as fp32: float64 runs read the exact eps
        eps = tl.load(eps_ptr)
    o = ob * BLOCK_O + tl.arange(0, BLOCK_O)
    omask = o < O
    acc = tl.zeros([BLOCK_O], dtype=CDT)
    for i0 in range(0, I, BLOCK_I):
        i = i0 + tl.arange(0, BLOCK_I)
        imask = i < I
        sv = tl.load(s_ptr + n.to(tl.int64) * I + i, mask=imask, other=0.0).to(CDT)
        wv = tl.load(wsq_ptr + o[:, None].to(tl.int64) * I + i[None, :],
                     mask=omask[:, None] & imask[None, :], other=0.0).to(CDT)
        acc += tl.sum(wv * (sv * sv)[None, :], axis=1)
    # 1 / sqrt rather than rsqrt: exact to the last ulp in float64 as well
    tl.store(d_ptr + n.to(tl.int64) * O + o, 1.0 / tl.sqrt(acc + eps), mask=omask)


def modconv_dcoefs_triton(d, s, wsq, eps):
    import torch

    n, i = s.shape
    o = wsq.shape[0]
    if d.numel() == 0:
        return d
    block_o = min(64, triton.next_power_of_2(max(o, 1)))
    block_i = min(64, triton.next_power_of_2(max(i, 1)))
    eps_t = d  # unused unless float64
    if d.dtype == torch.float64:
        eps_t = torch.tensor([eps], dtype=torch.float64, device=d.device)
    modconv_dcoefs_kernel[(n, triton.cdiv(o, block_o))](
        d, s, wsq, eps_t, n, i, o, float(eps), BLOCK_O=block_o, BLOCK_I=block_i, num_warps=4)
    return d


@triton.jit
def modconv_epilogue_kernel(
    y_ptr, c_ptr, d_ptr, noise_ptr, b_ptr, params_ptr,
    total, O, H, W, snn, sno, snh, snw,
    alpha, gain, clamp,
    CL: tl.constexpr,          # channels_last storage (o innermost), else NCHW (w innermost)
    ACT: tl.constexpr, HAS_D: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_B: tl.constexpr,
    HAS_CLAMP: tl.constexpr, INT64: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    if INT64:
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    CDT: tl.constexpr = tl.float64 if y_ptr.dtype.element_ty == tl.float64 else tl.float32
    if CDT == tl.float64:  # Python floats arrive as fp32: float64 runs read exact scalars
        alpha = tl.load(params_ptr + 0)
        gain = tl.load(params_ptr + 1)
        clamp = tl.load(params_ptr + 2)
    # storage index -> (n, o, h, w)
    if CL:
        o = offs % O
        pix = offs // O
        w = pix % W
        t = pix // W
        h = t % H
        n = t // H
    else:
        w = offs % W
        t = offs // W
        h = t % H
        t = t // H
        o = t % O
        n = t // O
    v = tl.load(c_ptr + offs, mask=mask, other=0.0).to(CDT)
    if HAS_D:
        v = v * tl.load(d_ptr + n * O + o, mask=mask, other=1.0).to(CDT)
    if HAS_NOISE:
        v += tl.load(noise_ptr + n * snn + o * sno + h * snh + w * snw, mask=mask,
                     other=0.0).to(CDT)
    if HAS_B:
        v += tl.load(b_ptr + o, mask=mask, other=0.0).to(CDT)
    v = _act(v, alpha, ACT) * gain
    if HAS_CLAMP:
        v = tl.where(v > clamp, clamp, tl.where(v < -clamp, -clamp, v))
    tl.store(y_ptr + offs, v.to(y_ptr.dtype.element_ty), mask=mask)


EPILOGUE_BLOCK, EPILOGUE_WARPS = 2048, 8


def modconv_epilogue_triton(y, c, d, noise, b, act_id, alpha, gain, clamp):
    import torch

    n, o, h, w = c.shape
    total = c.numel()
    if total == 0:
        return y
    cl = c.dim() == 4 and not c.is_contiguous() and c.is_contiguous(memory_format=torch.channels_last)
    assert y.stride() == c.stride() and (cl or c.is_contiguous()), "c/y must be dense, same strides"
    dummy = y
    params = dummy
    if y.dtype == torch.float64:
        params = torch.tensor([alpha, gain, clamp], dtype=torch.float64, device=y.device)
    sn = noise.stride() if noise is not None else (0, 0, 0, 0)
    int64 = total >= 2 ** 31 - EPILOGUE_BLOCK or (noise is not None and any(
        st * (sz - 1) >= 2 ** 31 for st, sz in zip(sn, noise.shape)))
    modconv_epilogue_kernel[(triton.cdiv(total, EPILOGUE_BLOCK),)](
        y, c, dummy if d is None else d, dummy if noise is None else noise,
        dummy if b is None else b, params, total, o, h, w, *sn,
        float(alpha), float(gain), float(clamp),
        CL=cl, ACT=act_id, HAS_D=d is not None, HAS_NOISE=noise is not None,
        HAS_B=b is not None, HAS_CLAMP=clamp >= 0, INT64=int64, BLOCK=EPILOGUE_BLOCK,
        num_warps=EPILOGUE_WARPS)
    return y
