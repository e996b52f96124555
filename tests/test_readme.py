"""README.md's Python examples run as they are: all its ```python blocks, in order, as one script from the
repository root (a user's first try), in a fresh AIWB_HOME; and what they print is what the README shows.
A block from a `#| eval: false` cell (it needs a key or a server) is marked by tools/make_readme.py and only
compiled."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from make_readme import NOT_RUN  # noqa: E402

FENCE = re.compile(r"^(" + re.escape(NOT_RUN) + r")?```(\w*)\n(.*?)^```\n", re.M | re.S)


def readme_blocks() -> list[tuple[str, str, bool]]:
    "The README's fenced blocks in order, as (language, text, marked not to run)."
    found = FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    return [(lang, text, bool(mark)) for mark, lang, text in found]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    "The README's Python examples run as one script from the repository root."
    blocks = [text for lang, text, not_run in readme_blocks() if lang == "python" and not not_run]
    script = tmp_path_factory.mktemp("readme") / "readme_examples.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("AIWB_DATA", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    env |= {"AIWB_HOME": str(tmp_path_factory.mktemp("home")), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return blocks, run


def test_readme_has_python_examples():
    run = [lang for lang, _, not_run in readme_blocks() if not not_run]
    assert run.count("python") >= 4, run


def test_readme_examples_not_run_still_compile():
    for lang, text, not_run in readme_blocks():
        if lang == "python" and not_run:
            compile(text, "README.md", "exec")


def test_readme_examples_run_from_repo_root(readme_run):
    blocks, run = readme_run
    assert run.returncode == 0, f"README's Python examples failed as a script from the repo root:\n{run.stderr[-3000:]}"


def test_readme_outputs_are_what_the_examples_print(readme_run):
    "Every output block that follows a Python block is printed by the script (re-run index.ipynb if not)."
    blocks, run = readme_run
    found = readme_blocks()
    shown = [text for (lang, _, not_run), (next_lang, text, _) in zip(found, found[1:])
             if lang == "python" and not not_run and next_lang == ""]
    assert shown, "the README shows no output of its Python examples"
    stale = [text for text in shown if text.strip() not in run.stdout]
    assert not stale, ("README shows output its examples no longer print: re-execute nbs/index.ipynb, "
                       f"then run tools/make_readme.py\nshown: {stale}\nprinted: {run.stdout}")


def test_eval_false_cells_are_marked_not_to_run():
    from make_readme import render

    cells = [{"cell_type": "code", "source": "#| eval: false\nclient = Anthropic()", "outputs": []},
             {"cell_type": "code", "source": "print(1)", "outputs": []}]
    text = render({"cells": cells})
    assert f"{NOT_RUN}```python\nclient = Anthropic()\n```" in text
    assert "\n```python\nprint(1)\n```" in text and text.count(NOT_RUN) == 1
