"""Filters per second for rendering every filter of a cnn4 conv layer by gradient ascent.

Measures, in one run on the same machine:
  (a) `jaxcnn.viz.visualize_filters`: all filters in one compiled call (vmap), split over
      all devices (`shard=True`); on the CPU the script makes one JAX device per core
      (`--cpu-devices`), so the split runs the filters' ascents side by side on the cores.
      "a_one_device" is the same call without the split;
  (b) a Python loop over the filters, calling the compiled single-filter render
      (`jaxcnn.jit(jaxcnn.viz.filter_render_fn(...))`) once per filter;
  (c) when torch is installed, the same network, weights, parameterization and Adam
      ascent in PyTorch eager, one filter per call as lucent's `render_vis` does it: the
      whole model runs forward and a hook reads the layer ("torch-full"), and a variant
      that stops at the layer ("torch-cut").
Every variant starts from the same Fourier-parameterized image (decorrelated colour,
sigmoid), maximizes the mean activation of one channel with Adam (lr 0.05), and uses no
random transforms, so the work per step is the same. Compile time is reported apart.

Usage: python experiments/bench_viz.py [--steps 256] [--filters 64] [--loop-filters 16]
       [--torch-threads 1] [--skip-torch] [--cpu-devices N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxcnn
from jaxcnn.viz import filter_render_fn, param, visualize_filters

CHECKED_STEPS = 48  # ascent steps over which the one-call render must equal the loop


def build(size: int):
    """cnn4 (SAME padding, the benchmark workload) for size x size x 3 images, seed 0."""
    model = jaxcnn.models.create("cnn4", input_shape=(size, size, 3), padding="SAME")
    variables = model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)))
    return model, variables


def time_layer(model, variables, layer, channels, steps, image, shard):
    """(a): seconds to compile + run once, seconds for a second (compiled) run, result."""
    run = lambda: visualize_filters(model, variables, layer, channels, key=jax.random.key(0),
                                    steps=steps, param=image, shard=shard)
    start = time.perf_counter()
    jax.block_until_ready(run().images)
    first = time.perf_counter() - start
    start = time.perf_counter()
    result = run()
    jax.block_until_ready(result.images)
    return first, time.perf_counter() - start, result


def time_loop(model, variables, layer, channels, steps, image):
    """(b): seconds to compile, seconds for the loop over `channels`, per-filter values."""
    single = jaxcnn.jit(filter_render_fn(model, layer, param=image, steps=steps))
    start = time.perf_counter()
    jax.block_until_ready(single.lower(variables, jax.random.key(0), 0).compile())
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    values = [single(variables, jax.random.key(0), int(c)).values for c in channels]
    jax.block_until_ready(values)
    return compile_s, time.perf_counter() - start, values


def torch_cnn4(variables, stop_at: str | None):
    """cnn4 in PyTorch with the Flax weights; returns (model, the conv layer's hook list)."""
    import torch

    params = variables["params"]
    layers, widths = [], [3, 32, 64, 128, 128]
    for b in range(1, 5):
        conv = torch.nn.Conv2d(widths[b - 1], widths[b], 3, padding=1)
        kernel = np.asarray(params[f"block{b}_conv"]["kernel"])
        conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(np.asarray(params[f"block{b}_conv"]["bias"]).copy())
        layers += [conv, torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        if stop_at == f"block{b}_conv":
            return torch.nn.Sequential(*layers[:-1]).eval(), -1

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(params["fc1"]["kernel"].shape[0], 512)
            self.out = torch.nn.Linear(512, params["logits"]["kernel"].shape[1])
            for name, dense in (("fc1", self.fc1), ("logits", self.out)):
                dense.weight.data = torch.from_numpy(np.asarray(params[name]["kernel"]).T.copy())
                dense.bias.data = torch.from_numpy(np.asarray(params[name]["bias"]).copy())

        def forward(self, x):  # flatten in NHWC order, as the Flax model does
            return self.out(torch.relu(self.fc1(x.permute(0, 2, 3, 1).flatten(1))))

    return torch.nn.Sequential(*layers, Head()).eval(), None


def time_torch(variables, layer, channels, steps, image, start_params, full: bool):
    """(c): seconds for one-filter-per-call ascents in PyTorch, objective values per step."""
    import torch

    model, _ = torch_cnn4(variables, None if full else layer)
    conv_index = 3 * (int(layer[5]) - 1) + 1  # the ReLU after the layer's conv
    n, h, w, c = image.shape
    freqs = np.sqrt(np.fft.rfftfreq(w)[None, :] ** 2 + np.fft.fftfreq(h)[:, None] ** 2)
    scale = torch.from_numpy((np.sqrt(h * w) / np.maximum(freqs, 1.0 / max(h, w))).astype(np.float32))
    colour = torch.from_numpy((param._COLOR_CORRELATION_SQRT / param._COLOR_NORM).T.copy())
    captured = {}
    if full:
        model[conv_index].register_forward_hook(lambda mod, inp, out: captured.update(act=out))
    all_values = []
    start = time.perf_counter()
    for ch in channels:
        spectrum = torch.tensor(np.asarray(start_params), requires_grad=True)
        adam = torch.optim.Adam([spectrum], lr=0.05)
        values = []
        for _ in range(steps):
            adam.zero_grad()
            pixels = torch.fft.irfft2(torch.complex(spectrum[0], spectrum[1]) * scale, s=(h, w))
            picture = torch.sigmoid((pixels.permute(0, 2, 3, 1) / 4.0) @ colour)
            out = model(picture.permute(0, 3, 1, 2))
            act = captured["act"] if full else out
            value = act[:, int(ch)].mean()
            (-value).backward()
            adam.step()
            values.append(float(value.detach()))
        all_values.append(values)
    return time.perf_counter() - start, all_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block2_conv")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--filters", type=int, default=64, help="filters rendered by (a)")
    parser.add_argument("--loop-filters", type=int, default=64,
                        help="filters rendered by (b) and (c), one call each")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--cpu-devices", type=int, default=os.cpu_count(),
                        help="JAX CPU devices to make (one per core by default), set before "
                             "JAX starts; ignored on GPU/TPU")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default); on a shared machine "
                             "1 thread was far steadier than 2")
    args = parser.parse_args()
    if args.cpu_devices < 1:
        parser.error(f"--cpu-devices must be at least 1, got {args.cpu_devices}")
    jax.config.update("jax_num_cpu_devices", args.cpu_devices)

    model, variables = build(args.size)
    image = param.fourier((args.size, args.size, 3))
    channels, loop_channels = list(range(args.filters)), list(range(args.loop_filters))
    start_params = image.init(jax.random.split(jax.random.key(0))[0])
    cpu = platform.processor() or platform.machine()
    report = {"device": f"{jax.devices()[0].device_kind} x{jax.device_count()} ({cpu}, "
                        f"{os.cpu_count()} cores)",
              "layer": args.layer, "steps": args.steps, "image": [args.size, args.size, 3]}

    for name, shard in (("a_one_device", False), ("a_one_call", jax.device_count() > 1)):
        first, again, layer_result = time_layer(model, variables, args.layer, channels,
                                                args.steps, image, shard)
        report[name] = {"filters": len(channels), "devices": jax.device_count() if shard else 1,
                        "compile_and_run_s": round(first, 2), "run_s": round(again, 2),
                        "filters_per_s": round(len(channels) / again, 3)}
    compile_s, loop_s, loop_values = time_loop(model, variables, args.layer, loop_channels,
                                               args.steps, image)
    report["b_loop_of_compiled_single"] = {"filters": len(loop_channels), "compile_s": round(compile_s, 2),
                                           "run_s": round(loop_s, 2),
                                           "filters_per_s": round(len(loop_channels) / loop_s, 3)}
    # The one-call render is the loop, filter by filter. Batched and single-image
    # convolutions sum in different orders, and hundreds of ascent steps amplify that
    # rounding, so the trajectories are compared over their first steps.
    for i in loop_channels[:4]:
        np.testing.assert_allclose(layer_result.values[i][:CHECKED_STEPS],
                                   loop_values[i][:CHECKED_STEPS, 0], rtol=2e-3, atol=1e-3)
    a_rate = report["a_one_call"]["filters_per_s"]
    report["a_over_b"] = round(a_rate / report["b_loop_of_compiled_single"]["filters_per_s"], 3)
    if not args.skip_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)
            report["torch"] = f"{torch.__version__}, {torch.get_num_threads()} threads"
            for name, full in (("c_torch_full", True), ("c_torch_cut", False)):
                seconds, values = time_torch(variables, args.layer, loop_channels, args.steps,
                                             image, start_params, full)
                # Same start, same objective: the first values agree with JAX's.
                np.testing.assert_allclose(values[0][0], float(layer_result.values[0, 0]), rtol=1e-4)
                report[name] = {"filters": len(loop_channels), "run_s": round(seconds, 2),
                                "filters_per_s": round(len(loop_channels) / seconds, 3),
                                "last_value_filter0": round(values[0][-1], 4)}
                report[f"a_over_{name[2:]}"] = round(a_rate / report[name]["filters_per_s"], 3)
    report["a_last_value_filter0"] = round(float(layer_result.values[0, -1]), 4)
    report["dead_filters"] = list(layer_result.dead)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
