"""ResNet-18/34/50 (He et al. 2015) with the ImageNet stem or a CIFAR stem.

ImageNet stem: 7x7 conv stride 2 (pad 3), BatchNorm, relu, 3x3 max pool stride 2 (pad 1).
CIFAR stem: 3x3 conv (pad 1), BatchNorm, relu, no pool. Then four stages (64, 128, 256,
512 filters by default: `width` doubled per stage) of basic blocks (two 3x3 convs;
ResNet-18/34) or bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion; ResNet-50), the first
block of stages 2-4 with stride 2 and a 1x1 conv + BatchNorm projection wherever the shape
changes; global average pool; logits.
Strides sit on the 3x3 conv as in torchvision ("v1.5"); `stride_in_1x1=True` puts them on
the first 1x1 conv as in the original paper and keras.applications. With 1000 classes:
ResNet-18 11,689,512 and ResNet-50 25,557,032 parameters.

Named activations: stem_conv (after BatchNorm and relu), stem_pool (ImageNet stem),
stage1_block1, ..., stage4_blockN, avgpool, logits. Submodules follow torchvision's names
(conv1, bn1, ..., downsample_conv, downsample_bn) so its weights map directly.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn

from jaxcnn import ops
from jaxcnn.layers import Activation, BatchNorm, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D
from jaxcnn.models.preprocessing import preprocess
from jaxcnn.models.base import (ActivationRecorder, Pretrainable, SpatialLayers, Window,
                                check_image_size, check_top, pool_features,
                                smallest_input_size)

STEMS = ("imagenet", "cifar")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity or projection shortcut."""

    features: int
    strides: int = 1
    dtype: Any = None
    axis_name: str | None = None

    expansion = 1

    @staticmethod
    def windows(strides: int, stride_in_1x1: bool = False) -> tuple[Window, ...]:
        """The windows of the main (longest) path."""
        return Window(3, strides, 1), Window(3, 1, 1)

    @nn.compact
    def __call__(self, x, train: bool = False):
        norm = functools.partial(BatchNorm, use_running_average=not train, dtype=self.dtype,
                                 axis_name=self.axis_name)
        conv = functools.partial(Conv2D, use_bias=False, dtype=self.dtype)
        relu = Activation("relu")
        y = relu(norm(name="bn1")(conv(self.features, 3, self.strides, 1, name="conv1")(x)))
        y = norm(name="bn2")(conv(self.features, 3, 1, 1, name="conv2")(y))
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, 1, self.strides, name="downsample_conv")(x)
            x = norm(name="downsample_bn")(x)
        # The residual stream is read by the next block's convolutions, its shortcut and
        # their gradients: kept in memory, not recomputed by each (ops.materialize).
        return ops.materialize(relu(y + x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with BatchNorm, and a shortcut."""

    features: int
    strides: int = 1
    stride_in_1x1: bool = False
    dtype: Any = None
    axis_name: str | None = None

    expansion = 4

    @staticmethod
    def windows(strides: int, stride_in_1x1: bool = False) -> tuple[Window, ...]:
        """The windows of the main (longest) path."""
        first, middle = (strides, 1) if stride_in_1x1 else (1, strides)
        return Window(1, first), Window(3, middle, 1), Window(1)

    @nn.compact
    def __call__(self, x, train: bool = False):
        norm = functools.partial(BatchNorm, use_running_average=not train, dtype=self.dtype,
                                 axis_name=self.axis_name)
        conv = functools.partial(Conv2D, use_bias=False, dtype=self.dtype)
        relu = Activation("relu")
        first, middle = (self.strides, 1) if self.stride_in_1x1 else (1, self.strides)
        out = self.features * self.expansion
        y = relu(norm(name="bn1")(conv(self.features, 1, first, name="conv1")(x)))
        y = relu(norm(name="bn2")(conv(self.features, 3, middle, 1, name="conv2")(y)))
        y = norm(name="bn3")(conv(out, 1, name="conv3")(y))
        if self.strides != 1 or x.shape[-1] != out:
            x = norm(name="downsample_bn")(conv(out, 1, self.strides, name="downsample_conv")(x))
        return ops.materialize(relu(y + x))  # kept in memory, as in BasicBlock


class ResNet(Pretrainable, nn.Module):
    """A residual network.

    Attributes:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
      bottleneck: bottleneck blocks (ResNet-50) instead of basic blocks.
      stem: "imagenet" (7x7/2 conv + max pool) or "cifar" (3x3 conv, no pool).
      stride_in_1x1: put a bottleneck's stride on its first 1x1 conv (keras.applications).
      width: filters of the stem and the first stage; each later stage doubles them.
      num_classes: number of output logits.
      input_shape: (H, W, C) used to initialize and summarize; any H, W is accepted.
      dtype: computation dtype (float32 or bfloat16); parameters stay float32.
      axis_name: device axis over which BatchNorm averages batch statistics (pmap).
      weights: a weights file whose variables `init` returns (see `models.load_weights`);
        None for a random initialization.
      preprocessing: the input scaling the weights were trained with, applied to the [0, 1]
        RGB input first ("caffe" or "torch", see `models.preprocessing`); None: none.
      include_top: False leaves out the classifier (Keras' meaning): the model returns the
        last feature map, or with `pooling` its global "avg" / "max" pool (N, C).
      pooling: None, "avg" or "max"; only with include_top=False.
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    bottleneck: bool = False
    stem: str = "imagenet"
    stride_in_1x1: bool = False
    width: int = 64
    num_classes: int = 1000
    input_shape: Sequence[int] = (224, 224, 3)
    dtype: Any = None
    axis_name: str | None = None
    weights: str | None = None
    preprocessing: str | None = None
    include_top: bool = True
    pooling: str | None = None

    def _stem_layers(self) -> SpatialLayers:
        if self.stem == "cifar":
            return [("stem_conv", (Window(3, 1, 1),))]
        return [("stem_conv", (Window(7, 2, 3),)), ("stem_pool", (Window(3, 2, 1),))]

    def spatial_layers(self) -> SpatialLayers:
        """Named feature maps and the windows that lead to each (see `models.base`)."""
        block = Bottleneck if self.bottleneck else BasicBlock
        layers = self._stem_layers()
        for s, blocks in enumerate(self.stage_sizes, start=1):
            for b in range(1, blocks + 1):
                strides = 2 if s > 1 and b == 1 else 1
                layers.append((f"stage{s}_block{b}", block.windows(strides, self.stride_in_1x1)))
        return layers

    @nn.compact
    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        if self.stem not in STEMS:
            raise ValueError(f"ResNet stem must be one of {STEMS}, got {self.stem!r}.")
        name = f"ResNet ({self.stem} stem)"
        check_top(self.include_top, self.pooling, name)
        check_image_size(x, self.input_shape, smallest_input_size(self.spatial_layers()), name)
        x = preprocess(x, self.preprocessing)
        keep = ActivationRecorder(capture_activations)
        kernel, strides, pad = self._stem_layers()[0][1][0]
        x = Conv2D(self.width, kernel, strides, pad, use_bias=False, dtype=self.dtype,
                   name="stem_conv")(x)
        x = BatchNorm(use_running_average=not train, dtype=self.dtype, axis_name=self.axis_name,
                      name="stem_bn")(x)
        x = keep("stem_conv", Activation("relu")(x))
        if self.stem == "imagenet":
            x = keep("stem_pool", MaxPool2D(3, strides=2, padding=1)(x))
        block = (functools.partial(Bottleneck, stride_in_1x1=self.stride_in_1x1)
                 if self.bottleneck else BasicBlock)
        for s, blocks in enumerate(self.stage_sizes, start=1):
            for b in range(1, blocks + 1):
                strides = 2 if s > 1 and b == 1 else 1
                x = block(self.width * 2 ** (s - 1), strides, dtype=self.dtype,
                          axis_name=self.axis_name, name=f"stage{s}_block{b}")(x, train=train)
                x = keep(f"stage{s}_block{b}", x)
        if not self.include_top:
            return keep.result(pool_features(x, self.pooling, keep))
        x = keep("avgpool", GlobalAvgPool2D()(x))
        logits = keep("logits", Dense(self.num_classes, dtype=self.dtype, name="logits")(x))
        return keep.result(logits)
