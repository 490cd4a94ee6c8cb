"""Crash-safe checkpoints, RNG state capture and resume for the trainer.

    atomic_save(obj, path)                       torch.save via temp file + fsync + os.replace
    load_checkpoint(path, map_location="cpu")    -> dict; clear errors for missing / corrupt files
                                                 (CheckpointError, a RuntimeError)
    get_rng_state() / set_rng_state(state)       python, numpy, torch CPU and CUDA generators
    get_generator_states(gens) / set_generator_states(gens, states)
                                                 extra torch.Generator objects the trainer owns
    CheckpointManager(run_dir, keep=3, prefix="ckpt")
        .save(state, kimg, step, metric=None) -> path    .list()    .latest()    .load_latest()
        .best()
    resolve_resume(resume, run_dir) -> (state, path) | None    for --resume None | "auto" | PATH

Run-directory layout written by :class:`CheckpointManager`::

    <run_dir>/<prefix>-<step:08d>.pt   checkpoints (the newest ``keep`` plus the best one)
    <run_dir>/latest.json              {"path": basename, "step": ..., "kimg": ...} of the last save
    <run_dir>/best.json                {"path": basename, "metric": ..., "step": ...} (lower wins)

Every file is replaced atomically, so a crash (or a kill) during a save leaves the previous files
intact; a checkpoint that is nevertheless unreadable (a truncated copy, a full disk) is skipped
with a warning by ``resume="auto"``.  Only one process (rank 0) should save into a run directory.

Checkpoints are loaded with ``torch.load(weights_only=False)`` because they hold config dicts and
numpy RNG states: unpickling can run arbitrary code, so load only checkpoints you trust (your own
runs).
"""
from __future__ import annotations

import datetime
import json
import math
import numbers
import os
import random
import re
import warnings
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import Tensor

import fastgan
from fastgan.utils import atomic_write, check_path

__all__ = ["atomic_save", "load_checkpoint", "get_rng_state", "set_rng_state",
           "get_generator_states", "set_generator_states", "CheckpointManager", "resolve_resume",
           "REQUIRED_KEYS", "CheckpointError"]

PathLike = Union[str, "os.PathLike[str]"]

#: Metadata keys every checkpoint must hold to be resumable (written by CheckpointManager.save).
REQUIRED_KEYS = ("step", "kimg")
_RNG_KEYS = ("python", "numpy", "torch")
LATEST_JSON = "latest.json"
BEST_JSON = "best.json"


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used: not loadable (truncated, corrupt, not a torch
    file), not a dict, or lacking required keys.  The CLI reports it in one line."""


# ---------------------------------------------------------------------------------------- files
def atomic_save(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` to ``path + ".tmp-<pid>"``, fsync, ``os.replace`` onto ``path`` and fsync
    the directory.  On any exception the temp file is removed and a previous file at ``path`` is
    untouched.  Parent directories are created."""
    path = check_path("atomic_save", "path", path)
    with atomic_write(path) as f:
        torch.save(obj, f)


def _write_json(path: str, data: dict) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=1) + "\n").encode("utf-8"))


def _read_json(path: str) -> Optional[dict]:
    """The dict in ``path``, or None if it is missing; unreadable files warn and give None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring unreadable {path!r}: {e}", stacklevel=3)
        return None
    if not isinstance(data, dict):
        warnings.warn(f"ignoring {path!r}: expected a JSON object, got {type(data).__name__}",
                      stacklevel=3)
        return None
    return data


def load_checkpoint(path: PathLike, map_location: Any = "cpu",
                    required: tuple[str, ...] = REQUIRED_KEYS) -> dict:
    """Load a checkpoint written by :func:`atomic_save` / :class:`CheckpointManager` (a trusted
    file: see the module docstring).

    Raises FileNotFoundError naming ``path`` if it is not a file, and :class:`CheckpointError` (a
    RuntimeError) naming it if it cannot be unpickled (truncated / corrupt) or is not a dict
    holding the ``required`` keys (default :data:`REQUIRED_KEYS`, what resuming needs; a caller
    that checks the contents itself, e.g. to name a foreign format, passes ``()``)."""
    path = check_path("load_checkpoint", "path", path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint file at {path!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch.load raises many types for a damaged archive / pickle
        raise CheckpointError(f"load_checkpoint: checkpoint {path!r} could not be loaded "
                              f"(truncated or corrupt?): {type(e).__name__}: {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"load_checkpoint: checkpoint {path!r} holds a "
                              f"{type(state).__name__}, expected a dict")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"load_checkpoint: checkpoint {path!r} lacks the required key(s) "
                              f"{missing}")
    return state


# ------------------------------------------------------------------------------------------ RNG
def get_rng_state() -> dict:
    """The global RNG states: python ``random``, numpy's global generator, torch CPU, and every
    CUDA device's (``"cuda"``: a list, or None when CUDA has not been initialised)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states captured by :func:`get_rng_state` (tensors may be on any device).

    CUDA states are restored when present and CUDA is available; a saved CUDA state that cannot be
    restored (no CUDA here, or a different device count) is reported with a warning."""
    if not isinstance(state, Mapping):
        raise TypeError(f"set_rng_state: state must be a dict from get_rng_state(), "
                        f"got {type(state).__name__}")
    missing = [k for k in _RNG_KEYS if k not in state]
    if missing:
        raise ValueError(f"set_rng_state: state lacks the key(s) {missing}; expected the dict from "
                         f"get_rng_state() with keys {list(_RNG_KEYS) + ['cuda']}")
    if not isinstance(state["torch"], Tensor):
        raise TypeError(f"set_rng_state: state['torch'] must be the Tensor from "
                        f"torch.get_rng_state(), got {type(state['torch']).__name__}")
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is None:
        return
    if not torch.cuda.is_available():
        warnings.warn("set_rng_state: the state holds CUDA RNG states but CUDA is not available; "
                      "they are not restored", stacklevel=2)
        return
    n = torch.cuda.device_count()
    if len(cuda) != n:
        warnings.warn(f"set_rng_state: the state holds {len(cuda)} CUDA RNG state(s) but {n} "
                      f"device(s) are visible; restoring the first {min(n, len(cuda))}",
                      stacklevel=2)
    for device, device_state in enumerate(cuda[:n]):
        torch.cuda.set_rng_state(device_state.cpu(), device)


def get_generator_states(generators: Mapping[str, torch.Generator]) -> dict[str, Tensor]:
    """``{name: generator.get_state()}`` for CPU or CUDA ``torch.Generator`` objects."""
    if not isinstance(generators, Mapping):
        raise TypeError(f"get_generator_states: generators must be a dict of name -> "
                        f"torch.Generator, got {type(generators).__name__}")
    states = {}
    for name, gen in generators.items():
        if not isinstance(gen, torch.Generator):
            raise TypeError(f"get_generator_states: generators[{name!r}] must be a "
                            f"torch.Generator, got {type(gen).__name__}")
        states[name] = gen.get_state()
    return states


def set_generator_states(generators: Mapping[str, torch.Generator],
                         states: Mapping[str, Tensor]) -> None:
    """Restore ``states`` (from :func:`get_generator_states`) into ``generators`` by name.  Every
    generator needs a state (ValueError naming the missing ones); extra states are ignored."""
    if not isinstance(generators, Mapping):
        raise TypeError(f"set_generator_states: generators must be a dict of name -> "
                        f"torch.Generator, got {type(generators).__name__}")
    if not isinstance(states, Mapping):
        raise TypeError(f"set_generator_states: states must be a dict of name -> Tensor, "
                        f"got {type(states).__name__}")
    missing = [name for name in generators if name not in states]
    if missing:
        raise ValueError(f"set_generator_states: states has no entry for generator(s) {missing} "
                         f"(it has {sorted(states)})")
    for name, gen in generators.items():
        if not isinstance(gen, torch.Generator):
            raise TypeError(f"set_generator_states: generators[{name!r}] must be a "
                            f"torch.Generator, got {type(gen).__name__}")
        if not isinstance(states[name], Tensor):
            raise TypeError(f"set_generator_states: states[{name!r}] must be a Tensor from "
                            f"get_state(), got {type(states[name]).__name__}")
        gen.set_state(states[name].cpu())


# -------------------------------------------------------------------------------------- manager
class CheckpointManager:
    """Numbered checkpoints in ``run_dir`` with rotation (the newest ``keep``) and a kept best one.

    ``best`` is the checkpoint with the lowest ``metric`` passed to :meth:`save` (e.g. FID / SWD);
    rotation never deletes it.  ``run_dir`` is created by the first save."""

    def __init__(self, run_dir: PathLike, keep: int = 3, prefix: str = "ckpt") -> None:
        self.run_dir = check_path("CheckpointManager", "run_dir", run_dir)
        if isinstance(keep, bool) or not isinstance(keep, int):
            raise TypeError(f"CheckpointManager: keep must be an int, got {type(keep).__name__}")
        if keep < 1:
            raise ValueError(f"CheckpointManager: keep must be >= 1, got {keep}")
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", prefix):
            raise ValueError(f"CheckpointManager: prefix must be a non-empty file-name prefix of "
                             f"letters, digits, '_', '-' or '.', got {prefix!r}")
        self.keep = keep
        self.prefix = prefix
        self._name_re = re.compile(rf"{re.escape(prefix)}-(\d+)\.pt")

    def __repr__(self) -> str:
        return f"CheckpointManager({self.run_dir!r}, keep={self.keep}, prefix={self.prefix!r})"

    def path_for(self, step: int) -> str:
        """The checkpoint path for ``step``: ``<run_dir>/<prefix>-<step:08d>.pt``."""
        return os.path.join(self.run_dir, f"{self.prefix}-{step:08d}.pt")

    def list(self) -> list[str]:
        """Paths of the existing checkpoints, newest (highest step) first."""
        try:
            names = os.listdir(self.run_dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            match = self._name_re.fullmatch(name)
            if match and os.path.isfile(os.path.join(self.run_dir, name)):
                found.append((int(match.group(1)), name))
        found.sort(reverse=True)
        return [os.path.join(self.run_dir, name) for _, name in found]

    def latest(self) -> Optional[str]:
        """Path of the newest checkpoint: the one latest.json names (the last save) when that is
        an existing checkpoint file of this manager, else the highest step; None if there are
        none.  (The last save need not be the highest step: a run branched from an earlier
        checkpoint of its own directory.)"""
        record = _read_json(os.path.join(self.run_dir, LATEST_JSON))
        name = record.get("path") if record is not None else None
        if isinstance(name, str) and self._name_re.fullmatch(os.path.basename(name)):
            path = os.path.join(self.run_dir, os.path.basename(name))
            if os.path.isfile(path):
                return path
        found = self.list()
        return found[0] if found else None

    def best(self) -> Optional[str]:
        """Path of the best checkpoint (lowest metric so far), or None if none is recorded / it is
        gone."""
        record = _read_json(os.path.join(self.run_dir, BEST_JSON))
        if record is None or not isinstance(record.get("path"), str):
            return None
        path = os.path.join(self.run_dir, os.path.basename(record["path"]))
        return path if os.path.isfile(path) else None

    def save(self, state: dict, kimg: float, step: int, metric: Optional[float] = None) -> str:
        """Write ``state`` plus metadata (``step``, ``kimg``, ``metric``, ``fastgan_version``,
        ``saved_at``; these keys override same-named keys of ``state``, which is not modified) to
        ``<prefix>-<step:08d>.pt``, update latest.json and best.json, then delete checkpoints
        beyond the newest ``keep`` except the best one and the one just written.  Returns its path.

        ``metric``: lower is better; None (or NaN) never becomes the best.  Overwriting the best
        checkpoint (same step) drops the old best record, since its contents are gone."""
        if not isinstance(state, dict):
            raise TypeError(f"CheckpointManager.save: state must be a dict, got "
                            f"{type(state).__name__}")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"CheckpointManager.save: step must be an int, got "
                            f"{type(step).__name__}")
        if step < 0:
            raise ValueError(f"CheckpointManager.save: step must be >= 0, got {step}")
        if isinstance(kimg, bool) or not isinstance(kimg, numbers.Real):
            raise TypeError(f"CheckpointManager.save: kimg must be a number, got "
                            f"{type(kimg).__name__}")
        if not math.isfinite(kimg) or kimg < 0:
            raise ValueError(f"CheckpointManager.save: kimg must be finite and >= 0, got {kimg}")
        if metric is not None and (isinstance(metric, bool)
                                   or not isinstance(metric, numbers.Real)):
            raise TypeError(f"CheckpointManager.save: metric must be None or a number, got "
                            f"{type(metric).__name__}")
        step, kimg = int(step), float(kimg)
        metric = None if metric is None else float(metric)

        existing = self.list()
        if existing and self._step_of(existing[0]) > step:
            warnings.warn(f"CheckpointManager.save: step {step} is below the newest checkpoint "
                          f"{existing[0]!r}; latest.json will name this save, which latest() and "
                          "load_latest() prefer", stacklevel=2)
        path = self.path_for(step)
        name = os.path.basename(path)
        payload = dict(state)
        payload.update(step=step, kimg=kimg, metric=metric,
                       fastgan_version=getattr(fastgan, "__version__", None),
                       saved_at=datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"))
        atomic_save(payload, path)
        _write_json(os.path.join(self.run_dir, LATEST_JSON),
                    {"path": name, "step": step, "kimg": kimg})
        self._update_best(name, step, metric)
        self._rotate(protect=name)
        return path

    def load_latest(self, map_location: Any = "cpu") -> Optional[tuple[dict, str]]:
        """``(state, path)`` of the newest loadable checkpoint, or None if there are none: first
        :meth:`latest` (latest.json's), then the others by step, highest first.

        An unloadable checkpoint (truncated, corrupt, missing :data:`REQUIRED_KEYS`) is skipped
        with a warning naming it; CheckpointError naming every file if none loads."""
        paths = self.list()
        first = self.latest()
        if first is not None:
            paths = [first] + [p for p in paths if p != first]
        errors = []
        for i, path in enumerate(paths):
            try:
                return load_checkpoint(path, map_location=map_location), path
            except (RuntimeError, OSError) as e:
                errors.append(f"{path!r}: {e}")
                fallback = (f"falling back to the previous one, {paths[i + 1]!r}"
                            if i + 1 < len(paths) else "no older checkpoint to fall back to")
                warnings.warn(f"CheckpointManager: skipping unloadable checkpoint {path!r}; "
                              f"{fallback} ({e})", stacklevel=2)
        if not paths:
            return None
        raise CheckpointError(f"CheckpointManager: none of the {len(paths)} checkpoint(s) in "
                              f"{self.run_dir!r} could be loaded:\n  " + "\n  ".join(errors))

    # ---------------------------------------------------------------------------- internals
    def _step_of(self, path: str) -> int:
        match = self._name_re.fullmatch(os.path.basename(path))
        assert match is not None, path
        return int(match.group(1))

    def _update_best(self, name: str, step: int, metric: Optional[float]) -> None:
        best_json = os.path.join(self.run_dir, BEST_JSON)
        record = _read_json(best_json)
        if record is not None and (record.get("path") == name or self.best() is None):
            # the recorded best was just overwritten, or its file is gone: forget it
            os.remove(best_json)
            record = None
        if metric is None or math.isnan(metric):
            return
        best_metric = None if record is None else record.get("metric")
        if not isinstance(best_metric, (int, float)) or metric < best_metric:
            _write_json(best_json, {"path": name, "metric": metric, "step": step})

    def _rotate(self, protect: str) -> None:
        best = self.best()
        keep = {protect} | ({os.path.basename(best)} if best else set())
        for path in self.list()[self.keep:]:
            if os.path.basename(path) not in keep:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass


# --------------------------------------------------------------------------------------- resume
def resolve_resume(resume: Optional[PathLike], run_dir: PathLike, map_location: Any = "cpu",
                   prefix: str = "ckpt") -> Optional[tuple[dict, str]]:
    """What ``--resume`` asks for, as ``(state, path)`` or None for a fresh start.

    ``None`` / ``""``: None.  ``"auto"``: the newest loadable checkpoint in ``run_dir``
    (:meth:`CheckpointManager.load_latest`; None when there is none).  Anything else is a
    checkpoint file: FileNotFoundError if it is missing and RuntimeError if it cannot be loaded --
    no fallback to another file when the user named one."""
    run_dir = check_path("resolve_resume", "run_dir", run_dir)
    if resume is None:
        return None
    resume = os.fspath(resume) if isinstance(resume, os.PathLike) else resume
    if not isinstance(resume, str):
        raise TypeError(f"resolve_resume: resume must be None, 'auto' or a checkpoint path, "
                        f"got {type(resume).__name__}")
    if resume == "":
        return None
    if resume == "auto":
        return CheckpointManager(run_dir, prefix=prefix).load_latest(map_location=map_location)
    resume = os.path.expanduser(resume)
    if not os.path.isfile(resume):
        raise FileNotFoundError(f"resolve_resume: resume checkpoint {resume!r} is not an existing "
                                f"file (resume='auto' picks the latest one in the run directory)")
    return load_checkpoint(resume, map_location=map_location), resume
