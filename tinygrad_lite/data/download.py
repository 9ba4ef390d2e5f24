"""Fetch, verify and unpack a data archive without ever leaving a half-written file or
directory behind: the download goes to a temporary file that is renamed into place only after
its MD5 matches, and the archive is unpacked into a temporary directory that is renamed into
place when complete. Members that would land outside the target (absolute paths, "..",
links, devices) are refused."""
import hashlib
import os
import pathlib
import shutil
import tarfile
import tempfile
import urllib.request

__all__ = ["data_root", "resolve_root", "download_url", "md5sum", "extract_tar"]

ENV_VAR = "TINYGRAD_LITE_DATA"


def data_root(root=None):
    """The data directory: `root`, else $TINYGRAD_LITE_DATA, else ~/.cache/tinygrad_lite."""
    return resolve_root(root)[0]


def resolve_root(root=None):
    """(directory, who gave it): ("the root argument" or "$TINYGRAD_LITE_DATA") for a root the
    user gave, None for the default ~/.cache/tinygrad_lite. A root the user gave must hold the
    data; only the default may fall back to a bundled sample."""
    if root is not None and str(root) != "":
        return pathlib.Path(root).expanduser(), "the root argument"
    if os.environ.get(ENV_VAR):
        return pathlib.Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    return pathlib.Path.home() / ".cache" / "tinygrad_lite", None


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_url(url, path, md5=None, timeout=60):
    """Download `url` to `path` with a tqdm progress bar; with `md5`, check the file first and
    raise (keeping nothing) if the download does not match."""
    from tqdm.auto import tqdm
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name) as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise OSError(f"download of {url} is corrupt: MD5 {got}, expected {md5}; nothing "
                          f"was kept, try again (or download it by hand to {path})")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _check_member(member, target):
    dest = (target / member.name).resolve()
    if not (member.isfile() or member.isdir()):
        raise OSError(f"refusing to extract {member.name!r}: only plain files and directories "
                      f"are allowed, not links or devices")
    if os.path.isabs(member.name) or not dest.is_relative_to(target):
        raise OSError(f"refusing to extract {member.name!r}: it would be written outside "
                      f"{target}")


def extract_tar(archive, root, top):
    """Unpack the tar archive's directory `top` into root/top, atomically."""
    root = pathlib.Path(root)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=root, prefix=f".{top}."))
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, tmp.resolve())
            tar.extractall(tmp, members=members, filter="data")
        if not (tmp / top).is_dir():
            raise OSError(f"{archive} holds no {top}/ directory")
        final = root / top
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / top
