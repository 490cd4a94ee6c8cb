"""fastgan build.

The pure-Python package (reference ops + Triton kernels) always installs.  The CUDA extension
``fastgan._C`` is built from ``csrc/`` only when a CUDA toolkit *and* a CUDA build of torch are
present, or when ``FASTGAN_BUILD_CUDA=1`` forces it (``=0`` skips it).  torch is imported only in
that case, so ``pip install --no-build-isolation`` on a CPU machine never needs it at build time and
pip's build isolation never pulls a second (CUDA) torch.
"""
import glob
import os
import shutil

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0;8.6;8.9;9.0"  # used when no GPU is visible at build time


def _want_cuda():
    flag = os.environ.get("FASTGAN_BUILD_CUDA", "").strip()
    if flag == "0":
        return False, "FASTGAN_BUILD_CUDA=0"
    forced = flag == "1"
    nvcc = os.environ.get("CUDA_HOME") or shutil.which("nvcc")
    if not nvcc:
        if forced:
            raise RuntimeError("FASTGAN_BUILD_CUDA=1 but no CUDA toolkit (nvcc / CUDA_HOME) was found")
        return False, "no CUDA toolkit"
    try:
        import torch  # noqa: F401  (only needed to build the extension)
    except ImportError:
        if forced:
            raise RuntimeError("FASTGAN_BUILD_CUDA=1 needs torch installed first; use "
                               "`pip install --no-build-isolation -e .` after installing torch")
        return False, "torch not importable at build time"
    if torch.version.cuda is None:
        if forced:
            raise RuntimeError("FASTGAN_BUILD_CUDA=1 but the installed torch is a CPU build")
        return False, "torch is a CPU build"
    return True, ""


def _ext_modules():
    ok, why = _want_cuda()
    if not ok:
        print(f"fastgan: not building the CUDA extension ({why}); Triton and reference backends only")
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension

    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "*.cu")))
    ext = CUDAExtension(
        name="fastgan._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={
            "cxx": ["-O3", "-std=c++20"],
            "nvcc": ["-O3", "-std=c++20", "--use_fast_math", "-lineinfo",
                     "--expt-relaxed-constexpr"],
        },
    )
    # BuildExtension honours MAX_JOBS (ninja parallelism).
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _ext_modules()

setup(
    name="fastgan",
    version="0.1.0",
    description="Fused GPU kernels (Triton + CUDA) for GANs, with PyTorch reference implementations",
    long_description=open(os.path.join(ROOT, "README.md")).read() if os.path.exists(
        os.path.join(ROOT, "README.md")) else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # kernels/ and bench/ install as fastgan.kernels and fastgan.bench (`fastgan bench`)
    packages=find_packages(include=["fastgan", "fastgan.*"]) + ["fastgan.kernels", "fastgan.bench"],
    package_dir={"fastgan": "fastgan", "fastgan.kernels": "kernels", "fastgan.bench": "bench"},
    # torch and triton are installed by the Makefile / by the user
    install_requires=["numpy", "tqdm", "pillow"],
    extras_require={
        "triton": ["triton"],
        "data": ["scikit-learn", "pyyaml"],  # the `digits` dataset; YAML config files
        "tensorboard": ["tensorboard"],
        "test": ["pytest", "pytest-benchmark", "numpy", "matplotlib", "tqdm", "pillow",
                 "scikit-learn", "pyyaml"],
    },
    entry_points={"console_scripts": ["fastgan = fastgan.cli:main"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
