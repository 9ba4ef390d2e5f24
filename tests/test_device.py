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
        loss = ((h.log_softmax(1)[rows, cols] * t).sum() + h.amax(0).sum()
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


def test_cpu_and_cuda_agree_on_every_op_at_shapes_spanning_several_blocks():
    """Rows of 300 elements: more than one 256-thread block per launch, and rows longer than
    one block for the reductions; forward and gradients, CPU against CUDA."""
    rng = np.random.default_rng(5)
    x_np, y_np = rng.uniform(0.5, 2.0, (1, 300)), rng.uniform(0.5, 2.0, (1, 300))
    cases = {
        "unary": lambda x, y: x.exp() + x.log() + x.sqrt() + x.tanh() + x.sigmoid()
        + (x - 1.0).relu() + (x - 1.2).abs() + x.clip(0.8, 1.5) * y,
        "binary": lambda x, y: x * y + x / y - x ** y + x.maximum(y + 0.01) - y.minimum(x),
        "reductions": lambda x, y: (x.softmax(1) + x.log_softmax(1)) * x.sum(1, keepdims=True)
        + x.var(1, keepdims=True) * y + x.amax(1, keepdims=True) + x.logsumexp(1, keepdims=True),
        "movement": lambda x, y: tl.cat([x.T.reshape(1, 300), x[:, ::2].pad(((0, 0), (0, 150)))],
                                        0)[1:, [3, 3, 7]].sum(0) * y[0, :3],
        "matmul": lambda x, y: (x @ x.T) @ x[:, :7] * y[:, :7],
    }
    for name, fn in cases.items():
        results = {}
        for device in ("cpu", "cuda"):
            x = tl.tensor(x_np, dtype=tl.float64, device=device, requires_grad=True)
            y = tl.tensor(y_np, dtype=tl.float64, device=device, requires_grad=True)
            out = fn(x, y)
            (out * out).sum().backward()
            results[device] = (out.numpy(), x.grad.numpy(), y.grad.numpy())
        for c, g in zip(results["cpu"], results["cuda"]):
            np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-10, err_msg=name)
