"""jaxcnn: convolutional neural networks in JAX.

Pure-function ops (`jaxcnn.ops`), Flax linen layers (`jaxcnn.layers`), a model zoo
(`jaxcnn.models`), datasets (`jaxcnn.data`), training (`jaxcnn.train`, `jaxcnn.fit`), the
files of a run (`jaxcnn.runs`), looking inside (`jaxcnn.viz`), and `jaxcnn.jit`: `jax.jit` with the XLA options jaxcnn
compiles its own steps with (`jaxcnn.compiler`).
"""
from jaxcnn import compiler, data, download, layers, models, ops, runs, train, viz
from jaxcnn.compiler import jit
from jaxcnn.models.receptive import receptive_field
from jaxcnn.models.summary import summary
from jaxcnn.train import fit

__version__ = "0.1.0"

__all__ = ["compiler", "data", "download", "fit", "jit", "layers", "models", "ops",
           "receptive_field", "runs", "summary", "train", "viz", "__version__"]
