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


def _has_cuda_headers(root):
    return bool(root) and os.path.exists(os.path.join(root, "include", "cuda_runtime.h"))


def _cuda_home(nvcc):
    """The toolkit root of ``nvcc``: the folder above its bin/ -- or, when that holds no headers
    (the nvcc on PATH is a wrapper script, e.g. /usr/local/bin/nvcc running the real one), the TOP
    that nvcc itself reports in a dry run.  None when neither holds include/cuda_runtime.h."""
    root = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    if _has_cuda_headers(root):
        return root
    import subprocess

    try:
        out = subprocess.run([nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("#$ TOP="):
            top = os.path.normpath(line.split("=", 1)[1].strip())
            return top if _has_cuda_headers(top) else None
    return None


def _want_cuda():
    """(build the extension?, why not).  A forced build (FASTGAN_BUILD_CUDA=1) that cannot happen
    raises with what to do; an automatic one is skipped quietly.  Sets CUDA_HOME for torch's
    cpp_extension when it had to find the toolkit root itself."""
    flag = os.environ.get("FASTGAN_BUILD_CUDA", "").strip()
    if flag == "0":
        return False, "FASTGAN_BUILD_CUDA=0"
    forced = flag == "1"

    def no(why, fix):
        if forced:
            raise RuntimeError(f"FASTGAN_BUILD_CUDA=1 but {why}; {fix}")
        return False, why

    env_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    nvcc = os.path.join(env_home, "bin", "nvcc") if env_home else shutil.which("nvcc")
    if not nvcc or not os.path.exists(nvcc):
        return no("no CUDA toolkit (nvcc on PATH, or CUDA_HOME) was found",
                  "install the CUDA toolkit or set CUDA_HOME")
    try:
        import torch  # noqa: F401  (only needed to build the extension)
    except ImportError:
        return no("torch is not importable at build time",
                  "install torch first, then `pip install --no-build-isolation -e .`")
    if torch.version.cuda is None:
        return no("the installed torch is a CPU build", "install a CUDA build of torch")
    home = env_home or _cuda_home(nvcc)
    if not _has_cuda_headers(home):
        return no(f"no CUDA headers (include/cuda_runtime.h) were found for {nvcc}",
                  "set CUDA_HOME to the toolkit's root folder")
    # torch.utils.cpp_extension reads CUDA_HOME when first imported (in _ext_modules)
    os.environ["CUDA_HOME"] = home
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
        # headers: a rebuild without ninja (which tracks them itself) still sees their edits
        depends=sorted(glob.glob(os.path.join("csrc", "*.h"))
                       + glob.glob(os.path.join("csrc", "*.cuh"))),
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
