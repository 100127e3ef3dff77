"""README_TPU.md's CPU rehearsal commands work exactly as written.

Every fenced bash block whose first line is `# rehearsal` is run with bash from an empty
directory, with this interpreter's `python` first on PATH and this checkout's jaxcnn on
PYTHONPATH; it must exit 0, and every `--workdir` it names must end with a `run.json`.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def rehearsal_blocks() -> list[str]:
    blocks = BLOCK.findall((ROOT / "README_TPU.md").read_text())
    return [b for b in blocks if b.startswith("# rehearsal\n")]


def test_readme_tpu_has_the_rehearsals():
    blocks = rehearsal_blocks()
    assert len(blocks) == 4
    text = "".join(blocks)
    for needed in ("--strategy pmap", "--strategy sharded", "--precision bfloat16", "--signal=TERM",
                   "--process-id 1", "xla_force_host_platform_device_count=8"):
        assert needed in text


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.parametrize("index", range(4))
def test_rehearsal_runs_as_written(index, tmp_path):
    block = rehearsal_blocks()[index]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    workdirs = re.findall(r"--workdir (\S+)", block)
    if not workdirs:
        assert result.stdout.strip() == "8"
    for workdir in set(workdirs):
        run = json.loads((tmp_path / workdir / "run.json").read_text())
        assert 0.5 < run["test_accuracy"] <= 1.0, run
        if "--process-id" in block:
            assert (run["devices"], run["processes"]) == (4, 2)
