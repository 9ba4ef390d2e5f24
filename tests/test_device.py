"""Devices: CPU and CUDA (Numba's simulator in `make test`) give the same values and gradients;
moving data is explicit; mixing devices is an error that says what to do."""
import os

import numpy as np
import pytest

import tinygrad_lite as tl


def test_cpu_and_cuda_agree_on_a_small_network():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s) for s in [(4, 3), (3, 5), (5,), (4,)]]
    results = {}
    for device in ("cpu", "cuda"):
        x, w, b, t = [tl.Tensor(a, dtype=tl.float64, device=device, requires_grad=True)
                      for a in data]
        h = (x @ w + b).maximum(0.0)
        rows, cols = tl.arange(4, device=device), tl.Tensor([0, 1, 2, 3], device=device)
        loss = ((h.log_softmax(1)[rows, cols] * t).sum() + h.max(0).sum()
                + (h.std(1) / (h.var() + 1)).mean())
        loss.backward()
        results[device] = [loss.numpy()] + [p.grad.numpy() for p in (x, w, b, t)]
    for c, g in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(c, g, rtol=1e-10, atol=1e-12)


def test_to_moves_data_and_gradients_come_back():
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and isinstance(y.device, tl.Device)
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    np.testing.assert_allclose(y.cpu().numpy(), [1.0, 2.0])


def test_mixing_devices_is_an_error():
    with pytest.raises(RuntimeError, match="cpu and cuda.*to\\(device\\)"):
        tl.ones(2) + tl.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match="one device"):
        tl.cat([tl.ones(2), tl.ones(2, device="cuda")])


def test_cuda_without_gpu_or_simulator_says_how_to_get_one():
    """In a fresh interpreter with the simulator off and no GPU, asking for cuda must explain."""
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    code = ("import tinygrad_lite as tl\n"
            "try:\n    tl.zeros(2, device='cuda')\nexcept RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    if not any(why in out.stdout for why in ("is_available() is False", "importing numba.cuda")):
        pytest.skip("a real CUDA device is present: nothing to explain")  # never in CI
    assert "NUMBA_ENABLE_CUDASIM=1" in out.stdout and "NVIDIA GPU" in out.stdout
