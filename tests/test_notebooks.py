"""The Colab notebooks run top to bottom, offline, in their QUICK configuration.

Each notebook is executed with nbclient after injecting `QUICK = True` right after its
cell tagged "parameters"; any cell that raises fails the test. The committed files must
also be exactly what experiments/notebooks/build_notebooks.py writes, without outputs.
"""
import os
import pathlib
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "experiments" / "notebooks"
NAMES = ["quick_tour", "visualization", "multi_device"]


def _with_quick_parameters(notebook):
    """Inserts `QUICK = True` after the cell tagged "parameters" (papermill's convention)."""
    tagged = [i for i, cell in enumerate(notebook.cells)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "each notebook needs exactly one cell tagged 'parameters'"
    notebook.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell("QUICK = True"))
    return notebook


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, monkeypatch):
    notebook = _with_quick_parameters(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4))
    # The kernel inherits this environment: this checkout's jaxcnn, no flags from outside.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no inline plot"


def test_committed_notebooks_are_the_generated_ones_without_outputs(tmp_path):
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        assert "importlib.util.find_spec" in notebook.cells[1].source
    before = {name: (NOTEBOOKS / f"{name}.ipynb").read_text() for name in NAMES}
    result = subprocess.run([sys.executable, str(NOTEBOOKS / "build_notebooks.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    after = {name: (NOTEBOOKS / f"{name}.ipynb").read_text() for name in NAMES}
    assert after == before, "rerun experiments/notebooks/build_notebooks.py and commit"
