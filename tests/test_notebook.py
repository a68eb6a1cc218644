"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel and shows its grids inline."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


@pytest.mark.slow  # a kernel start and a short training run
def test_the_quickstart_notebook_runs_in_a_kernel(isolated, monkeypatch):
    import nbformat  # the test extra installs nbformat, nbclient and ipykernel
    from nbclient import NotebookClient
    from PIL import Image

    monkeypatch.setenv("QUICKSTART_STEPS", "20")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(isolated)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [Image.open(io.BytesIO(base64.b64decode(o.data["image/png"]))) for o in outputs if "image/png" in o.get("data", {})]
    assert [im.size for im in images] == [(4 * 28 + 5 * 2, 4 * 28 + 5 * 2), (8 * 28 + 9 * 2, 2 * 28 + 3 * 2)]  # 16 samples; a walk of 2 rows
    assert (isolated / "runs/notebook/checkpoints/last.safetensors").is_file() and (isolated / "seeds.png").is_file()
    assert "step 20" in "".join(o.get("text", "") for o in outputs)
