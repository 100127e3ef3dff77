"""Batches for every strategy: per-process shards, pmap and sharded-jit layouts, prefetch."""
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxcnn import data


def _dataset(n):
    return data.ArrayDataset(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1),  # ids as pixels
                             (np.arange(n) % 3).astype(np.int32), 3)


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_process_shards_partition_every_global_batch(drop_remainder):
    ds = _dataset(22)
    kwargs = dict(shuffle=True, seed=5, epoch=1, drop_remainder=drop_remainder)
    whole = list(ds.batches(8, process_index=0, process_count=1, **kwargs))
    shards = [list(ds.batches(8, process_index=p, process_count=4, **kwargs)) for p in range(4)]
    assert all(len(s) == len(whole) == ds.num_batches(8, drop_remainder) for s in shards)
    for step, batch in enumerate(whole):
        for key in ("image", "label", "mask"):
            joined = np.concatenate([s[step][key] for s in shards])
            np.testing.assert_array_equal(joined, batch[key])
        assert all(s[step]["image"].shape == (2, 1, 1, 1) for s in shards)
    seen = np.concatenate([b["image"][b["mask"]].ravel() for b in whole])
    assert len(seen) == len(set(seen)) == (16 if drop_remainder else 22)


def test_process_arguments_are_checked():
    ds = _dataset(12)
    with pytest.raises(ValueError, match="batch_size=6 cannot be split over 4 processes"):
        next(ds.batches(6, process_index=0, process_count=4))
    with pytest.raises(ValueError, match=r"process_index must lie in \[0, process_count=2\), got 2"):
        next(ds.batches(4, process_index=2, process_count=2))


def test_shard_for_pmap_adds_a_device_axis():
    batch = next(_dataset(12).batches(8))
    sharded = data.shard_for_pmap(batch, num_devices=4)
    assert sharded["image"].shape == (4, 2, 1, 1, 1) and sharded["mask"].shape == (4, 2)
    np.testing.assert_array_equal(sharded["label"].reshape(-1), batch["label"])
    with pytest.raises(ValueError, match="a batch of 8 examples cannot be split over 3 devices"):
        data.shard_for_pmap(batch, num_devices=3)


def test_prefetch_to_device_keeps_order_and_reraises_errors():
    batches = list(_dataset(20).batches(4))
    placed = list(data.prefetch_to_device(iter(batches), size=2))
    assert all(isinstance(b["image"], jax.Array) for b in placed)
    for a, b in zip(placed, batches, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])

    def failing():
        yield batches[0]
        raise OSError("disk gone")

    stream = data.prefetch_to_device(failing())
    next(stream)
    with pytest.raises(OSError, match="disk gone"):
        next(stream)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        next(data.prefetch_to_device(batches, size=0))


def test_eight_devices_pmap_and_sharded_jit_layouts(tmp_path):
    script = textwrap.dedent("""
        import jax, numpy as np
        from jaxcnn import data
        ds = data.ArrayDataset(np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1),
                               (np.arange(20) % 2).astype(np.int32), 2)
        batch = next(ds.batches(16))
        out = jax.pmap(lambda b: b["image"].sum(), axis_name="batch")(data.shard_for_pmap(batch))
        assert out.shape == (8,) and float(out.sum()) == sum(range(16)), out
        placed = data.shard_batch(batch)
        assert placed["image"].sharding.spec[0] == "batch"
        assert len(placed["image"].addressable_shards) == 8
        assert placed["image"].addressable_shards[3].data.ravel().tolist() == [6.0, 7.0]
        total = jax.jit(lambda b: (b["image"][:, 0, 0, 0] * b["mask"]).sum())(placed)
        assert float(total) == sum(range(16))
        stream = data.prefetch_to_device(ds.batches(8), put=data.shard_batch)
        assert [len(b["image"].addressable_shards) for b in stream] == [8, 8, 8]
        try:
            data.shard_batch(next(ds.batches(4)))
        except ValueError as err:
            assert "cannot be split over this process's 8 devices" in str(err)
        else:
            raise AssertionError("a batch of 4 was split over 8 devices")
        print("ok")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_two_processes_each_read_their_shard_of_the_global_batch(tmp_path):
    script = textwrap.dedent("""
        import sys, jax, numpy as np
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
        from jaxcnn import data
        ds = data.ArrayDataset(np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1),
                               (np.arange(20) % 2).astype(np.int32), 2)
        sums = []
        for batch in ds.batches(8, shuffle=True, seed=1, epoch=0, drop_remainder=False):
            assert batch["image"].shape == (4, 1, 1, 1)  # this process's half
            placed = data.shard_batch(batch)
            assert placed["image"].shape == (8, 1, 1, 1)  # the global batch
            sums.append(float(jax.jit(lambda b: (b["image"][:, 0, 0, 0] * b["mask"]).sum())(placed)))
        print("sums", sums)
    """)
    port = 20000 + os.getpid() % 20000
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", script, f"127.0.0.1:{port}", str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][1][-2000:] + outputs[1][1][-2000:]
    order = np.random.default_rng([1, 0]).permutation(20)
    expected = [float(order[s:s + 8].sum()) for s in range(0, 20, 8)]
    for stdout, _ in outputs:
        assert f"sums {expected}" in stdout, stdout
