"""jaxcnn: convolutional neural networks in JAX.

Pure-function ops (`jaxcnn.ops`), Flax linen layers (`jaxcnn.layers`), a model zoo
(`jaxcnn.models`), datasets (`jaxcnn.data`) and training (`jaxcnn.train`, `jaxcnn.fit`).
"""
from jaxcnn import data, layers, models, ops, train
from jaxcnn.models.receptive import receptive_field
from jaxcnn.models.summary import summary
from jaxcnn.train import fit

__version__ = "0.1.0"

__all__ = ["data", "fit", "layers", "models", "ops", "receptive_field", "summary", "train",
           "__version__"]
