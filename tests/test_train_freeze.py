"""fit(freeze=REGEX): frozen parameters and BatchNorm statistics stay bit-identical."""
import jax
import numpy as np
import pytest
from flax import traverse_util

import jaxcnn
from jaxcnn import cli, data, models, train

TINY = {"widths": (4, 8, 8, 8, 8), "fc_width": 16, "input_shape": (32, 32, 3),
        "num_classes": 3, "dropout_rate": 0.0}
FREEZE = r"block[1-3]_"


def images(count=32, seed=0):
    rng = np.random.default_rng(seed)
    return data.from_arrays(rng.uniform(size=(count, 32, 32, 3)).astype(np.float32),
                            rng.integers(0, 3, count), num_classes=3)


def flat(tree):
    return traverse_util.flatten_dict(jax.device_get(tree), sep="/")


@pytest.mark.parametrize("optimizer, weight_decay", [("adamw", 0.1), ("momentum", 0.0)])
def test_frozen_parameters_and_statistics_do_not_move(optimizer, weight_decay):
    model = models.create("vgg11_bn", **TINY)
    initial = train.create_state(model, jaxcnn.train.make_optimizer("sgd", 0.1), seed=0)
    state, _ = jaxcnn.fit(model, images(), epochs=2, batch_size=8, optimizer=optimizer,
                          learning_rate=0.05, weight_decay=weight_decay, freeze=FREEZE,
                          progress=False)
    before, after = flat(initial.params), flat(state.params)
    frozen = [p for p in before if p.startswith(("block1_", "block2_", "block3_"))]
    assert frozen and len(frozen) < len(before)
    for path in before:
        same = np.array_equal(before[path], after[path])
        assert same == (path in frozen), path
    stats_before, stats_after = flat(initial.batch_stats), flat(state.batch_stats)
    for path in stats_before:
        same = np.array_equal(stats_before[path], stats_after[path])
        assert same == path.startswith(("block1_", "block2_", "block3_")), path


def test_a_pattern_that_matches_nothing_or_is_not_a_pattern_is_refused():
    model = models.create("vgg11", **TINY)
    with pytest.raises(ValueError, match=r"freeze='conv9' matches no parameter; parameter "
                                         r"paths look like 'block1_conv1/bias'"):
        jaxcnn.fit(model, images(), epochs=1, batch_size=8, freeze="conv9", progress=False)
    with pytest.raises(ValueError, match="freeze must be a regular expression"):
        jaxcnn.fit(model, images(), epochs=1, batch_size=8, freeze="block[1", progress=False)


def test_summary_counts_frozen_parameters():
    model = models.create("vgg11", **TINY)
    plain, frozen = jaxcnn.summary(model), jaxcnn.summary(model, freeze=FREEZE)
    expected = sum(row.params for row in plain.rows if row.name.startswith(
        ("block1_", "block2_", "block3_")))
    assert frozen.totals["frozen_params"] == expected > 0
    assert frozen.totals["trainable_params"] == plain.totals["trainable_params"] - expected
    assert f"(frozen: {expected:,})" in str(frozen)


def test_train_takes_freeze_and_refuses_a_pattern_that_matches_nothing(tmp_path, capsys):
    assert cli.main(["train", "--freeze", "nothing_here", "--epochs", "1",
                     "--workdir", str(tmp_path / "run")]) == 2
    assert "freeze='nothing_here' matches no parameter" in capsys.readouterr().err
