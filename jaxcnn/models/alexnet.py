"""AlexNet as in torchvision (Krizhevsky 2014, "one weird trick" variant).

conv1 64@11x11 stride 4 pad 2, relu, pool1 3x3 stride 2; conv2 192@5x5 pad 2, relu,
pool2; conv3 384@3x3, conv4 256@3x3, conv5 256@3x3 (pad 1, relu); pool5; adaptive
average pool to 6x6; dropout, fc1 4096 relu, dropout, fc2 4096 relu, logits. With 1000
classes: 61,100,840 parameters. Any input of at least 63x63 works.
Named activations: conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5, flatten, fc1,
fc2, logits.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn

from jaxcnn.layers import Activation, AdaptiveAvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from jaxcnn.models.preprocessing import preprocess
from jaxcnn.models.base import (ActivationRecorder, Pretrainable, SpatialLayers, Window,
                                check_image_size, check_top, pool_features,
                                smallest_input_size)

# (name, features, kernel, stride, padding) of the convolutions, in order.
CONVS = (("conv1", 64, 11, 4, 2), ("conv2", 192, 5, 1, 2), ("conv3", 384, 3, 1, 1),
         ("conv4", 256, 3, 1, 1), ("conv5", 256, 3, 1, 1))
POOL_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}
POOLED_SIZE = 6  # torchvision's AdaptiveAvgPool2d((6, 6))


class AlexNet(Pretrainable, nn.Module):
    """torchvision's AlexNet.

    Attributes:
      num_classes: number of output logits.
      input_shape: (H, W, C) used to initialize and summarize; any H, W >= 63 is accepted.
      fc_width: units of fc1 and fc2.
      dropout_rate: probability of dropping a unit before fc1 and fc2 in training.
      dtype: computation dtype (float32 or bfloat16); parameters stay float32.
      axis_name: device axis the batch is split over (pmap), so dropout draws the same
        per-example masks as on one device.
      weights: a weights file whose variables `init` returns (see `models.load_weights`);
        None for a random initialization.
      preprocessing: the input scaling the weights were trained with, applied to the [0, 1]
        RGB input first ("caffe" or "torch", see `models.preprocessing`); None: none.
      include_top: False leaves out the classifier (Keras' meaning): the model returns the
        last feature map, or with `pooling` its global "avg" / "max" pool (N, C).
      pooling: None, "avg" or "max"; only with include_top=False.
    """

    num_classes: int = 1000
    input_shape: Sequence[int] = (224, 224, 3)
    fc_width: int = 4096
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
        for name, _, kernel, stride, pad in CONVS:
            layers.append((name, (Window(kernel, stride, pad),)))
            if name in POOL_AFTER:
                layers.append((POOL_AFTER[name], (Window(3, 2),)))
        return layers

    @nn.compact
    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        smallest = smallest_input_size(self.spatial_layers())
        check_top(self.include_top, self.pooling, "AlexNet")
        check_image_size(x, self.input_shape, smallest, "AlexNet")
        x = preprocess(x, self.preprocessing)
        keep = ActivationRecorder(capture_activations)
        relu = Activation("relu")
        for name, features, kernel, stride, pad in CONVS:
            conv = Conv2D(features, kernel, strides=stride, padding=pad, dtype=self.dtype,
                          name=name)
            x = keep(name, relu(conv(x)))
            if name in POOL_AFTER:
                x = keep(POOL_AFTER[name], MaxPool2D(3, strides=2)(x))
        if not self.include_top:
            return keep.result(pool_features(x, self.pooling, keep))
        x = AdaptiveAvgPool2D(POOLED_SIZE)(x)
        x = keep("flatten", Flatten()(x))
        for layer in ("fc1", "fc2"):
            x = Dropout(self.dropout_rate, axis_name=self.axis_name)(x, deterministic=not train)
            x = keep(layer, relu(Dense(self.fc_width, dtype=self.dtype, name=layer)(x)))
        logits = keep("logits", Dense(self.num_classes, dtype=self.dtype, name="logits")(x))
        return keep.result(logits)
