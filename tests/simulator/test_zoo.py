"""GEMM shapes of the reference networks: the MAC counts torchvision publishes, and batching."""

from __future__ import annotations

import pytest

from simulator import ConfigError, zoo


@pytest.mark.parametrize("net, layers, gmacs", [
    ("alexnet", 8, 0.71),  # torchvision's model card: 0.71 GFLOPS (multiply-adds), 5 conv + 3 fc
    ("vgg16", 16, 15.47),  # 15.47, 13 conv + 3 fc
    ("resnet50", 54, 4.09),  # 4.09: conv1, 16 bottlenecks of 3, 4 downsamples, fc
])
def test_the_networks_have_their_published_size(net, layers, gmacs):
    g = zoo.gemms(net)
    assert len(g) == layers
    assert round(sum(m * k * n for _, m, k, n in g) / 1e9, 2) == gmacs


def test_a_batch_multiplies_every_m_and_nothing_else():
    for net in zoo.NETWORKS:
        one, many = zoo.gemms(net, 1), zoo.gemms(net, 7)
        assert [(n, 7 * m, k, c) for n, m, k, c in one] == many


@pytest.mark.parametrize("net, batch", [("lenet", 1), ("alexnet", 0), ("alexnet", 1.5), ("vgg16", True)])
def test_bad_arguments_are_refused(net, batch):
    with pytest.raises(ConfigError, match="network|batch"):
        zoo.gemms(net, batch)
