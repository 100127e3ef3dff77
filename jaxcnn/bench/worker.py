"""One framework's runner in its own process: `python -m jaxcnn.bench.worker SPEC_JSON`.

Protocol: SPEC_JSON holds peer ("jaxcnn", "flax" or "torch"), workload, batch,
precision, strategy, cache (a folder, "" for the default, or null for no persistent
compilation cache), torch_threads (PyTorch's intra-op threads, null for its default) and
xla_defaults (jaxcnn only: compile with XLA's default options, not jaxcnn's).
The worker builds and compiles the step, prints one JSON line
`{"compile_s", "device", "version"}`, then for each line `N` read from stdin runs N steps
and prints `{"seconds": ...}`; it exits at end of input. Separate processes keep the
frameworks' thread pools from competing while another one is being timed.
"""
from __future__ import annotations

import json
import sys


def _runner(spec: dict):
    """Builds the runner and a description of the device and library version."""
    args = (spec["workload"], spec["batch"], spec["precision"])
    if spec["peer"] == "torch":
        import torch

        from jaxcnn.bench.torch_baseline import torch_runner

        if spec["torch_threads"]:
            torch.set_num_threads(spec["torch_threads"])
        return torch_runner(*args), f"cpu x{torch.get_num_threads()} threads", torch.__version__
    import jax

    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind} x{jax.device_count()}"
    if spec["peer"] == "flax":
        import flax

        from jaxcnn.bench.flax_baseline import flax_runner

        return flax_runner(*args), device, flax.__version__
    from jaxcnn.bench.runner import enable_compile_cache, jaxcnn_runner

    if spec["cache"] is not None:
        enable_compile_cache(spec["cache"] or None)
    options = {} if spec.get("xla_defaults") else None
    return (jaxcnn_runner(*args, strategy=spec["strategy"], compiler_options=options), device,
            jax.__version__)


def main() -> None:
    """Runs the worker protocol on stdin/stdout."""
    runner, device, version = _runner(json.loads(sys.argv[1]))
    print(json.dumps({"compile_s": runner.compile_s, "device": device, "version": version}),
          flush=True)
    for line in sys.stdin:
        print(json.dumps({"seconds": runner.run(int(line))}), flush=True)


if __name__ == "__main__":
    main()
