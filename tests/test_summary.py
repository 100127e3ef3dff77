"""Model summaries: rows, totals against real counts, FLOPs by hand and by XLA, the CLI."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn import cli, models


def variable_counts(model):
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    return {name: sum(int(np.prod(v.shape)) for v in jax.tree.leaves(tree))
            for name, tree in shapes.items()}


@pytest.mark.parametrize("name", models.names())
def test_totals_equal_the_real_variable_counts(name):
    model = models.create(name)
    counts = variable_counts(model)
    summary = jaxcnn.summary(model)
    assert summary.totals["trainable_params"] == counts["params"]
    assert summary.totals["non_trainable_params"] == counts.get("batch_stats", 0)
    assert sum(row.params for row in summary.rows) == summary.totals["params"]
    assert summary.totals["param_bytes"] == 4 * summary.totals["params"]
    assert [row.name for row in summary.rows] == models.layer_names(model)


def test_lenet5_rows_by_hand():
    rows = jaxcnn.summary(models.create("lenet5")).rows
    by_name = {row.name: row for row in rows}
    assert by_name["conv1"] == ("conv1", (1, 28, 28, 6), 156, 2 * 28 * 28 * 6 * 25)
    assert by_name["conv2"] == ("conv2", (1, 10, 10, 16), 2416, 2 * 10 * 10 * 16 * 150)
    assert by_name["fc1"] == ("fc1", (1, 120), 48120, 2 * 400 * 120)
    assert by_name["pool1"].params == by_name["pool1"].flops == 0


def test_resnet_block_rows_hold_their_batchnorm_statistics():
    rows = {row.name: row for row in jaxcnn.summary(models.create("resnet18")).rows}
    # conv 3x3 64->64 twice, two BatchNorms with scale, bias, mean, var of 64 each.
    assert rows["stage1_block1"].params == 2 * (9 * 64 * 64) + 2 * 4 * 64


@pytest.mark.parametrize("name,published_gmacs", [("vgg16", 15.47), ("resnet50", 4.09),
                                                   ("alexnet", 0.71)])
def test_flops_match_published_numbers_and_xla(name, published_gmacs):
    model = models.create(name)
    flops = jaxcnn.summary(model).totals["flops"]
    assert flops / 2e9 == pytest.approx(published_gmacs, rel=0.01)  # torchvision's GMACs
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    xla = jax.jit(model.apply).lower(variables, x).cost_analysis()["flops"]
    # XLA also counts biases, relus and pools, and skips products with the zero padding
    # (AlexNet's 11x11/4 and 5x5 convs pad a lot: 8% fewer there).
    assert xla == pytest.approx(flops, rel=0.1)


def test_summary_table_prints_rows_and_totals():
    text = str(jaxcnn.summary(models.create("cnn4"), (64, 64, 3)))
    assert "block1_conv" in text and "(1, 62, 62, 32)" in text
    convs = 3 * 9 * 32 + 32 + 32 * 9 * 64 + 64 + 64 * 9 * 128 + 128 + 128 * 9 * 128 + 128
    dense = (2 * 2 * 128) * 512 + 512 + 512 * 2 + 2  # 64 -> 62, 31, 29, 14, 12, 6, 4, 2
    assert f"Total params: {convs + dense:,}" in text and "FLOPs per image:" in text


def test_cli_summary(capsys):
    assert cli.main(["summary", "resnet18_cifar", "--num-classes", "100"]) == 0
    out = capsys.readouterr().out
    assert "stage4_block2" in out and "Trainable params: 11,220,132" in out
    assert cli.main(["summary", "vgg16", "--input-shape", "16", "16", "3"]) == 2
    assert "at least 32x32" in capsys.readouterr().err
    assert cli.main(["summary", "vgg99"]) == 2
    assert "known models: alexnet" in capsys.readouterr().err
