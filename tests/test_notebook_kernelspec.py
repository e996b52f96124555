"""Every notebook names its kernel, so JupyterLab opens it without asking for one, and keeps it.

The notebooks were made from percent scripts with `notebook_metadata_filter: -all`, which keeps the kernelspec
out of the script: every script -> notebook conversion made a notebook without one (`nbconvert --execute` does
not add one either). The filter is now `kernelspec,-all`. `nbdev_clean` keeps the kernelspec and sets its
display name to its name (`python3`), as in every nbdev project; JupyterLab picks the kernel by name."""
import json

import jupytext
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 17


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_python3_kernelspec(path):
    spec = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("kernelspec")
    assert spec, f"{path.name} has no kernelspec: JupyterLab will ask for a kernel"
    assert spec["name"] == "python3" and spec["language"] == "python" and spec.get("display_name")


def test_the_kernel_is_installed():
    "The kernel the notebooks name is installed in this environment (ipykernel's `python3`)."
    assert "python3" in KernelSpecManager().find_kernel_specs()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_round_trip_through_a_percent_script_keeps_the_kernelspec(path):
    "Edit as a script, convert back without --update: the kernelspec survives (it travels in the script)."
    nb = jupytext.read(path)
    back = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    assert back.metadata.get("kernelspec", {}).get("name") == "python3", path.name
