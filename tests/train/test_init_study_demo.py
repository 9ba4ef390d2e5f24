"""demos/init_study.py at width 64 (the full run is 4096 wide): it writes its picture, prints
the std table, and the table shows what holds at any width: N(0, 0.01^2) makes the tanh
activations collapse (each layer multiplies their scale by about 0.01 sqrt(width) = 0.08
here), Xavier keeps tanh and Kaiming keeps ReLU well-scaled, ReLU with Xavier shrinks layer by
layer, and with batch norm every setting has the same, healthy scale in every layer."""
import pytest

from helpers import load_demo

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo():
    return load_demo("init_study")


def printed_table(text, title_start):
    """{setting: [std per layer]} parsed from the printed table that starts with title_start."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows[" ".join(line[:32].split())] = [float(v) for v in line[32:].split()]
    return rows


def test_demo_draws_and_prints_the_lectures_facts(demo, tmp_path, capsys):
    demo.main(["--width", "64", "--samples", "64", "--out", str(tmp_path)])
    assert (tmp_path / "init_study.png").read_bytes()[:8] == PNG
    std = printed_table(capsys.readouterr().out, "std of each layer")
    assert len(std) == 10 and all(len(v) == 6 for v in std.values())
    small, xavier = std["tanh N(0, 0.01^2)"], std["tanh Xavier 1/sqrt(Din)"]
    relu_xavier, kaiming = std["relu Xavier 1/sqrt(Din)"], std["relu Kaiming sqrt(2/Din)"]
    assert small[-1] < 1e-3 * xavier[-1]  # collapse: about 0.08^5 of layer 1's scale
    assert all(a > b for a, b in zip(small, small[1:]))
    assert 0.1 < xavier[-1] < 1 and 0.3 < kaiming[-1] < 3  # well-scaled
    assert relu_xavier[-1] < 0.5 * relu_xavier[0]  # shrinks (halving variance per layer)
    assert relu_xavier[-1] < 0.5 * kaiming[-1]
    bn = [v for name, v in std.items() if name.endswith("+ BN")]
    assert len(bn) == 5
    for layers in bn:  # with BN: tanh about 0.63 and ReLU about 0.58 in every layer
        assert 0.5 < min(layers) and max(layers) < 0.75


def test_options_are_checked(demo):
    for bad in (["--width", "0"], ["--samples", "1"]):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)
