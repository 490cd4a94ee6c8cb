"""Keep bench/ out of ordinary pytest runs: collect it only when a path inside bench/ is named
on the command line (``pytest bench/``, ``pytest bench/test_ops.py -k fwd``)."""
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path, config):
    for arg in config.args:
        p = Path(str(arg).split("::")[0]).resolve()
        if p == HERE or HERE in p.parents:
            return None  # explicitly asked for: collect normally
    return True
