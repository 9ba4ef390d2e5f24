"""CIFAR-10: the standard python layout (a tiny generated copy), the shipped sample, clear
errors for missing and corrupt files, and download against a local HTTP server."""
import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data
from tinygrad_lite.data import CIFAR10

PER_BATCH = 3


def batch_bytes(seed, n):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    d = {b"batch_label": b"test", b"labels": labels, b"data": rows,
         b"filenames": [b"x.png"] * n}
    return pickle.dumps(d, protocol=2), rows, np.array(labels)


def write_layout(root):
    """root/cifar-10-batches-py with 5 training batches and a test batch of 3 images each."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows, labels = {}, {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        blob, rows[name], labels[name] = batch_bytes(i, PER_BATCH)
        (folder / name).write_bytes(blob)
    meta = {b"label_names": [c.encode() for c in CIFAR10.classes], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, rows, labels


def test_reads_the_standard_layout_as_nhwc_uint8(tmp_path):
    folder, rows, labels = write_layout(tmp_path)
    train, test = CIFAR10(tmp_path), CIFAR10(str(tmp_path), train=False)
    assert train.data.shape == (5 * PER_BATCH, 32, 32, 3) and train.data.dtype == np.uint8
    assert train.targets.dtype == np.int64 and len(test) == PER_BATCH
    first = rows["data_batch_1"][1]  # row: 1024 red, 1024 green, 1024 blue, row-major
    for h, w, c in [(0, 0, 0), (0, 1, 0), (1, 0, 1), (31, 30, 2)]:
        assert train.data[1, h, w, c] == first[c * 1024 + h * 32 + w]
    np.testing.assert_array_equal(train.data[PER_BATCH:2 * PER_BATCH].reshape(PER_BATCH, -1),
                                  rows["data_batch_2"].reshape(-1, 3, 1024)
                                  .transpose(0, 2, 1).reshape(PER_BATCH, -1))
    np.testing.assert_array_equal(test.targets, labels["test_batch"])
    image, label = train[4]
    assert image.shape == (32, 32, 3) and label == labels["data_batch_2"][1]
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    sub = data.Subset(train, [5, 0])
    assert sub.classes is train.classes and sub.layout == "NHWC"
    np.testing.assert_array_equal(sub.__getitems__(np.array([1]))[0], train.data[[0]])
    # the loader hands out NCHW views over NHWC float32 memory
    x, y = next(iter(data.DataLoader(train, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and x.stride() == (3072, 1, 96, 3)
    np.testing.assert_allclose(x.numpy(), train.data[:4].transpose(0, 3, 1, 2) / 255.0,
                               rtol=1e-6)


def test_root_from_the_environment_variable(tmp_path, monkeypatch):
    write_layout(tmp_path)
    monkeypatch.setenv("TINYGRAD_LITE_DATA", str(tmp_path))
    assert len(CIFAR10(train=False)) == PER_BATCH


def test_missing_and_truncated_files_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_LITE_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        CIFAR10(tmp_path / "nowhere")
    msg = str(e.value)
    for part in ["data_batch_1", str(tmp_path / "nowhere" / "cifar-10-batches-py"),
                 "TINYGRAD_LITE_DATA", "download=True", "sample='auto'"]:
        assert part in msg
    folder, _, _ = write_layout(tmp_path)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(OSError, match=r"data_batch_3 is truncated or corrupt"):
        CIFAR10(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8),
                                                        b"labels": [0, 1]}))
    with pytest.raises(OSError, match=r"expected uint8 \(n, 3072\)"):
        CIFAR10(tmp_path)
    with pytest.raises(ValueError, match="sample must be False, True or 'auto'"):
        CIFAR10(tmp_path, sample="yes")


def no_root_given(tmp_path, monkeypatch):
    """Neither root= nor $TINYGRAD_LITE_DATA, and a default root (under $HOME) that is empty."""
    monkeypatch.delenv("TINYGRAD_LITE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("as_folder", [False, True])
def test_a_given_root_may_be_the_folder_or_its_parent(tmp_path, monkeypatch, as_folder):
    folder, _, labels = write_layout(tmp_path)
    root = folder if as_folder else tmp_path
    for given in (str(root), None):
        if given is None:
            monkeypatch.setenv("TINYGRAD_LITE_DATA", str(root))
        test = CIFAR10(given, train=False, sample="auto")
        assert not test.is_sample and len(test) == PER_BATCH
        np.testing.assert_array_equal(test.targets, labels["test_batch"])


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_given_root_without_the_data_is_an_error_even_with_sample_auto(tmp_path, monkeypatch,
                                                                         capsys, how):
    no_root_given(tmp_path, monkeypatch)
    # the demo's --data-root .../cifar-10-batches-py, mistyped: no fallback to the sample
    root = tmp_path / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    if how == "environment":
        monkeypatch.setenv("TINYGRAD_LITE_DATA", str(root))
    with pytest.raises(FileNotFoundError) as e:
        CIFAR10(str(root) if how == "argument" else None, sample="auto")
    msg = str(e.value)
    given_by = "the root argument" if how == "argument" else "$TINYGRAD_LITE_DATA"
    assert f"CIFAR10: {root} (given by {given_by}) does not hold the CIFAR-10 data set" in msg
    assert f"looked for data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5 " \
           f"in {root};" in msg
    assert "only when no root is given" in msg and "download=True" in msg
    assert capsys.readouterr().err == ""
    parent = tmp_path / "elsewhere"
    parent.mkdir()
    with pytest.raises(FileNotFoundError, match="looked for test_batch in "
                       + str(parent / "cifar-10-batches-py") + " and in " + str(parent)
                       + " itself; missing test_batch"):
        CIFAR10(parent, train=False, sample="auto")


def test_the_shipped_sample_stands_in_and_says_so(tmp_path, monkeypatch, capsys):
    no_root_given(tmp_path, monkeypatch)
    train = CIFAR10(sample="auto")
    assert "full data set not found" in capsys.readouterr().err and train.is_sample
    test = CIFAR10(tmp_path, train=False, sample=True)
    assert train.data.shape == (5000, 32, 32, 3) and train.data.dtype == np.uint8
    assert test.data.shape == (1000, 32, 32, 3) and test.targets.dtype == np.int64
    assert np.bincount(train.targets).tolist() == [500] * 10
    assert np.bincount(test.targets).tolist() == [100] * 10
    assert 80 < train.data.mean() < 160 and train.data.std() > 40  # real images, not noise
    aug = data.Compose([data.RandomCrop(32, 4, "reflect"), data.RandomHorizontalFlip()])
    train.transform = aug
    tl.manual_seed(2)
    x, y = next(iter(data.DataLoader(train, batch_size=8, shuffle=True, num_workers=1)))
    assert x.shape == (8, 3, 32, 32) and x.stride() == (3072, 1, 96, 3) and y.shape == (8,)
    assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0


# ----- download against a local server -----

def make_archive(rows, corrupt=False, escape=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
        for i, name in enumerate(names):
            blob = batch_bytes(i, 2)[0]
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        if escape:
            info = tarfile.TarInfo("cifar-10-batches-py/../../escaped")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    blob = buf.getvalue()
    md5 = hashlib.md5(blob).hexdigest()
    if corrupt:
        blob = blob[:-100] + bytes(100)
    return blob, md5


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_fetches_checks_and_extracts(server, tmp_path, monkeypatch):
    served, url = server
    blob, md5 = make_archive(None)
    (served / "good.tar.gz").write_bytes(blob)
    monkeypatch.setattr(CIFAR10, "url", f"{url}/good.tar.gz")
    monkeypatch.setattr(CIFAR10, "md5", md5)
    root = tmp_path / "root"
    train = CIFAR10(root, download=True)
    assert train.data.shape == (10, 32, 32, 3) and not train.is_sample
    assert (root / "cifar-10-python.tar.gz").is_file()
    (served / "good.tar.gz").unlink()  # files present: no second download
    assert len(CIFAR10(root, train=False, download=True)) == 2


def test_download_rejects_a_corrupt_archive_and_keeps_nothing(server, tmp_path,
                                                               monkeypatch):
    served, url = server
    blob, md5 = make_archive(None, corrupt=True)
    (served / "bad.tar.gz").write_bytes(blob)
    monkeypatch.setattr(CIFAR10, "url", f"{url}/bad.tar.gz")
    monkeypatch.setattr(CIFAR10, "md5", md5)
    root = tmp_path / "root"
    with pytest.raises(OSError, match=f"corrupt: MD5 .*, expected {md5}"):
        CIFAR10(root, download=True)
    assert list(root.iterdir()) == []  # no partial file, no half-extracted folder


def test_download_refuses_members_outside_the_root(server, tmp_path, monkeypatch):
    served, url = server
    blob, md5 = make_archive(None, escape=True)
    (served / "evil.tar.gz").write_bytes(blob)
    monkeypatch.setattr(CIFAR10, "url", f"{url}/evil.tar.gz")
    monkeypatch.setattr(CIFAR10, "md5", md5)
    root = tmp_path / "a" / "root"
    with pytest.raises(OSError, match="would be written outside"):
        CIFAR10(root, download=True)
    assert not (tmp_path / "a" / "escaped").exists() and not (root / "escaped").exists()
    assert not (root / "cifar-10-batches-py").exists()
