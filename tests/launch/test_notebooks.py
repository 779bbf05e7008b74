"""The three notebooks execute top to bottom (reduced sizes, as CI runs them); one of them also where
namespaces are refused (a container like Colab's), with the weak-sandbox warning printed once."""
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "launch", "notebooks")
EXECUTE = ("import sys, nbformat; from nbclient import NotebookClient; nb = nbformat.read(sys.argv[1], as_version=4); "
           "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': sys.argv[3]}})"
           ".execute(); nbformat.write(nb, sys.argv[2])")


def outputs(notebook) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


# 01 and 02 train (~25 s each on 2 cores): in the full suite; the fast loop runs 03
@pytest.mark.parametrize("name", [pytest.param("01_quickstart.ipynb", marks=pytest.mark.slow),
                                  pytest.param("02_reward_ablation.ipynb", marks=pytest.mark.slow),
                                  "03_score_a_judge.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VISUAL_ERM_REDUCED", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]


@pytest.mark.slow
def test_notebook_runs_where_namespaces_are_refused(tmp_path):
    executed = tmp_path / "executed.ipynb"
    env = dict(os.environ, VISUAL_ERM_REDUCED="1", MPLBACKEND="Agg")
    subprocess.run([sys.executable, os.path.join(HERE, "no_namespaces.py"), "-c", EXECUTE,
                    os.path.join(NOTEBOOKS, "01_quickstart.ipynb"), str(executed), str(tmp_path)],
                   env=env, check=True, timeout=900)
    notebook = nbformat.read(str(executed), as_version=4)
    assert not [o for o in outputs(notebook) if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs(notebook) if o.get("output_type") == "stream")
    assert text.count("WEAK sandbox") == 1, text[:3000]
    assert "[OFF] private_namespaces" in text and "kept: True" in text
