"""Users' own models for the tracing tests: torchvision's ResNet-18 and MobileNetV2 layouts
(residual adds, 1x1 downsampling, depthwise convolutions, ReLU6, adaptive pooling) written
out here, narrower, because torchvision may be absent; and the odd models users write."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """ResNet-18's layout: stem, 4 stages of 2 basic blocks, global pooling, classifier."""

    def __init__(self, width=16, n_classes=10, cin=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            for j in range(2):
                stride = 2 if i and not j else 1
                blocks.append(BasicBlock(c, width * mult, stride))
                c = width * mult
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2's layout (expansion, depthwise, projection, residuals), narrower."""

    SETTING = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 24, 1, 1))

    def __init__(self, n_classes=10, cin=3):
        super().__init__()
        layers, c = [nn.Conv2d(cin, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6()], 8
        for t, cout, n, s in self.SETTING:
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        self.features = nn.Sequential(*layers, nn.Conv2d(c, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6())
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class HalfLinear(nn.Linear):
    """A Linear subclass with its own forward: a module swap would drop the halving."""

    def forward(self, x):
        return super().forward(x) * 0.5


class TinyTransformer(nn.Module):
    """Per-token logits from self-attention (``nn.MultiheadAttention`` or SDPA) over tokens."""

    def __init__(self, dim=16, tokens=6, classes=5, attention="sdpa", heads=2):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.attention, self.heads = attention, heads
        if attention == "mha":
            self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, 3, padding=1, groups=2)
        self.head = HalfLinear(dim, classes)

    def forward(self, x):  # x: (B, T, 4)
        h = self.embed(x)
        if self.attention == "mha":
            a, _ = self.mha(h, h, h)
        else:
            q, k, v = self.qkv(h).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(-2)
        h = self.norm(h + a)
        h = h + self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.head(h), h.mean(dim=1)  # per-token logits, and a pooled feature
