"""Devices and the one way an op finds its kernels: `tensor.device.backend` is the kernel
package for that device (kernels/cpu or kernels/cuda, identical names). Backends load lazily,
so `import tinygrad_lite` stays fast and never touches CUDA unless asked."""
import ctypes
import importlib
import os
import site
import sys

import numba


def _prefer_tbb():
    """Use Numba's TBB threading layer: the default OpenMP layer is not fork-safe, TBB is safe
    under fork and under concurrent calls from threads. pip's `tbb` wheel puts libtbb in
    <prefix>/lib, which the loader does not search, so load it by path first."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return  # the user chose
    for prefix in (sys.prefix, site.USER_BASE):
        path = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return
            numba.config.THREADING_LAYER = "safe"
            return


_prefer_tbb()

CUDA_HELP = ("device 'cuda' needs an NVIDIA GPU with a working driver and the numba-cuda package "
             "(pip install 'tinygrad_lite[cuda]'); without a GPU, set NUMBA_ENABLE_CUDASIM=1 "
             "before starting Python to run the CUDA kernels on Numba's simulator")


class Device:
    __slots__ = ("type", "_backend")

    def __init__(self, type):
        self.type = type
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:
            if self.type == "cuda":
                _check_cuda()
            self._backend = importlib.import_module(f"tinygrad_lite.kernels.{self.type}")
        return self._backend

    def __eq__(self, other):
        if isinstance(other, str):
            other = get_device(other)
        return isinstance(other, Device) and other.type == self.type

    def __hash__(self):
        return hash(self.type)

    def __repr__(self):
        return f"device(type='{self.type}')"

    def __str__(self):
        return self.type


_DEVICES = {"cpu": Device("cpu"), "cuda": Device("cuda")}


def get_device(device=None):
    """'cpu', 'cuda', 'cuda:0' or a Device -> the Device; None -> cpu."""
    if device is None:
        return _DEVICES["cpu"]
    if isinstance(device, Device):
        return device
    if isinstance(device, str):
        name = device.lower()
        if name == "cuda:0":
            name = "cuda"
        if name in _DEVICES:
            return _DEVICES[name]
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def _check_cuda():
    try:
        from numba import cuda
    except ImportError as e:
        raise RuntimeError(f"{CUDA_HELP} (importing numba.cuda failed: {e})") from None
    if not cuda.is_available():
        raise RuntimeError(f"{CUDA_HELP} (numba.cuda.is_available() is False here)")


def cuda_is_available():
    try:
        _check_cuda()
        return True
    except RuntimeError:
        return False
