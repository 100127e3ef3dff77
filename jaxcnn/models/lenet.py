"""LeNet-5: the network of the seed's tutorial (dense 120-100-10) and LeCun's (120-84-10).

Both take 32x32 single-channel images by default: conv 6@5x5, relu, 2x2 max pool;
conv 16@5x5, relu, 2x2 max pool; flatten; dense layers; logits. Named activations:
conv1, pool1, conv2, pool2, flatten, fc1, fc2, logits.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn

from jaxcnn.layers import Activation, Conv2D, Dense, Flatten, MaxPool2D
from jaxcnn.models.base import ActivationRecorder, SpatialLayers, Window, check_input


class LeNet5(nn.Module):
    """LeNet-5 with configurable hidden dense widths.

    Attributes:
      num_classes: number of output logits.
      input_shape: (H, W, C) of the images.
      hidden: widths of the dense layers before the output: (120, 100) as in the seed
        tutorial (63,802 parameters with 10 classes), (120, 84) for LeCun's original.
      activation: activation after every conv and hidden dense layer.
      dtype: computation dtype (float32 or bfloat16); parameters stay float32.
    """

    num_classes: int = 10
    input_shape: Sequence[int] = (32, 32, 1)
    hidden: Sequence[int] = (120, 100)
    activation: str = "relu"
    dtype: Any = None

    def spatial_layers(self) -> SpatialLayers:
        """Named feature maps and the windows that lead to each (see `models.base`)."""
        return [("conv1", (Window(5),)), ("pool1", (Window(2, 2),)),
                ("conv2", (Window(5),)), ("pool2", (Window(2, 2),))]

    @nn.compact
    def __call__(self, x, train: bool = False, capture_activations: bool = False):
        check_input(x, self.input_shape, type(self).__name__)
        keep = ActivationRecorder(capture_activations)
        act = Activation(self.activation)
        x = keep("conv1", act(Conv2D(6, 5, dtype=self.dtype, name="conv1")(x)))
        x = keep("pool1", MaxPool2D(2)(x))
        x = keep("conv2", act(Conv2D(16, 5, dtype=self.dtype, name="conv2")(x)))
        x = keep("pool2", MaxPool2D(2)(x))
        x = keep("flatten", Flatten()(x))
        for i, width in enumerate(self.hidden, start=1):
            x = keep(f"fc{i}", act(Dense(width, dtype=self.dtype, name=f"fc{i}")(x)))
        logits = keep("logits", Dense(self.num_classes, dtype=self.dtype, name="logits")(x))
        return keep.result(logits)
