"""PyTorch eager CPU baseline of the workloads (channels-first, the PyTorch default).

Contract: the networks of WORKLOADS.md as in ../shared/peers/torch_peer.py; `torch_runner`
returns a `Runner` with `compile_s = 0`. Importing this module needs torch, which is never
a dependency of jaxcnn (`pip install torch` to compare against it).
"""
from __future__ import annotations

import contextlib
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from jaxcnn.bench.runner import Runner
from jaxcnn.bench.workloads import LEARNING_RATE, MOMENTUM, check_precision, check_workload


def lenet5(num_classes: int) -> nn.Module:
    """conv 6@5x5, pool, conv 16@5x5, pool, dense 120-100-classes."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 100), nn.ReLU(),
        nn.Linear(100, num_classes))


def cnn4(num_classes: int) -> nn.Module:
    """Four [conv 3x3 same, relu, pool 2] blocks on 64x64 RGB, dense 512, logits."""
    layers, channels = [], 3
    for features in (32, 64, 128, 128):
        layers += [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = features
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, 512), nn.ReLU(),
                         nn.Linear(512, num_classes))


class Block(nn.Module):
    """ResNet basic block with a 1x1 projection shortcut where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


def resnet18(num_classes: int) -> nn.Module:
    """CIFAR-style ResNet-18."""
    layers, channels = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()], 64
    for i, features in enumerate((64, 128, 256, 512)):
        layers += [Block(channels, features, 1 if i == 0 else 2), Block(features, features, 1)]
        channels = features
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, num_classes))


MODELS = {"lenet5": lenet5, "cnn4": cnn4, "resnet18": resnet18}


def torch_runner(workload: str, batch: int, precision: str = "float32") -> Runner:
    """Builds the PyTorch eager train step of a workload.

    Args:
      workload: a name from `WORKLOADS`.
      batch: batch size.
      precision: "float32", or "bfloat16" through CPU autocast.

    Returns:
      The runner (`compile_s = 0`).
    """
    spec = check_workload(workload)
    check_precision(precision)
    torch.manual_seed(0)
    model = MODELS[workload](spec.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    h, w, c = spec.input_shape
    x = torch.rand(batch, c, h, w)
    y = torch.randint(0, spec.num_classes, (batch,))
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16"
                else contextlib.nullcontext())

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    return Runner(0.0, run)
