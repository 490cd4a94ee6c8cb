// fastgan._C: torch op registrations for the CUDA kernels in csrc/*.cu.
//
// Importing fastgan._C loads this shared object; the static TORCH_LIBRARY initialisers below then
// register the `fastgan_cuda` ops with the dispatcher (torch.ops.fastgan_cuda.*).  The Python
// module itself is empty.
#include <Python.h>

#include <cstdint>
#include <optional>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "adain.h"
#include "bias_act.h"
#include "modconv.h"
#include "upfirdn2d.h"

namespace {

int dtype_code(at::ScalarType t) {
    switch (t) {
        case at::ScalarType::Float: return FASTGAN_DTYPE_F32;
        case at::ScalarType::Half: return FASTGAN_DTYPE_F16;
        case at::ScalarType::BFloat16: return FASTGAN_DTYPE_BF16;
        case at::ScalarType::Double: return FASTGAN_DTYPE_F64;
        default: return -1;
    }
}

// The tensor if given and defined, else nullptr; checks that it matches `out` element for element.
const at::Tensor* check_like_out(const std::optional<at::Tensor>& t, const at::Tensor& out, const char* name) {
    if (!t.has_value() || !t->defined()) return nullptr;
    TORCH_CHECK(t->device() == out.device(), "bias_act_elementwise: ", name, " is on ", t->device(),
                " but out is on ", out.device());
    TORCH_CHECK(t->scalar_type() == out.scalar_type(), "bias_act_elementwise: ", name, " has dtype ",
                t->scalar_type(), " but out has dtype ", out.scalar_type());
    TORCH_CHECK(t->sizes() == out.sizes(), "bias_act_elementwise: ", name, " has shape ", t->sizes(),
                " but out has shape ", out.sizes());
    TORCH_CHECK(t->strides() == out.strides(), "bias_act_elementwise: ", name, " has strides ", t->strides(),
                " but out has strides ", out.strides());
    return &*t;
}

void bias_act_elementwise(at::Tensor& out, const std::optional<at::Tensor>& x, const std::optional<at::Tensor>& b,
                          const std::optional<at::Tensor>& y, const std::optional<at::Tensor>& dy,
                          const std::optional<at::Tensor>& ddx, int64_t mode, int64_t act, bool ref_x,
                          int64_t inner, int64_t channels, double alpha, double gain, double clamp) {
    TORCH_CHECK(out.defined(), "bias_act_elementwise: out is undefined");
    TORCH_CHECK(out.is_cuda(), "bias_act_elementwise: out must be a CUDA tensor, got device ", out.device());
    const int code = dtype_code(out.scalar_type());
    TORCH_CHECK(code >= 0, "bias_act_elementwise: unsupported dtype ", out.scalar_type(),
                " (expected float32, float16, bfloat16 or float64)");
    TORCH_CHECK(out.is_non_overlapping_and_dense(),
                "bias_act_elementwise: out must be non-overlapping and dense, got strides ", out.strides(),
                " for shape ", out.sizes());
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act_elementwise: mode must be 0, 1 or 2, got ", mode);
    TORCH_CHECK(act >= 0 && act < FASTGAN_NUM_ACTS, "bias_act_elementwise: act must be in [0, ",
                FASTGAN_NUM_ACTS, "), got ", act);

    const at::Tensor* xt = check_like_out(x, out, "x");
    const at::Tensor* yt = check_like_out(y, out, "y");
    const at::Tensor* dyt = check_like_out(dy, out, "dy");
    const at::Tensor* ddxt = check_like_out(ddx, out, "ddx");

    const at::Tensor* bt = nullptr;
    if (b.has_value() && b->defined()) {
        bt = &*b;
        TORCH_CHECK(bt->device() == out.device(), "bias_act_elementwise: b is on ", bt->device(),
                    " but out is on ", out.device());
        TORCH_CHECK(bt->scalar_type() == out.scalar_type(), "bias_act_elementwise: b has dtype ",
                    bt->scalar_type(), " but out has dtype ", out.scalar_type());
        TORCH_CHECK(bt->dim() == 1 && bt->is_contiguous(), "bias_act_elementwise: b must be 1-D and contiguous, "
                    "got shape ", bt->sizes(), " strides ", bt->strides());
        TORCH_CHECK(channels >= 1 && bt->numel() == channels, "bias_act_elementwise: b has ", bt->numel(),
                    " elements but channels = ", channels);
        TORCH_CHECK(inner >= 1, "bias_act_elementwise: inner must be >= 1, got ", inner);
    }

    const bool uses_x = mode == 0 || ref_x;
    TORCH_CHECK(!uses_x || xt != nullptr, "bias_act_elementwise: x is required ",
                mode == 0 ? "in mode 0" : "when ref_x is true");
    if (mode != 0) {
        TORCH_CHECK(dyt != nullptr, "bias_act_elementwise: dy is required in mode ", mode);
        TORCH_CHECK(mode != 2 || ddxt != nullptr, "bias_act_elementwise: ddx is required in mode 2");
        TORCH_CHECK(ref_x || act != FASTGAN_ACT_SWISH, "bias_act_elementwise: swish gradients need ref_x=True");
        const bool y_act = !ref_x && act != FASTGAN_ACT_LINEAR &&
                           !(mode == 2 && (act == FASTGAN_ACT_RELU || act == FASTGAN_ACT_LRELU));
        TORCH_CHECK(yt != nullptr || !(y_act || clamp >= 0), "bias_act_elementwise: y is required ",
                    y_act ? "for y-referenced gradients" : "when clamp >= 0");
    }

    const int64_t n = out.numel();
    if (n == 0) return;

    const c10::cuda::CUDAGuard guard(out.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(out.device().index()).stream();

    BiasActParams p{};
    p.out = out.data_ptr();
    p.x = xt ? xt->const_data_ptr() : nullptr;
    p.b = bt ? bt->const_data_ptr() : nullptr;
    p.y = yt ? yt->const_data_ptr() : nullptr;
    p.dy = dyt ? dyt->const_data_ptr() : nullptr;
    p.ddx = ddxt ? ddxt->const_data_ptr() : nullptr;
    p.n = n;
    p.inner = bt ? inner : 1;
    p.channels = bt ? channels : 1;
    p.alpha = alpha;
    p.gain = gain;
    p.inv_gain = gain != 0 ? 1.0 / gain : 0.0;
    p.clamp = clamp;
    p.mode = static_cast<int>(mode);
    p.act = static_cast<int>(act);
    p.ref_x = ref_x;

    const cudaError_t err = fastgan_bias_act_launch(p, code, stream);
    TORCH_CHECK(err == cudaSuccess, "bias_act_elementwise: CUDA kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace

namespace {

// out[n, c, oy, ox] = sum_{i, j} f[i, j] * xp(oy * downy + i, ox * downx + j); see upfirdn2d.h.
void upfirdn2d(at::Tensor& out, const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
               int64_t downx, int64_t downy, int64_t padx0, int64_t pady0) {
    TORCH_CHECK(out.defined() && x.defined() && f.defined(), "upfirdn2d: out, x and f must be defined");
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor, got device ", x.device());
    TORCH_CHECK(out.device() == x.device(), "upfirdn2d: out is on ", out.device(), " but x is on ", x.device());
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f is on ", f.device(), " but x is on ", x.device());
    const int code = dtype_code(x.scalar_type());
    TORCH_CHECK(code >= 0, "upfirdn2d: unsupported dtype ", x.scalar_type(),
                " (expected float32, float16, bfloat16 or float64)");
    TORCH_CHECK(out.scalar_type() == x.scalar_type(), "upfirdn2d: out has dtype ", out.scalar_type(),
                " but x has dtype ", x.scalar_type());
    const at::ScalarType f_type = x.scalar_type() == at::ScalarType::Double ? at::ScalarType::Double
                                                                            : at::ScalarType::Float;
    TORCH_CHECK(f.scalar_type() == f_type, "upfirdn2d: f must be ", f_type, " for ", x.scalar_type(),
                " x, got ", f.scalar_type());
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be 4-D [N, C, H, W], got shape ", x.sizes());
    TORCH_CHECK(out.dim() == 4, "upfirdn2d: out must be 4-D [N, C, OH, OW], got shape ", out.sizes());
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous(), "upfirdn2d: f must be 2-D and contiguous, got shape ",
                f.sizes(), " strides ", f.strides());
    TORCH_CHECK(out.size(0) == x.size(0) && out.size(1) == x.size(1), "upfirdn2d: out shape ", out.sizes(),
                " does not match x shape ", x.sizes(), " in N and C");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1,
                "upfirdn2d: up and down factors must be >= 1, got up=(", upx, ", ", upy, ") down=(", downx,
                ", ", downy, ")");
    TORCH_CHECK(x.numel() > 0 && out.numel() > 0 && f.numel() > 0,
                "upfirdn2d: x, out and f must be non-empty, got shapes ", x.sizes(), ", ", out.sizes(), ", ",
                f.sizes());
    TORCH_CHECK(out.is_contiguous() || out.is_contiguous(at::MemoryFormat::ChannelsLast),
                "upfirdn2d: out must be contiguous or channels_last contiguous, got strides ", out.strides());

    const c10::cuda::CUDAGuard guard(x.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();

    Upfirdn2dParams p{};
    p.out = out.data_ptr();
    p.x = x.const_data_ptr();
    p.f = f.const_data_ptr();
    p.n = x.size(0);
    p.c = x.size(1);
    p.h = x.size(2);
    p.w = x.size(3);
    p.oh = out.size(2);
    p.ow = out.size(3);
    for (int k = 0; k < 4; ++k) {
        p.x_stride[k] = x.stride(k);
        p.out_stride[k] = out.stride(k);
    }
    p.fh = f.size(0);
    p.fw = f.size(1);
    p.upx = upx;
    p.upy = upy;
    p.downx = downx;
    p.downy = downy;
    p.padx0 = padx0;
    p.pady0 = pady0;

    const cudaError_t err = fastgan_upfirdn2d_launch(p, code, stream);
    TORCH_CHECK(err == cudaSuccess, "upfirdn2d: CUDA kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace

namespace {

// ---- adain: see adain.h.  x (and y / dy / dx, same strides) NCHW- or channels_last-dense;
// gamma, beta, dgamma, dbeta [N, C] contiguous (x's dtype or float32); mean, rstd [N, C] contiguous
// in the compute type (float32; float64 for float64 x).

at::ScalarType adain_stat_type(const at::Tensor& x) {
    return x.scalar_type() == at::ScalarType::Double ? at::ScalarType::Double : at::ScalarType::Float;
}

void adain_check_nc(const at::Tensor& t, const at::Tensor& x, const char* fn, const char* name,
                    bool param_dtype) {
    TORCH_CHECK(t.defined(), fn, ": ", name, " is undefined");
    TORCH_CHECK(t.device() == x.device(), fn, ": ", name, " is on ", t.device(), " but x is on ", x.device());
    TORCH_CHECK(t.dim() == 2 && t.size(0) == x.size(0) && t.size(1) == x.size(1) && t.is_contiguous(), fn, ": ",
                name, " must be a contiguous [N, C] = [", x.size(0), ", ", x.size(1), "] tensor, got shape ",
                t.sizes(), " strides ", t.strides());
    if (param_dtype) {
        TORCH_CHECK(t.scalar_type() == x.scalar_type() || t.scalar_type() == at::ScalarType::Float, fn, ": ", name,
                    " must have x's dtype ", x.scalar_type(), " or float32, got ", t.scalar_type());
    } else {
        TORCH_CHECK(t.scalar_type() == adain_stat_type(x), fn, ": ", name, " must be ", adain_stat_type(x),
                    " for ", x.scalar_type(), " x, got ", t.scalar_type());
    }
}

void adain_check_like_x(const at::Tensor& t, const at::Tensor& x, const char* fn, const char* name) {
    TORCH_CHECK(t.defined(), fn, ": ", name, " is undefined");
    TORCH_CHECK(t.device() == x.device() && t.scalar_type() == x.scalar_type() && t.sizes() == x.sizes() &&
                t.strides() == x.strides(), fn, ": ", name, " must match x (", x.scalar_type(), ", shape ",
                x.sizes(), ", strides ", x.strides(), ", ", x.device(), "), got ", t.scalar_type(), ", shape ",
                t.sizes(), ", strides ", t.strides(), ", ", t.device());
}

// Checks x and fills the fields of AdainParams that describe it; returns false for an empty x.
bool adain_common(const at::Tensor& x, const char* fn, AdainParams& p) {
    TORCH_CHECK(x.defined() && x.is_cuda(), fn, ": x must be a CUDA tensor");
    const int code = dtype_code(x.scalar_type());
    TORCH_CHECK(code >= 0, fn, ": unsupported dtype ", x.scalar_type(),
                " (expected float32, float16, bfloat16 or float64)");
    TORCH_CHECK(x.dim() == 4, fn, ": x must be 4-D [N, C, H, W], got shape ", x.sizes());
    TORCH_CHECK(x.size(2) * x.size(3) >= 1, fn, ": x must have H * W >= 1, got shape ", x.sizes());
    const bool nchw = x.is_contiguous();
    TORCH_CHECK(nchw || x.is_contiguous(at::MemoryFormat::ChannelsLast), fn,
                ": x must be contiguous or channels_last contiguous, got strides ", x.strides());
    p.n = x.size(0);
    p.c = x.size(1);
    p.m = x.size(2) * x.size(3);
    p.channels_last = !nchw;
    p.dtype_code = code;
    return x.numel() > 0;
}

void adain_run(AdainParams& p, const at::Tensor& x, bool backward, const char* fn) {
    const c10::cuda::CUDAGuard guard(x.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
    size_t bytes = 0;
    cudaError_t err = fastgan_adain_workspace_bytes(p, backward, &bytes);
    TORCH_CHECK(err == cudaSuccess, fn, ": invalid parameters: ", cudaGetErrorString(err));
    at::Tensor ws;
    if (bytes > 0) {  // the caching allocator's blocks are 512-byte aligned
        ws = at::empty({int64_t(bytes)}, x.options().dtype(at::ScalarType::Byte));
        p.workspace = ws.data_ptr();
    }
    err = backward ? fastgan_adain_backward_launch(p, stream) : fastgan_adain_forward_launch(p, stream);
    TORCH_CHECK(err == cudaSuccess, fn, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

void adain_forward(at::Tensor& y, at::Tensor& mean, at::Tensor& rstd, const at::Tensor& x,
                   const at::Tensor& gamma, const at::Tensor& beta, double eps) {
    const char* fn = "adain_forward";
    AdainParams p{};
    const bool nonempty = adain_common(x, fn, p);
    adain_check_like_x(y, x, fn, "y");
    adain_check_nc(mean, x, fn, "mean", false);
    adain_check_nc(rstd, x, fn, "rstd", false);
    adain_check_nc(gamma, x, fn, "gamma", true);
    adain_check_nc(beta, x, fn, "beta", true);
    TORCH_CHECK(eps > 0, fn, ": eps must be > 0, got ", eps);
    if (!nonempty) return;
    p.y = y.data_ptr();
    p.x = x.const_data_ptr();
    p.gamma = gamma.const_data_ptr();
    p.beta = beta.const_data_ptr();
    p.mean = mean.data_ptr();
    p.rstd = rstd.data_ptr();
    p.eps = eps;
    p.gamma_code = dtype_code(gamma.scalar_type());
    p.beta_code = dtype_code(beta.scalar_type());
    adain_run(p, x, false, fn);
}

void adain_backward(at::Tensor& dx, at::Tensor& dgamma, at::Tensor& dbeta, const at::Tensor& dy,
                    const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& mean, const at::Tensor& rstd) {
    const char* fn = "adain_backward";
    AdainParams p{};
    const bool nonempty = adain_common(x, fn, p);
    adain_check_like_x(dx, x, fn, "dx");
    adain_check_like_x(dy, x, fn, "dy");
    adain_check_nc(gamma, x, fn, "gamma", true);
    adain_check_nc(dgamma, x, fn, "dgamma", true);
    adain_check_nc(dbeta, x, fn, "dbeta", true);
    adain_check_nc(mean, x, fn, "mean", false);
    adain_check_nc(rstd, x, fn, "rstd", false);
    TORCH_CHECK(dgamma.scalar_type() == gamma.scalar_type(), fn, ": dgamma must have gamma's dtype ",
                gamma.scalar_type(), ", got ", dgamma.scalar_type());
    if (!nonempty) return;
    p.dx = dx.data_ptr();
    p.dy = dy.const_data_ptr();
    p.x = x.const_data_ptr();
    p.gamma = gamma.const_data_ptr();
    p.mean = const_cast<void*>(mean.const_data_ptr());
    p.rstd = const_cast<void*>(rstd.const_data_ptr());
    p.dgamma = dgamma.data_ptr();
    p.dbeta = dbeta.data_ptr();
    p.gamma_code = dtype_code(gamma.scalar_type());
    p.beta_code = dtype_code(dbeta.scalar_type());
    adain_run(p, x, true, fn);
}

}  // namespace

namespace {

// ---- modulated convolution: see modconv.h.

void modconv_dcoefs(at::Tensor& d, const at::Tensor& s, const at::Tensor& wsq, double eps) {
    const char* fn = "modconv_dcoefs";
    TORCH_CHECK(d.defined() && s.defined() && wsq.defined(), fn, ": d, s and wsq must be defined");
    TORCH_CHECK(s.is_cuda(), fn, ": s must be a CUDA tensor, got device ", s.device());
    TORCH_CHECK(d.device() == s.device() && wsq.device() == s.device(), fn, ": d (", d.device(), ") and wsq (",
                wsq.device(), ") must be on s's device ", s.device());
    TORCH_CHECK(s.scalar_type() == at::ScalarType::Float || s.scalar_type() == at::ScalarType::Double, fn,
                ": s must be float32 or float64, got ", s.scalar_type());
    TORCH_CHECK(wsq.scalar_type() == s.scalar_type() && d.scalar_type() == s.scalar_type(), fn,
                ": d and wsq must have s's dtype ", s.scalar_type(), ", got d ", d.scalar_type(), " and wsq ",
                wsq.scalar_type());
    TORCH_CHECK(s.dim() == 2 && s.is_contiguous(), fn, ": s must be a contiguous [N, I] tensor, got shape ",
                s.sizes(), " strides ", s.strides());
    TORCH_CHECK(wsq.dim() == 2 && wsq.size(1) == s.size(1) && wsq.is_contiguous(), fn,
                ": wsq must be a contiguous [O, I] tensor with I = ", s.size(1), ", got shape ", wsq.sizes(),
                " strides ", wsq.strides());
    TORCH_CHECK(d.dim() == 2 && d.size(0) == s.size(0) && d.size(1) == wsq.size(0) && d.is_contiguous(), fn,
                ": d must be a contiguous [N, O] = [", s.size(0), ", ", wsq.size(0), "] tensor, got shape ",
                d.sizes(), " strides ", d.strides());
    TORCH_CHECK(eps >= 0, fn, ": eps must be >= 0, got ", eps);
    if (d.numel() == 0) return;

    const c10::cuda::CUDAGuard guard(s.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(s.device().index()).stream();
    ModconvDcoefsParams p{};
    p.d = d.data_ptr();
    p.s = s.const_data_ptr();
    p.wsq = wsq.const_data_ptr();
    p.n = s.size(0);
    p.o = wsq.size(0);
    p.i = s.size(1);
    p.eps = eps;
    const cudaError_t err = fastgan_modconv_dcoefs_launch(p, dtype_code(s.scalar_type()), stream);
    TORCH_CHECK(err == cudaSuccess, fn, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

void modconv_epilogue(at::Tensor& y, const at::Tensor& c, const std::optional<at::Tensor>& d,
                      const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& b, int64_t act,
                      double alpha, double gain, double clamp) {
    const char* fn = "modconv_epilogue";
    TORCH_CHECK(y.defined() && c.defined(), fn, ": y and c must be defined");
    TORCH_CHECK(c.is_cuda(), fn, ": c must be a CUDA tensor, got device ", c.device());
    const int code = dtype_code(c.scalar_type());
    TORCH_CHECK(code >= 0, fn, ": c has unsupported dtype ", c.scalar_type(),
                " (expected float32, float16, bfloat16 or float64)");
    TORCH_CHECK(c.dim() == 4, fn, ": c must be 4-D [N, O, H, W], got shape ", c.sizes());
    const bool nchw = c.is_contiguous();
    TORCH_CHECK(nchw || c.is_contiguous(at::MemoryFormat::ChannelsLast), fn,
                ": c must be contiguous or channels_last contiguous, got strides ", c.strides(), " for shape ",
                c.sizes());
    TORCH_CHECK(y.device() == c.device() && y.scalar_type() == c.scalar_type() && y.sizes() == c.sizes() &&
                y.strides() == c.strides(), fn, ": y must match c (", c.scalar_type(), ", shape ", c.sizes(),
                ", strides ", c.strides(), ", ", c.device(), "), got ", y.scalar_type(), ", shape ", y.sizes(),
                ", strides ", y.strides(), ", ", y.device());
    TORCH_CHECK(act >= 0 && act < FASTGAN_NUM_ACTS, fn, ": act must be in [0, ", FASTGAN_NUM_ACTS, "), got ", act);
    const int64_t N = c.size(0), O = c.size(1);
    const at::ScalarType cdt = c.scalar_type() == at::ScalarType::Double ? at::ScalarType::Double
                                                                         : at::ScalarType::Float;
    const at::Tensor* dt = d.has_value() && d->defined() ? &*d : nullptr;
    if (dt) {
        TORCH_CHECK(dt->device() == c.device() && dt->scalar_type() == cdt && dt->dim() == 2 && dt->size(0) == N &&
                    dt->size(1) == O && dt->is_contiguous(), fn, ": d must be a contiguous [N, O] = [", N, ", ", O,
                    "] ", cdt, " tensor on ", c.device(), ", got ", dt->scalar_type(), ", shape ", dt->sizes(),
                    ", strides ", dt->strides(), ", ", dt->device());
    }
    const at::Tensor* nt = noise.has_value() && noise->defined() ? &*noise : nullptr;
    int noise_code = -1;
    if (nt) {
        noise_code = dtype_code(nt->scalar_type());
        TORCH_CHECK(nt->device() == c.device() && noise_code >= 0 && nt->sizes() == c.sizes(), fn,
                    ": noise must be a float16/bfloat16/float32/float64 view of shape ", c.sizes(), " on ",
                    c.device(), " (expand() a broadcastable noise), got ", nt->scalar_type(), ", shape ",
                    nt->sizes(), ", ", nt->device());
        for (int k = 0; k < 4; ++k)
            TORCH_CHECK(nt->stride(k) >= 0, fn, ": noise strides must be >= 0, got ", nt->strides());
    }
    const at::Tensor* bt = b.has_value() && b->defined() ? &*b : nullptr;
    if (bt) {
        TORCH_CHECK(bt->device() == c.device() && bt->scalar_type() == c.scalar_type() && bt->dim() == 1 &&
                    bt->size(0) == O && bt->is_contiguous(), fn, ": b must be a contiguous [O] = [", O, "] ",
                    c.scalar_type(), " tensor on ", c.device(), ", got ", bt->scalar_type(), ", shape ",
                    bt->sizes(), ", ", bt->device());
    }
    if (c.numel() == 0) return;

    const c10::cuda::CUDAGuard guard(c.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(c.device().index()).stream();
    ModconvEpilogueParams p{};
    p.y = y.data_ptr();
    p.c = c.const_data_ptr();
    p.d = dt ? dt->const_data_ptr() : nullptr;
    p.noise = nt ? nt->const_data_ptr() : nullptr;
    p.b = bt ? bt->const_data_ptr() : nullptr;
    p.n = N;
    p.o = O;
    p.h = c.size(2);
    p.w = c.size(3);
    for (int k = 0; k < 4; ++k) p.noise_stride[k] = nt ? nt->stride(k) : 0;
    p.noise_dtype_code = nt ? noise_code : FASTGAN_DTYPE_F32;
    p.channels_last = !nchw;
    p.act = static_cast<int>(act);
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;
    const cudaError_t err = fastgan_modconv_epilogue_launch(p, code, stream);
    TORCH_CHECK(err == cudaSuccess, fn, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace

TORCH_LIBRARY(fastgan_cuda, m) {
    m.def("modconv_dcoefs(Tensor(a!) d, Tensor s, Tensor wsq, float eps) -> ()");
    m.def("modconv_epilogue(Tensor(a!) y, Tensor c, Tensor? d, Tensor? noise, Tensor? b, int act, float alpha, "
          "float gain, float clamp) -> ()");
    m.def("bias_act_elementwise(Tensor(a!) out, Tensor? x, Tensor? b, Tensor? y, Tensor? dy, Tensor? ddx, "
          "int mode, int act, bool ref_x, int inner, int channels, float alpha, float gain, float clamp) -> ()");
    m.def("upfirdn2d(Tensor(a!) out, Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, "
          "int pady0) -> ()");
    m.def("adain_forward(Tensor(a!) y, Tensor(b!) mean, Tensor(c!) rstd, Tensor x, Tensor gamma, Tensor beta, "
          "float eps) -> ()");
    m.def("adain_backward(Tensor(a!) dx, Tensor(b!) dgamma, Tensor(c!) dbeta, Tensor dy, Tensor x, Tensor gamma, "
          "Tensor mean, Tensor rstd) -> ()");
}

TORCH_LIBRARY_IMPL(fastgan_cuda, CUDA, m) {
    m.impl("modconv_dcoefs", &modconv_dcoefs);
    m.impl("modconv_epilogue", &modconv_epilogue);
    m.impl("bias_act_elementwise", &bias_act_elementwise);
    m.impl("upfirdn2d", &upfirdn2d);
    m.impl("adain_forward", &adain_forward);
    m.impl("adain_backward", &adain_backward);
}

// `import fastgan._C` only needs to load this library (which runs the registrations above).
static struct PyModuleDef fastgan_c_module = {
    PyModuleDef_HEAD_INIT,
    "_C",                                                    // m_name
    "fastgan CUDA extension; registers torch.ops.fastgan_cuda",  // m_doc
    -1,                                                      // m_size
    nullptr, nullptr, nullptr, nullptr, nullptr,
};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&fastgan_c_module); }
