"""The scripts in experiments/ run offline with --quick and produce what their docstrings promise."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(script, *args, cwd):
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_handmade_filters_quick(tmp_path):
    out = _run("handmade_filters.py", "--quick", "--out", str(tmp_path / "f.png"), cwd=tmp_path)
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert "sobel x" in out


def test_handmade_filters_identity_and_blur_preserve_the_mean():
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import handmade_filters
    finally:
        sys.path.pop(0)
    image = handmade_filters.load_grayscale(None, 32)
    responses = handmade_filters.apply_all(image)
    np.testing.assert_allclose(responses["identity"], image[0, ..., 0], atol=1e-6)
    inner = (slice(1, -1), slice(1, -1))  # away from the zero-padded border
    assert responses["box blur"][inner].mean() == pytest.approx(image[0, 1:-1, 1:-1, 0].mean(), rel=0.02)
    flat = np.full((1, 8, 8, 1), 0.5, np.float32)
    assert np.abs(handmade_filters.apply_all(flat)["edge detection 3"][1:-1, 1:-1]).max() < 1e-6
