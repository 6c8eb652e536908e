import math

import torch

from wsolbench.models.losses import batch_area_loss, gaussian_kernel, normalization_loss


def _cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_gaussian_kernel_matches_authors_construction():
    # kernlen 3, nsig 6: 4 bin edges evenly spaced over [-(6 + 13/6), 6 + 13/6]
    interval = 13 / 3
    edges = [-6 - interval / 2 + i * (12 + interval) / 3 for i in range(4)]
    k1 = [_cdf(edges[i + 1]) - _cdf(edges[i]) for i in range(3)]
    raw = [[math.sqrt(a * b) for b in k1] for a in k1]
    total = sum(map(sum, raw))
    k = gaussian_kernel()
    assert k.shape == (1, 1, 3, 3)
    for i in range(3):
        for j in range(3):
            assert abs(k[0, 0, i, j].item() - raw[i][j] / total) < 1e-7
    assert abs(k[0, 0, 1, 1].item() - 0.80543) < 1e-4  # nsig 6 concentrates the weight


def test_batch_area_loss():
    maps = torch.tensor([[[0.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])  # mean 0.5
    assert abs(batch_area_loss(maps, 0.25).item() - 0.25) < 1e-7
    assert abs(batch_area_loss(maps, 0.75).item() - 0.25) < 1e-7


def test_normalization_loss():
    maps = torch.full((2, 4, 4), 0.5)
    assert abs(normalization_loss(maps, gaussian=False).item() - 0.25) < 1e-7
    one = torch.ones(1, 1, 1)  # 1x1 map of ones: zero padding leaves the centre weight
    c = gaussian_kernel()[0, 0, 1, 1].item()
    assert abs(normalization_loss(one, gaussian=True).item() - c * (1 - c)) < 1e-6
    binary = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    assert normalization_loss(binary, gaussian=False).item() == 0.0
