"""Wrong values thrown at the public API and the CLI: each is refused with ValueError or
TypeError (the CLI: exit status 2 and a one-line message), never a raw ZeroDivisionError,
AttributeError, KeyError or a traceback."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxcnn
from jaxcnn import cli, data, models, ops

REFUSED = (ValueError, TypeError)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

not_a_number = st.one_of(st.text(max_size=4), st.lists(st.integers(), max_size=2))
not_positive_int = st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), not_a_number)
bad_seed = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32),
                     st.floats(), not_a_number)
bad_rate = st.one_of(st.floats(max_value=0), st.just(float("nan")), st.just(float("inf")),
                     not_a_number)
bad_smoothing = st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1),
                          st.just(float("nan")), not_a_number)
FIT_ARGUMENTS = {"epochs": not_positive_int, "batch_size": not_positive_int,
                 "accumulate_steps": not_positive_int, "keep_checkpoints": not_positive_int,
                 "checkpoint_every": not_positive_int, "seed": bad_seed,
                 "learning_rate": bad_rate, "label_smoothing": bad_smoothing}


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    return data.from_arrays(rng.uniform(size=(16, 32, 32, 1)).astype(np.float32),
                            np.arange(16) % 10, num_classes=10)


@pytest.mark.parametrize("argument", sorted(FIT_ARGUMENTS))
def test_fit_refuses_wrong_numbers(argument, small):
    @SETTINGS
    @given(FIT_ARGUMENTS[argument])
    def check(value):
        options = {"epochs": 1, "batch_size": 8, "progress": False, argument: value}
        with pytest.raises(REFUSED):
            jaxcnn.fit(models.create("lenet5"), small, **options)

    check()


def test_fit_refuses_empty_data(small):
    empty = data.ArrayDataset(small.images[:0], small.labels[:0], 10, "empty")
    with pytest.raises(ValueError, match="train_data 'empty' is empty"):
        jaxcnn.fit(models.create("lenet5"), empty, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="eval_data 'empty' is empty; pass eval_data=None"):
        jaxcnn.fit(models.create("lenet5"), small, empty, epochs=1, batch_size=8)


@SETTINGS
@given(name=st.one_of(st.none(), st.integers(), st.text(max_size=8)),
       num_classes=not_positive_int,
       input_shape=st.one_of(st.lists(st.integers(-2, 40), max_size=4).filter(
           lambda s: len(s) != 3 or min(s) < 1), not_a_number, st.none()),
       dtype=st.sampled_from(["foo", "int32", "bool", 3, object()]),
       which=st.sampled_from(["name", "num_classes", "input_shape", "dtype"]))
def test_create_refuses_wrong_fields(name, num_classes, input_shape, dtype, which):
    good = {"name": "lenet5", "num_classes": 10, "input_shape": (32, 32, 1), "dtype": None}
    bad = {"name": name, "num_classes": num_classes, "input_shape": input_shape, "dtype": dtype}
    arguments = {**good, which: bad[which]}
    if which == "name" and str(name).lower() in models.names():
        return
    with pytest.raises(ValueError):
        models.create(arguments.pop("name"), **arguments)


@SETTINGS
@given(images=hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_]),
                         hnp.array_shapes(min_dims=0, max_dims=5, max_side=5)),
       labels=st.one_of(hnp.arrays(st.sampled_from([np.int64, np.float64, np.int8]),
                                   hnp.array_shapes(min_dims=0, max_dims=2, max_side=6)),
                        st.lists(st.text(max_size=2), max_size=4)),
       num_classes=st.one_of(st.none(), st.integers(-2, 12)))
def test_from_arrays_returns_a_dataset_or_refuses(images, labels, num_classes):
    try:
        dataset = data.from_arrays(images, labels, num_classes=num_classes)
    except REFUSED:
        return
    assert dataset.images.dtype == np.float32 and dataset.images.ndim == 4
    assert 0 <= dataset.images.min() and dataset.images.max() <= 1
    assert 0 <= dataset.labels.min() and dataset.labels.max() < dataset.num_classes


bad_stride = st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.text(max_size=4),
                       st.lists(st.integers(max_value=0), min_size=1, max_size=3))


@SETTINGS
@given(stride=bad_stride, padding=st.one_of(st.text(max_size=5), st.integers(max_value=-1)),
       kernel_size=st.integers(6, 9), which=st.sampled_from(["stride", "padding", "kernel"]))
def test_ops_refuse_wrong_windows(stride, padding, kernel_size, which):
    x = np.zeros((1, 5, 5, 2), np.float32)
    kernel = np.zeros((kernel_size if which == "kernel" else 3, 3, 2, 4), np.float32)
    options = {"stride": stride if which == "stride" else 1,
               "padding": padding if which == "padding" else "VALID"}
    if which == "padding" and str(padding).upper() in ("SAME", "VALID"):
        return
    with pytest.raises(REFUSED):
        ops.conv2d(x, kernel, **options)
    with pytest.raises(REFUSED):
        ops.max_pool(x, kernel.shape[0], **options)


CLI_FLAGS = ["--epochs", "--batch-size", "--accumulate-steps", "--keep-checkpoints",
             "--checkpoint-every", "--seed", "--learning-rate", "--label-smoothing",
             "--random-shift"]


@pytest.mark.parametrize("flag", CLI_FLAGS)
@pytest.mark.parametrize("value", ["0", "2.5", "abc", "nan"])
def test_cli_refuses_wrong_values_with_a_message(flag, value, tmp_path, capsys):
    valid = {("--learning-rate", "2.5"), ("--seed", "0"), ("--label-smoothing", "0"),
             ("--random-shift", "0")}
    if (flag, value) in valid:
        return
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(cli.main(["train", flag, value, "--workdir", str(tmp_path / "w")]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
