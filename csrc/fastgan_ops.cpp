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

TORCH_LIBRARY(fastgan_cuda, m) {
    m.def("bias_act_elementwise(Tensor(a!) out, Tensor? x, Tensor? b, Tensor? y, Tensor? dy, Tensor? ddx, "
          "int mode, int act, bool ref_x, int inner, int channels, float alpha, float gain, float clamp) -> ()");
}

TORCH_LIBRARY_IMPL(fastgan_cuda, CUDA, m) {
    m.impl("bias_act_elementwise", &bias_act_elementwise);
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
