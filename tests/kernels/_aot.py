"""Ahead-of-time Triton compilation for a GPU target on a machine with no GPU, and the checks we
make on the result: no register spills or local memory, and vectorised global accesses."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

TYPES = {"fp32": "*fp32", "fp16": "*fp16", "bf16": "*bf16", "fp64": "*fp64"}


def compile_for(kernel, dtype, scalars, constexprs, arch=90, num_warps=4, aligned=True,
                ptr_dtypes=None):
    """Compile ``kernel`` for sm_<arch>.  Pointer args get ``dtype``; ``scalars`` maps the other
    runtime args to a Triton type ('i32', 'i64', 'fp32'); with ``aligned`` every pointer (and the
    i32 args named in scalars with a trailing '/16') is declared 16-byte divisible, as Triton's
    launcher specialises real, aligned tensors.  ``ptr_dtypes`` overrides the dtype of named
    pointer args (e.g. an fp32 workspace of an fp16 kernel)."""
    names = list(kernel.arg_names)
    sig, attrs = {}, {}
    for i, n in enumerate(names):
        if n in constexprs:
            sig[n] = "constexpr"
        elif n.endswith("_ptr"):
            sig[n] = TYPES[(ptr_dtypes or {}).get(n, dtype)]
            if aligned:
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            t = scalars[n]
            if t.endswith("/16"):
                t = t[:-3]
                attrs[(i,)] = [["tt.divisibility", 16]]
            sig[n] = t
    const = {(names.index(k),): v for k, v in constexprs.items()}
    src = ASTSource(kernel, sig, const, attrs)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=num_warps))


def _cuobjdump():
    here = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    return here if os.path.exists(here) else shutil.which("cuobjdump")


def resource_usage(compiled):
    """{'REG': n, 'STACK': n, 'LOCAL': n, ...} from the cubin's resource table."""
    tool = _cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found (neither in triton's nvidia backend nor on PATH)")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        out = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "REG:" in ln)
    return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", line)}


def assert_no_spills(compiled):
    ptx = compiled.asm["ptx"]
    assert ".local" not in ptx, "PTX uses local memory"
    ru = resource_usage(compiled)
    assert ru["STACK"] == 0 and ru["LOCAL"] == 0, f"register spills / stack: {ru}"
    return ru


def global_accesses(compiled):
    ptx = compiled.asm["ptx"]
    return re.findall(r"\bld\.global[\w.]*", ptx), re.findall(r"\bst\.global[\w.]*", ptx)
