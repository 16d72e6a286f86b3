"""GEMM shapes of reference networks, for timing studies (no weights, no torch).

Each network is lowered the way :mod:`mapping` lowers layers onto the array: a convolution
with ``C_in`` input channels, a ``kh x kw`` kernel and ``C_out`` filters over ``H_o x W_o``
output pixels is one GEMM of ``M = batch * H_o * W_o`` input vectors, ``K = kh * kw * C_in``
and ``N = C_out``; a fully connected layer is ``M = batch``, ``K = in``, ``N = out``. The
architectures are torchvision's (224 x 224 inputs): AlexNet, VGG-16, ResNet-50 (v1.5: the
stride of a downsampling bottleneck sits on its 3x3 convolution).

    >>> from simulator import zoo
    >>> zoo.gemms("alexnet", batch=1)[0]
    ('conv1', 3025, 363, 64)
"""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["NETWORKS", "gemms"]


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


class _Net:
    """Walks a network, tracking the feature-map size, and collects its GEMMs."""

    def __init__(self, batch: int, size: int = 224):
        self.batch, self.size, self.rows = batch, size, []

    def conv(self, name, cin, cout, k, stride=1, pad=0, size=None):
        size = self.size if size is None else size
        out = _out(size, k, stride, pad)
        self.rows.append((name, self.batch * out * out, k * k * cin, cout))
        return out

    def pool(self, k, stride, pad=0):
        self.size = _out(self.size, k, stride, pad)

    def fc(self, name, fin, fout):
        self.rows.append((name, self.batch, fin, fout))


def _alexnet(n: _Net):
    for i, (cin, cout, k, s, p, pool) in enumerate([(3, 64, 11, 4, 2, True), (64, 192, 5, 1, 2, True),
                                                    (192, 384, 3, 1, 1, False), (384, 256, 3, 1, 1, False),
                                                    (256, 256, 3, 1, 1, True)], 1):
        n.size = n.conv(f"conv{i}", cin, cout, k, s, p)
        if pool:
            n.pool(3, 2)
    for i, (fin, fout) in enumerate([(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)], 6):
        n.fc(f"fc{i}", fin, fout)


def _vgg16(n: _Net):
    cin, i = 3, 0
    for block, (cout, reps) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for r in range(1, reps + 1):
            n.size = n.conv(f"conv{block}_{r}", cin, cout, 3, 1, 1)
            cin, i = cout, i + 1
        n.pool(2, 2)
    for i, (fin, fout) in enumerate([(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)], 1):
        n.fc(f"fc{i}", fin, fout)


def _resnet50(n: _Net):
    n.size = n.conv("conv1", 3, 64, 7, 2, 3)
    n.pool(3, 2, 1)
    cin = 64
    for stage, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 2):
        for b in range(blocks):
            s = stride if b == 0 else 1
            tag = f"res{stage}{chr(ord('a') + b)}"
            n.conv(f"{tag}_1x1a", cin, width, 1)
            out = n.conv(f"{tag}_3x3", width, width, 3, s, 1)
            n.conv(f"{tag}_1x1b", width, 4 * width, 1, size=out)
            if b == 0:
                n.conv(f"{tag}_down", cin, 4 * width, 1, s)
            n.size, cin = out, 4 * width
    n.fc("fc", 2048, 1000)


NETWORKS = {"alexnet": _alexnet, "vgg16": _vgg16, "resnet50": _resnet50}


def gemms(network: str, batch: int = 1) -> list[tuple[str, int, int, int]]:
    """``(name, M, K, N)`` of every GEMM of ``network`` at ``batch`` inputs, in forward order."""
    if network not in NETWORKS:
        raise ConfigError(f"network must be one of {sorted(NETWORKS)}; got {network!r}.")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be a positive int; got {batch!r}.")
    net = _Net(batch)
    NETWORKS[network](net)
    return net.rows
