"""Checkpoints: a nested training state (model and optimiser state_dicts, scheduler state,
history, RNG states, ...) saved as ONE `.npz` file, written atomically.

Layout of the file: every array (a Tensor or a NumPy array anywhere in the state) is its own
`.npz` entry named by its path in the state ("model/0.weight",
"optimizer/state/0/momentum_buffer"), so `np.load(path).files` shows what is inside; the rest
of the tree (numbers, strings, lists, dicts, and where each array goes) is JSON in the entry
`__meta__`. Python floats round-trip exactly through JSON (repr is the shortest exact form),
and the file is read with `allow_pickle=False`: loading a checkpoint never runs code.

Atomic: the file is written to a temporary file in the same directory, flushed and fsynced,
then `os.replace`d over the target (atomic on POSIX and Windows), and the directory is fsynced
so the rename itself survives a crash. A failure at any point leaves the old checkpoint intact.
The temporary file is created with mode 0o666 and the kernel applies the umask, so the
checkpoint gets the mode open() would give it without the writer ever calling os.umask (which
sets the mask for the whole process: another thread creating a file meanwhile would get the
wrong mode).

Reading refuses, with an error naming the file, anything that is not an intact checkpoint: a
missing, empty, truncated or corrupt file, an .npz without the `__meta__` entry, or one with
object (pickled) arrays, which a checkpoint never holds.
"""
import json
import os
import secrets
import zipfile
import zlib

import numpy as np

from ..tensor import Tensor

FORMAT = "tinygrad_lite.checkpoint"
VERSION = 1
META = "__meta__"

__all__ = ["save_checkpoint", "load_checkpoint"]


# ----- the nested state <-> (JSON tree, arrays) -----
def _pack(obj, path, arrays):
    """obj as a JSON-able tree; arrays go to `arrays` under a key made from `path`."""
    if isinstance(obj, (Tensor, np.ndarray)):
        key = "/".join(path) or "value"
        while key in arrays or key == META:  # dict keys 0 and "0" would share a path
            key += "_"
        if isinstance(obj, Tensor):
            arrays[key] = obj.numpy()
            return {"__tensor__": key, "device": str(obj.device),
                    "requires_grad": obj.requires_grad}
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        items = [[_pack(k, path + ("key",), arrays), _pack(v, path + (str(k),), arrays)]
                 for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: v for k, v in items}
        return {"__dict__": items}  # int keys (optimiser state by index) keep their type
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, path + (str(i),), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, path + (str(i),), arrays) for i, v in enumerate(obj)]
    raise TypeError(f"save_checkpoint: cannot store a {type(obj).__name__} at "
                    f"'{'/'.join(path)}'; expected Tensors, NumPy arrays, numbers, strings, None, "
                    f"lists, tuples or dicts")


def _unpack(tree, arrays, device):
    if isinstance(tree, list):
        return [_unpack(v, arrays, device) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        a = arrays[tree["__tensor__"]]
        t = Tensor(a, dtype=a.dtype, device=device if device is not None else tree["device"])
        return t.requires_grad_() if tree["requires_grad"] else t
    if "__ndarray__" in tree:
        return arrays[tree["__ndarray__"]]
    if "__tuple__" in tree:
        return tuple(_unpack(v, arrays, device) for v in tree["__tuple__"])
    if "__dict__" in tree:
        return {_unpack(k, arrays, device): _unpack(v, arrays, device)
                for k, v in tree["__dict__"]}
    return {k: _unpack(v, arrays, device) for k, v in tree.items()}


# ----- atomic file writing -----
def _write_npz(fileobj, arrays):
    """The one place bytes are written (tests replace it with one that fails half-way)."""
    np.savez(fileobj, **arrays)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(directory, base):
    """(fd, path) of a new file next to the target. Created with mode 0o666 so the kernel
    applies the process umask exactly as open() does (tempfile.mkstemp would make it 0600 and
    learning the umask to widen it means setting it, process-wide)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"save_checkpoint: could not create a temporary file in "
                          f"{directory!r} (100 names taken)")


def _atomic_savez(path, arrays):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = _create_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


# ----- public -----
def save_checkpoint(path, state):
    """Write `state` (a dict: state_dicts, numbers, strings, lists, Tensors, NumPy arrays, in
    any nesting) to `path` as one .npz, atomically. Returns the path.

    >>> save_checkpoint("run/ckpt.npz", {"model": model.state_dict(), "epoch": 3})
    """
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: expected a dict of state, got {type(state).__name__}")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"save_checkpoint: the file name must end in .npz, got {path!r}")
    arrays = {}
    tree = _pack(state, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "state": tree})
    arrays[META] = np.array(meta)
    _atomic_savez(path, arrays)
    return path


def _read_arrays(path):
    """Every entry of the .npz at `path`, as NumPy arrays, or a ValueError naming the file and
    what is wrong with it."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # np.load would try to unpickle it and advise allow_pickle
        what = "empty" if not head else "not an .npz (zip) file"
        raise ValueError(f"load_checkpoint: {path!r} is {what}; expected a checkpoint written "
                         f"by save_checkpoint")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if META not in names:
                shown = names[:5] + (["..."] if len(names) > 5 else [])
                raise ValueError(f"load_checkpoint: {path!r} is an .npz file but not a "
                                 f"tinygrad_lite checkpoint (it has no '{META}' entry; its "
                                 f"entries are {shown})")
            arrays = {}
            for name in names:
                try:
                    arrays[name] = npz[name]
                except ValueError as e:
                    if "allow_pickle" not in str(e) and "Object arrays" not in str(e):
                        raise
                    raise ValueError(f"load_checkpoint: {path!r} has an object array (pickled "
                                     f"Python objects) in entry {name!r}; a checkpoint holds "
                                     f"only plain arrays and is read without unpickling, so "
                                     f"loading never runs code") from None
            return arrays
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ValueError(f"load_checkpoint: {path!r} is truncated or corrupt "
                         f"({type(e).__name__}: {e}); the last complete write replaces the "
                         f"file atomically, so it was damaged after it was written") from None


def load_checkpoint(path, device=None):
    """The state dict that save_checkpoint wrote to `path`. Tensors come back on the device
    they were saved from, or on `device` when given (like torch.load's map_location)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint file at {path!r}")
    arrays = _read_arrays(path)
    try:
        meta = json.loads(str(arrays.pop(META)))
    except (ValueError, UnicodeError) as e:
        raise ValueError(f"load_checkpoint: {path!r} has a '{META}' entry that is not the "
                         f"JSON a checkpoint holds ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or \
            meta.get("version") != VERSION:
        got = meta if not isinstance(meta, dict) else (meta.get("format"), meta.get("version"))
        raise ValueError(f"load_checkpoint: {path!r} has format/version {got!r}, expected "
                         f"{FORMAT!r} version {VERSION}")
    try:
        return _unpack(meta["state"], arrays, device)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"load_checkpoint: {path!r} is inconsistent: its '{META}' tree does "
                         f"not match its arrays ({type(e).__name__}: {e})") from None
