"""The same training three ways: `jit` (one device), `pmap` and `sharded` (all devices).

LeNet-5 is trained on the embedded digits with each strategy from the same seed. The
data order depends only on (seed, epoch) and the dropout key on (seed, step), and the
global batch is split over the devices, so the three runs compute the same updates and
end with the same parameters up to float rounding. The optimizer is SGD with momentum:
Adam divides each gradient by its running RMS, which turns rounding-level differences
in near-zero gradients into full-size steps, so Adam runs drift apart by ~1e-3 (relative)
whatever the strategy. Throughput is measured on the last epoch (the first includes
compilation).

Command:
    python experiments/multi_device.py                      # every device of this machine
    python experiments/multi_device.py --cpu-devices 8      # CPU: 8 XLA host devices
    python experiments/multi_device.py --quick              # 8 CPU devices, 2 short epochs
`--cpu-devices N` sets XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX is
imported (it only takes effect on the CPU backend). On a TPU VM run it without flags.
Expected result: one line per strategy with its images/s and final test accuracy, then
the largest relative parameter difference of pmap and sharded from jit, about 1e-6 in
float32 (accumulated rounding of a differently ordered mean). On a CPU the
"devices" share the same cores, so pmap/sharded are no faster than jit there.
"""
from __future__ import annotations

import argparse
import os


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-devices", type=int, help="simulate N devices on the CPU")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="8 CPU devices, 2 epochs, offline")
    args = parser.parse_args()
    if args.quick:
        args.cpu_devices, args.epochs = args.cpu_devices or 8, 2
    return args


def main() -> None:
    args = parse_args()
    if args.cpu_devices:
        # XLA reads its flags once, when JAX starts: this must precede `import jax`.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.cpu_devices}")
    import jax
    import numpy as np

    import jaxcnn
    from jaxcnn import data, models

    print(f"{jax.device_count()} devices: {jax.devices()[0].device_kind} ({jax.default_backend()})")
    train = data.load("digits", "train", image_size=32)
    test = data.load("digits", "test", image_size=32)
    model = models.create("lenet5", num_classes=10)
    params = {}
    for strategy in ("jit", "pmap", "sharded"):
        state, history = jaxcnn.fit(model, train, test, epochs=args.epochs,
                                    batch_size=args.batch_size, optimizer="momentum",
                                    learning_rate=0.05,
                                    seed=args.seed, strategy=strategy,
                                    progress=False)
        params[strategy] = jax.device_get(state.params)
        steps = train.num_batches(args.batch_size, drop_remainder=True)
        speed = steps * args.batch_size / history[-1]["seconds"]
        print(f"{strategy:8s} {speed:9.0f} images/s  test accuracy "
              f"{history[-1]['eval_accuracy']:.4f}")
    for strategy in ("pmap", "sharded"):
        diff = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12)) for a, b in
                   zip(jax.tree.leaves(params[strategy]), jax.tree.leaves(params["jit"])))
        print(f"max relative parameter difference {strategy} vs jit: {diff:.2e}")


if __name__ == "__main__":
    main()
