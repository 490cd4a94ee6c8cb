"""Triton kernel for fused bias + activation (+ gain, clamp) and its first and second derivatives.

Compute only: argument checking, layout and autograd live in ``fastgan/ops/bias_act.py``.

All tensors handed to the kernel share one shape and one non-overlapping, dense layout, so they are
flat arrays of ``n`` elements in storage order; element ``i`` belongs to bias channel
``(i // inner) % channels`` where ``inner`` is the stride of the bias dim.

Modes (``MODE``):
  0  forward:        out = clamp(f(x + b) * gain)
  1  first order:    out = dy * gain * f'(s) * [|y| < clamp]            (d loss / d s)
  2  second order:   out = ddx * dy * d2 * [|y| < clamp]
                     d2 = gain * f''(s) w.r.t. s when REF_X, else g'(yy) w.r.t. y
With ``REF_X`` the derivative is evaluated from s = x + b; otherwise from the saved output y
(yy = y / gain), using g(yy) = f'(f^-1(yy)) -- the act's derivative written in terms of its output,
which is what lets autograd save only y.
"""
import triton
import triton.language as tl

# act ids (shared with csrc/ and fastgan/ops/bias_act.py)
LINEAR, RELU, LRELU, TANH, SIGMOID, ELU, SELU, SOFTPLUS, SWISH = range(9)
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


# expm1 / log1p / tanh from tl.exp alone: libdevice is unavailable under TRITON_INTERPRET, and the
# fast exp/log the compiler emits lose all relative accuracy in 1 - exp(x) near 0.  Series length
# depends on the compute dtype so float64 stays accurate to ~1e-16.

@triton.jit
def _expm1(x):
    # |x| < 0.5: Taylor series x(1 + x/2(1 + x/3(1 + ...))) -- truncation < 1e-8 (fp32), 1e-16 (fp64)
    N: tl.constexpr = 16 if x.dtype == tl.float64 else 9
    p = x * 0.0 + 1.0
    for i in tl.static_range(N - 1):
        p = 1.0 + x * p * (1.0 / (N - i))
    return tl.where(tl.abs(x) < 0.5, x * p, tl.exp(x) - 1.0)


@triton.jit
def _log1p_unit(t):
    # log(1 + t) for t in [0, 1]: 2 atanh(z), z = t / (2 + t) <= 1/3, series in w = z^2 <= 1/9
    K: tl.constexpr = 17 if t.dtype == tl.float64 else 8
    z = t / (2.0 + t)
    w = z * z
    p = t * 0.0 + 1.0 / (2 * K + 1)
    for i in tl.static_range(K):
        p = 1.0 / (2 * (K - 1 - i) + 1) + w * p
    return 2.0 * z * p


@triton.jit
def _tanh(s):
    e = _expm1(-2.0 * tl.abs(s))  # in (-1, 0]
    t = -e / (2.0 + e)
    return tl.where(s < 0, -t, t)


@triton.jit
def _sigmoid(s):
    return 1.0 / (1.0 + tl.exp(-s))


@triton.jit
def _act(s, alpha, ACT: tl.constexpr):
    # Written with `s < 0` style tests so that NaN falls through to the NaN-propagating branch.
    if ACT == 0:
        v = s
    elif ACT == 1:
        v = tl.where(s < 0, 0.0, s)
    elif ACT == 2:
        v = tl.where(s < 0, s * alpha, s)
    elif ACT == 3:
        v = _tanh(s)
    elif ACT == 4:
        v = _sigmoid(s)
    elif ACT == 5:
        v = tl.where(s > 0, s, _expm1(s))
    elif ACT == 6:
        v = tl.where(s > 0, s, 1.6732632423543772848170429916717 * _expm1(s))
        v = v * 1.0507009873554804934193349852946
    elif ACT == 7:
        v = tl.where(s > 0, s, 0.0) + _log1p_unit(tl.exp(-tl.abs(s)))
    else:
        v = s * _sigmoid(s)
    return v


@triton.jit
def _d1_from_s(s, alpha, ACT: tl.constexpr):
    """f'(s)"""
    if ACT == 0:
        d = s * 0.0 + 1.0
    elif ACT == 1:
        d = tl.where(s > 0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(s > 0, 1.0, alpha)
    elif ACT == 3:
        t = _tanh(s)
        d = 1.0 - t * t
    elif ACT == 4:
        g = _sigmoid(s)
        d = g * (1.0 - g)
    elif ACT == 5:
        d = tl.where(s > 0, 1.0, tl.exp(s))
    elif ACT == 6:
        d = tl.where(s > 0, 1.0507009873554804934193349852946,
                     1.7580993408473766 * tl.exp(s))
    elif ACT == 7:
        d = _sigmoid(s)
    else:
        g = _sigmoid(s)
        d = g * (1.0 + s * (1.0 - g))
    return d


@triton.jit
def _d2_from_s(s, alpha, ACT: tl.constexpr):
    """f''(s)"""
    if ACT <= 2:
        d = s * 0.0
    elif ACT == 3:
        t = _tanh(s)
        d = -2.0 * t * (1.0 - t * t)
    elif ACT == 4:
        g = _sigmoid(s)
        d = g * (1.0 - g) * (1.0 - 2.0 * g)
    elif ACT == 5:
        d = tl.where(s > 0, 0.0, tl.exp(s))
    elif ACT == 6:
        d = tl.where(s > 0, 0.0, 1.7580993408473766 * tl.exp(s))
    elif ACT == 7:
        g = _sigmoid(s)
        d = g * (1.0 - g)
    else:
        g = _sigmoid(s)
        d = g * (1.0 - g) * (2.0 + s * (1.0 - 2.0 * g))
    return d


@triton.jit
def _d1_from_y(yy, alpha, ACT: tl.constexpr):
    """g(yy) = f'(s) written in terms of yy = f(s)"""
    if ACT == 0:
        d = yy * 0.0 + 1.0
    elif ACT == 1:
        d = tl.where(yy > 0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(yy > 0, 1.0, alpha)
    elif ACT == 3:
        d = 1.0 - yy * yy
    elif ACT == 4:
        d = yy * (1.0 - yy)
    elif ACT == 5:
        d = tl.where(yy > 0, 1.0, yy + 1.0)
    elif ACT == 6:
        d = tl.where(yy > 0, 1.0507009873554804934193349852946, yy + 1.7580993408473766)
    else:  # softplus: sigmoid(s) = 1 - exp(-y)
        d = -_expm1(-yy)
    return d


@triton.jit
def _d2_from_y(yy, alpha, ACT: tl.constexpr):
    """g'(yy)"""
    if ACT <= 2:
        d = yy * 0.0
    elif ACT == 3:
        d = -2.0 * yy
    elif ACT == 4:
        d = 1.0 - 2.0 * yy
    elif ACT == 5:
        d = tl.where(yy > 0, 0.0, 1.0)
    elif ACT == 6:
        d = tl.where(yy > 0, 0.0, 1.0)
    else:
        d = tl.exp(-yy)
    return d


@triton.jit
def bias_act_kernel(
    out_ptr, x_ptr, b_ptr, y_ptr, dy_ptr, ddx_ptr, part_ptr,
    n, inner, channels,
    alpha, gain, inv_gain, clamp, params_ptr,
    MODE: tl.constexpr, ACT: tl.constexpr, REF_X: tl.constexpr,
    HAS_B: tl.constexpr, HAS_CLAMP: tl.constexpr,
    BIAS_PER_BLOCK: tl.constexpr,  # inner % BLOCK == 0: one channel per program, a scalar bias load
    INT64: tl.constexpr,  # n >= 2**31: 64-bit offsets
    BLOCK: tl.constexpr,
    # Fused bias-gradient partial sums of `out` (mode 1), so db costs no second pass over ds:
    # 0 none; 1 one channel per program (BIAS_PER_BLOCK): part[pid] = sum of the block;
    # 2 channels innermost (inner == 1) and RC == channels divides BLOCK: the program works on a
    # [BLOCK // RC, RC] tile (contiguous along channels) and part[pid, c] = the tile's column sum.  Partials are in the compute type; the caller sums
    # them (deterministic: no atomics).
    REDUCE: tl.constexpr = 0,
    RC: tl.constexpr = 1,
):
    pid = tl.program_id(0)
    if INT64:
        start = pid.to(tl.int64) * BLOCK
    else:
        start = pid * BLOCK
    if REDUCE == 2:  # a [rows, RC] tile: the channel sums are a reduction over axis 0
        offs = start + tl.arange(0, BLOCK // RC)[:, None] * RC + tl.arange(0, RC)[None, :]
    else:
        offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    CDT: tl.constexpr = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    if CDT == tl.float64:
        # Python floats reach a Triton kernel as fp32; float64 runs take exact scalars from memory.
        alpha = tl.load(params_ptr + 0)
        gain = tl.load(params_ptr + 1)
        inv_gain = tl.load(params_ptr + 2)
        clamp = tl.load(params_ptr + 3)

    NEED_S: tl.constexpr = (MODE == 0) or REF_X
    if NEED_S:
        s = tl.load(x_ptr + offs, mask=mask, other=0.0).to(CDT)
        if HAS_B:
            if BIAS_PER_BLOCK:
                s += tl.load(b_ptr + (start // inner) % channels).to(CDT)
            else:
                s += tl.load(b_ptr + (offs // inner) % channels, mask=mask, other=0.0).to(CDT)

    if MODE == 0:
        v = _act(s, alpha, ACT) * gain
        if HAS_CLAMP:
            v = tl.where(v > clamp, clamp, tl.where(v < -clamp, -clamp, v))
    else:
        NEED_Y: tl.constexpr = HAS_CLAMP or ((not REF_X) and ACT != 0)
        if NEED_Y:
            y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(CDT)
        g = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(CDT)
        if MODE == 2:
            g = g * tl.load(ddx_ptr + offs, mask=mask, other=0.0).to(CDT)
        if MODE == 1:
            if REF_X:
                v = g * (gain * _d1_from_s(s, alpha, ACT))
            elif ACT == 0:
                v = g * gain
            else:
                v = g * (gain * _d1_from_y(y * inv_gain, alpha, ACT))
        else:
            if REF_X:
                v = g * (gain * _d2_from_s(s, alpha, ACT))
            else:
                v = g * _d2_from_y(y * inv_gain, alpha, ACT)
        if HAS_CLAMP:
            v = tl.where(tl.abs(y) >= clamp, 0.0, v)
        if REDUCE == 1:
            tl.store(part_ptr + pid, tl.sum(tl.where(mask, v, 0.0), axis=0))
        elif REDUCE == 2:
            sums = tl.sum(tl.where(mask, v, 0.0), axis=0)
            if INT64:
                row = pid.to(tl.int64) * RC
            else:
                row = pid * RC
            tl.store(part_ptr + row + tl.arange(0, RC), sums)
    tl.store(out_ptr + offs, v.to(out_ptr.dtype.element_ty), mask=mask)


def launch_config(n: int, element_size: int):
    """(BLOCK, num_warps): 16 elements per thread at 256 threads -- 4 x 16-byte vectors per
    thread for fp32, 2 for 16-bit types; enough bytes in flight per SM for HBM3."""
    return 4096, 8
