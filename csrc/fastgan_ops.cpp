// fastgan._C: torch op registrations for the CUDA kernels in csrc/*.cu.
//
// Importing fastgan._C loads this shared object; the static TORCH_LIBRARY initialisers below then
// register the `fastgan_cuda` ops with the dispatcher (torch.ops.fastgan_cuda.*).  The Python
// module itself is empty.
#include <Python.h>

#include <cstdint>
#include <optional>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "bias_act.h"
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

TORCH_LIBRARY(fastgan_cuda, m) {
    m.def("bias_act_elementwise(Tensor(a!) out, Tensor? x, Tensor? b, Tensor? y, Tensor? dy, Tensor? ddx, "
          "int mode, int act, bool ref_x, int inner, int channels, float alpha, float gain, float clamp) -> ()");
    m.def("upfirdn2d(Tensor(a!) out, Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, "
          "int pady0) -> ()");
}

TORCH_LIBRARY_IMPL(fastgan_cuda, CUDA, m) {
    m.impl("bias_act_elementwise", &bias_act_elementwise);
    m.impl("upfirdn2d", &upfirdn2d);
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
