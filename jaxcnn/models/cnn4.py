"""cnn4: the four-block cats-vs-dogs network of seed 004 (a Keras tutorial classic).

Four blocks of [3x3 conv (32, 64, 128, 128 filters), relu, 2x2 max pool], flatten,
dropout, dense 512 relu, logits. Padding "VALID" as in the seed (Keras default); the
benchmark workload uses "SAME". Any input size works, but the flatten ties the first
dense layer to the `input_shape` the model was built with, so it takes exactly that size.
Named activations: block1_conv, block1_pool, ..., block4_conv, block4_pool, flatten,
dropout, fc1, logits.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn

from jaxcnn.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from jaxcnn.models.base import (ActivationRecorder, SpatialLayers, Window, check_image_size,
                                check_input, smallest_input_size)

WIDTHS = (32, 64, 128, 128)


class CNN4(nn.Module):
    """Four conv/pool blocks and a two-layer dense head.

    Attributes:
      num_classes: number of output logits (2: cats and dogs).
      input_shape: (H, W, C) of the images (150x150 RGB in the seed).
      padding: "VALID" (seed 004) or "SAME" for the 3x3 convolutions.
      dropout_rate: probability of dropping a unit of the flattened features in training.
      dtype: computation dtype (float32 or bfloat16); parameters stay float32.
    """

    num_classes: int = 2
    input_shape: Sequence[int] = (150, 150, 3)
    padding: str = "VALID"
    dropout_rate: float = 0.5
    dtype: Any = None

    def spatial_layers(self) -> SpatialLayers:
        """Named feature maps and the windows that lead to each (see `models.base`)."""
        pad = {"VALID": 0, "SAME": 1}[self.padding.upper()]
        layers: SpatialLayers = []
        for b in range(1, len(WIDTHS) + 1):
            layers += [(f"block{b}_conv", (Window(3, 1, pad),)), (f"block{b}_pool", (Window(2, 2),))]
        return layers

    @nn.compact
    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        if self.padding.upper() not in ("VALID", "SAME"):
            raise ValueError(f"CNN4 padding must be 'VALID' or 'SAME', got {self.padding!r}.")
        check_input(x, self.input_shape, "CNN4")
        check_image_size(x, self.input_shape, smallest_input_size(self.spatial_layers()), "CNN4")
        keep = ActivationRecorder(capture_activations)
        relu = Activation("relu")
        for b, width in enumerate(WIDTHS, start=1):
            conv = Conv2D(width, 3, padding=self.padding, dtype=self.dtype, name=f"block{b}_conv")
            x = keep(f"block{b}_conv", relu(conv(x)))
            x = keep(f"block{b}_pool", MaxPool2D(2)(x))
        x = keep("flatten", Flatten()(x))
        x = keep("dropout", Dropout(self.dropout_rate)(x, deterministic=not train))
        x = keep("fc1", relu(Dense(512, dtype=self.dtype, name="fc1")(x)))
        logits = keep("logits", Dense(self.num_classes, dtype=self.dtype, name="logits")(x))
        return keep.result(logits)
