"""PxAP's compiled histograms (evaluation/histogram.py) against the call the WSOL
benchmark makes, ``np.histogram(values[mask], bins=edges)``, on values placed on the
edges, just below and above them, out of range, in float32 and float64."""

import numpy as np
import pytest

from wsolbench.data.annotations import IGNORE
from wsolbench.evaluation.boxes import benchmark_thresholds
from wsolbench.evaluation.histogram import object_background_histograms


def numpy_histograms(m: np.ndarray, mask: np.ndarray, edges: np.ndarray) -> np.ndarray:
    values = np.asarray(m, np.float64)
    obj = mask == 1
    bg = ~obj & (mask != IGNORE)
    return np.stack(
        [np.histogram(values[obj], bins=edges)[0], np.histogram(values[bg], bins=edges)[0]]
    )


def edge_values(edges: np.ndarray, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values on every edge, one float64 step either side of it, out of range, and
    uniform ones, in a map of ``shape``."""
    special = np.concatenate(
        [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [-0.5, 3.5, 0.0, 1.0]]
    )
    out = rng.random(shape)
    flat = out.reshape(-1)
    flat[: special.size] = special[: flat.size]
    rng.shuffle(flat)
    return out


@pytest.mark.parametrize("interval", [0.01, 0.001, 0.05, 0.3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equal_to_numpy_on_the_benchmark_grids(interval, dtype):
    rng = np.random.default_rng(int(interval * 1000))
    edges = np.append(benchmark_thresholds(interval), [1.0, 2.0, 3.0])
    for _ in range(5):
        m = edge_values(edges, rng, (64, 80)).astype(dtype)
        mask = rng.choice(np.array([0, 1, 2, IGNORE], np.uint8), size=m.shape)
        got = object_background_histograms(m, mask, edges, IGNORE)
        assert np.array_equal(got, numpy_histograms(m, mask, edges))


def test_equal_to_numpy_on_uneven_edges():
    rng = np.random.default_rng(7)
    for _ in range(20):
        edges = np.sort(rng.random(rng.integers(2, 30)) * 3)
        m = edge_values(edges, rng, (20, 30))
        mask = rng.integers(0, 2, m.shape).astype(np.uint8)
        got = object_background_histograms(m, mask, edges, IGNORE)
        assert np.array_equal(got, numpy_histograms(m, mask, edges))


def test_by_hand():
    edges = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    m = np.array([[0.0, 0.5, 0.49, 1.0], [3.0, 2.0, -0.1, 0.75]])
    mask = np.array([[1, 1, 0, 0], [1, IGNORE, 1, 0]], np.uint8)
    got = object_background_histograms(m, mask, edges, IGNORE)
    # object: 0.0 -> [0, .5), 0.5 -> [.5, 1), 3.0 -> the closed last bin, -0.1 uncounted;
    # background: 0.49 -> [0, .5), 1.0 -> [1, 2), 0.75 -> [.5, 1); 2.0 is ignored
    assert got.tolist() == [[1, 1, 0, 1], [1, 1, 1, 0]]
