"""setup.py's imports, constants and functions without its setup() call, so tests check the
build's own decisions (which toolkit, whether to build) rather than a copy of them."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_functions() -> dict:
    tree = ast.parse((ROOT / "setup.py").read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))
            or (isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper()
                                                  for t in n.targets))]
    ns = {"__file__": str(ROOT / "setup.py")}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "setup.py", "exec"), ns)
    return ns
