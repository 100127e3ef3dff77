"""VGG-11/13/16/19 (Simonyan & Zisserman 2014), with or without BatchNorm.

Five blocks of 3x3 convolutions (padding 1) with relu, each closed by a 2x2 max pool;
then, as in torchvision, an adaptive average pool to 7x7 (the identity at 224x224, so
Keras weights work there too), flatten, fc1 4096 relu, dropout, fc2 4096 relu, dropout,
logits. Any input of at least 32x32 works. With 1000 classes VGG-16 has 138,357,544
parameters and VGG-19 143,667,240.

Named activations (Keras style): block1_conv1, block1_conv2, block1_pool, ...,
block5_pool, flatten, fc1, fc2, logits; with BatchNorm `blockB_convI` is still the output
after BatchNorm and relu. Parameter names equal the activation names (BatchNorm:
`blockB_convI_bn`), which makes torchvision and keras.applications weights map directly.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn

from jaxcnn.layers import (Activation, AdaptiveAvgPool2D, BatchNorm, Conv2D, Dense, Dropout,
                           Flatten, MaxPool2D)
from jaxcnn.models.preprocessing import preprocess
from jaxcnn.models.base import (ActivationRecorder, Pretrainable, SpatialLayers, Window,
                                check_image_size, check_top, pool_features,
                                smallest_input_size)

# Number of 3x3 convolutions in each of the five blocks, per depth.
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
                   19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
POOLED_SIZE = 7  # torchvision's AdaptiveAvgPool2d((7, 7)): 224 / 2**5


class VGG(Pretrainable, nn.Module):
    """VGG of the given depth.

    Attributes:
      depth: 11, 13, 16 or 19 weight layers.
      widths: filters of the five blocks (the paper's by default; smaller for quick tests).
      fc_width: units of fc1 and fc2.
      batch_norm: BatchNorm after every convolution (torchvision's `vgg16_bn`).
      num_classes: number of output logits.
      input_shape: (H, W, C) used to initialize and summarize; any H, W >= 32 is accepted.
      dropout_rate: probability of dropping a unit after fc1 and fc2 in training.
      dtype: computation dtype (float32 or bfloat16); parameters stay float32.
      axis_name: device axis the batch is split over (pmap): BatchNorm averages its
        statistics over it and dropout draws the same per-example masks as on one device.
      weights: a weights file whose variables `init` returns (see `models.load_weights`);
        None for a random initialization.
      preprocessing: the input scaling the weights were trained with, applied to the [0, 1]
        RGB input first ("caffe" or "torch", see `models.preprocessing`); None: none.
      include_top: False leaves out the classifier (Keras' meaning): the model returns the
        last feature map, or with `pooling` its global "avg" / "max" pool (N, C).
      pooling: None, "avg" or "max"; only with include_top=False.
    """

    depth: int = 16
    batch_norm: bool = False
    widths: Sequence[int] = WIDTHS
    fc_width: int = 4096
    num_classes: int = 1000
    input_shape: Sequence[int] = (224, 224, 3)
    dropout_rate: float = 0.5
    dtype: Any = None
    axis_name: str | None = None
    weights: str | None = None
    preprocessing: str | None = None
    include_top: bool = True
    pooling: str | None = None

    def spatial_layers(self) -> SpatialLayers:
        """Named feature maps and the windows that lead to each (see `models.base`)."""
        layers: SpatialLayers = []
        for b, convs in enumerate(CONVS_PER_BLOCK[self.depth], start=1):
            layers += [(f"block{b}_conv{i}", (Window(3, 1, 1),)) for i in range(1, convs + 1)]
            layers.append((f"block{b}_pool", (Window(2, 2),)))
        return layers

    @nn.compact
    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        if self.depth not in CONVS_PER_BLOCK:
            raise ValueError(f"VGG depth must be one of {sorted(CONVS_PER_BLOCK)}, got "
                             f"{self.depth}.")
        name = f"VGG-{self.depth}{'-BN' if self.batch_norm else ''}"
        check_top(self.include_top, self.pooling, name)
        check_image_size(x, self.input_shape, smallest_input_size(self.spatial_layers()), name)
        x = preprocess(x, self.preprocessing)
        keep = ActivationRecorder(capture_activations)
        relu = Activation("relu")
        norm = functools.partial(BatchNorm, use_running_average=not train, dtype=self.dtype,
                                 axis_name=self.axis_name)
        for b, (convs, width) in enumerate(zip(CONVS_PER_BLOCK[self.depth], self.widths), start=1):
            for i in range(1, convs + 1):
                layer = f"block{b}_conv{i}"
                x = Conv2D(width, 3, padding=1, dtype=self.dtype, name=layer)(x)
                if self.batch_norm:
                    x = norm(name=f"{layer}_bn")(x)
                x = keep(layer, relu(x))
            x = keep(f"block{b}_pool", MaxPool2D(2)(x))
        if not self.include_top:
            return keep.result(pool_features(x, self.pooling, keep))
        x = AdaptiveAvgPool2D(POOLED_SIZE)(x)
        x = keep("flatten", Flatten()(x))
        for layer in ("fc1", "fc2"):
            x = keep(layer, relu(Dense(self.fc_width, dtype=self.dtype, name=layer)(x)))
            x = Dropout(self.dropout_rate, axis_name=self.axis_name)(x, deterministic=not train)
        logits = keep("logits", Dense(self.num_classes, dtype=self.dtype, name="logits")(x))
        return keep.result(logits)
