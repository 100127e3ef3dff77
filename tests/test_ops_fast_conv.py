"""Tests for the convolution fast paths (`jaxcnn.ops.conv_fast`) against plain `lax`.

Both CPU formulations (the HWOI-tangent convolution and the row-unrolled matmul) must give
the plain convolution's outputs, gradients (input and kernel), forward-mode derivatives and
second derivatives (relative error <= 1e-5 in float32) over a grid of shapes, strides,
paddings and dilations. On CPU the input gradient must be an HWIO convolution, inside loops
too, LeNet-5's convolutions must become matmuls, and other platforms keep XLA's own rules.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export, lax

from jaxcnn import ops
from jaxcnn.ops import conv_fast

RTOL = 1e-5
# (N, H, W, C_in, C_out, KH, KW): one and several channels, square and not.
SHAPES = [(2, 7, 7, 1, 3, 3, 3), (1, 8, 6, 3, 4, 3, 2), (2, 9, 9, 5, 2, 5, 5),
          (1, 6, 6, 8, 8, 1, 1)]
PADS = [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((2, 0), (0, 1))]


def _plain(x, kernel, stride, pads, dilation):
    return lax.conv_general_dilated(x, kernel, stride, pads, rhs_dilation=dilation,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


FORMULATIONS = {"hwoi": conv_fast.hwoi_tangent_conv, "unrolled": conv_fast.rows_unrolled,
                "unrolled_tile1": lambda x, k, spec: conv_fast.rows_unrolled(x, k, spec, 1),
                "unrolled_tile3": lambda x, k, spec: conv_fast.rows_unrolled(x, k, spec, 3)}


def _formulation(name):
    return lambda x, kernel, stride, pads, dilation: FORMULATIONS[name](
        x, kernel, (stride, pads, dilation, 1))


def _args(shape, seed):
    n, h, w, c_in, c_out, kh, kw = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, h, w, c_in)).astype(np.float32)
    kernel = rng.normal(size=(kh, kw, c_in, c_out)).astype(np.float32)
    return x, kernel


def _close(got, want):
    scale = float(np.max(np.abs(want))) or 1.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("dilation", [(1, 1), (2, 1)])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (1, 3)])
@pytest.mark.parametrize("pads", PADS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", FORMULATIONS)
def test_fast_conv_matches_lax_values_and_gradients(name, shape, pads, stride, dilation):
    _fast = _formulation(name)
    x, kernel = _args(shape, seed=sum(shape))
    spec = (stride, pads, dilation)
    want_y, want_vjp = jax.vjp(lambda x, k: _plain(x, k, *spec), x, kernel)
    got_y, got_vjp = jax.jit(lambda x, k: jax.vjp(lambda x, k: _fast(x, k, *spec), x, k))(x, kernel)
    _close(got_y, want_y)
    cotangent = np.random.default_rng(1).normal(size=want_y.shape).astype(np.float32)
    for got, want in zip(got_vjp(cotangent), want_vjp(cotangent)):
        _close(got, want)


@pytest.mark.parametrize("shape", SHAPES[:3])
@pytest.mark.parametrize("name", FORMULATIONS)
def test_forward_mode_and_second_order_match_lax(name, shape):
    _fast = _formulation(name)
    x, kernel = _args(shape, seed=3)
    spec = ((1, 1), PADS[1], (1, 1))
    tangents = (np.ones_like(x), np.full_like(kernel, 0.5))
    for got, want in zip(jax.jvp(lambda x, k: _fast(x, k, *spec), (x, kernel), tangents),
                         jax.jvp(lambda x, k: _plain(x, k, *spec), (x, kernel), tangents)):
        _close(got, want)

    def hvp(conv):  # forward-over-reverse through a nonlinearity
        loss = lambda x, k: jnp.sum(jnp.tanh(conv(x, k, *spec)) ** 2)
        return jax.jvp(jax.grad(loss, argnums=(0, 1)), (x, kernel), tangents)[1]

    for got, want in zip(hvp(_fast), hvp(_plain)):
        _close(got, want)


@pytest.mark.parametrize("name", FORMULATIONS)
def test_vmap_matches_lax(name):
    _fast = _formulation(name)
    x, kernel = _args(SHAPES[1], seed=4)
    xs, kernels = np.stack([x, 2 * x]), np.stack([kernel, -kernel])
    spec = ((1, 1), PADS[2], (1, 1))
    grad = lambda conv: jax.vmap(jax.grad(lambda x, k: jnp.sum(conv(x, k, *spec) ** 2)))
    _close(grad(_fast)(xs, kernels), grad(_plain)(xs, kernels))


def test_grouped_convolution_keeps_the_plain_rule():
    rng = np.random.default_rng(5)
    x, kernel = rng.normal(size=(1, 6, 6, 4)).astype(np.float32), rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    grad = jax.grad(lambda x: jnp.sum(ops.conv2d(x, kernel, padding="SAME", groups=2) ** 2))
    want = jax.grad(lambda x: jnp.sum(lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=2) ** 2))
    _close(grad(x), want(x))


def _input_grad(x):
    # 16 input channels: too many for the row-unrolled formulation.
    kernel = jnp.linspace(-1, 1, 3 * 3 * 16 * 4).reshape(3, 3, 16, 4)
    return jax.grad(lambda x: jnp.sum(ops.conv2d(x, kernel, padding="SAME") ** 2))(x)


def _kernel_specs(mlir: str) -> set:
    return {line.split("x[")[1].split("]")[0] for line in mlir.splitlines()
            if "stablehlo.convolution" in line}


@pytest.mark.parametrize("platform", ["cuda", "rocm", "tpu"])
def test_other_platforms_keep_xla_gradient(platform):
    x = jax.ShapeDtypeStruct((2, 8, 8, 16), jnp.float32)
    mlir = export.export(jax.jit(_input_grad), platforms=[platform])(x).mlir_module()
    assert "0, 1, o, i" in _kernel_specs(mlir)  # JAX's own transpose rule


def test_cpu_input_gradient_is_an_hwio_convolution():
    x = jax.ShapeDtypeStruct((2, 8, 8, 16), jnp.float32)
    mlir = export.export(jax.jit(_input_grad), platforms=["cpu"])(x).mlir_module()
    assert _kernel_specs(mlir) == {"0, 1, i, o"}


def test_input_gradient_inside_a_loop_compiles_to_canonical_convolutions():
    # Inside a while loop XLA:CPU leaves a convolution with an OI kernel as it is and runs it
    # on a generic loop; every convolution of the compiled ascent step must read HWIO kernels.
    def ascent(x):
        return lax.fori_loop(0, 4, lambda i, x: x + 0.1 * _input_grad(x), x)

    hlo = jax.jit(ascent).lower(jnp.ones((1, 16, 16, 16))).compile().as_text()
    labels = [line.split("dim_labels=")[1].split(",")[0] for line in hlo.splitlines()
              if " convolution(" in line]
    assert labels and all(label.split("_")[1].startswith("01io") for label in labels), labels


@pytest.mark.parametrize("x_shape,kernel_shape,pads,expected", [
    ((128, 32, 32, 1), (5, 5, 1, 6), ((0, 0), (0, 0)), 28),       # LeNet-5 conv1: whole rows
    ((128, 14, 14, 6), (5, 5, 6, 16), ((0, 0), (0, 0)), 10),      # LeNet-5 conv2: whole rows
    ((64, 64, 64, 3), (3, 3, 3, 32), ((1, 1), (1, 1)), 4),        # cnn4 conv1: 4 x 32 columns
    ((32, 32, 32, 3), (3, 3, 3, 64), ((1, 1), (1, 1)), 2),        # ResNet stem: 2 x 64 columns
    ((64, 16, 16, 64), (3, 3, 64, 128), ((1, 1), (1, 1)), None),  # too many channels
])
def test_unroll_tile_where_it_pays(x_shape, kernel_shape, pads, expected):
    assert conv_fast.unroll_tile(x_shape, kernel_shape, ((1, 1), pads, (1, 1), 1)) == expected


def test_grouped_convolutions_are_not_unrolled():
    assert conv_fast.unroll_tile((1, 8, 8, 4), (3, 3, 2, 4), ((1, 1), ((1, 1), (1, 1)), (1, 1), 2)) is None


def test_lenet_convolutions_are_matmuls_on_cpu():
    import jaxcnn

    model = jaxcnn.models.create("lenet5")
    x = jnp.zeros((2, *model.input_shape))
    variables = model.init(jax.random.key(0), x)
    grad = jax.grad(lambda v: model.apply(v, x).sum())
    mlir = export.export(jax.jit(grad), platforms=["cpu"])(variables).mlir_module()
    assert "stablehlo.convolution" not in mlir
    cuda = export.export(jax.jit(grad), platforms=["cuda"])(variables).mlir_module()
    assert "stablehlo.convolution" in cuda
