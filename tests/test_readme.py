"""README.md's Python examples run as they are: all its ```python blocks, in order, as one script from the
repository root (a user's first try), in a fresh AIWB_HOME; and what they print is what the README shows."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def readme_blocks() -> list[tuple[str, str]]:
    "The README's fenced blocks in order, as (language, text)."
    return FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    "The README's Python examples run as one script from the repository root."
    blocks = [text for lang, text in readme_blocks() if lang == "python"]
    script = tmp_path_factory.mktemp("readme") / "readme_examples.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("AIWB_DATA", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    env |= {"AIWB_HOME": str(tmp_path_factory.mktemp("home")), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return blocks, run


def test_readme_has_python_examples():
    langs = [lang for lang, _ in readme_blocks()]
    assert langs.count("python") >= 4, langs


def test_readme_examples_run_from_repo_root(readme_run):
    blocks, run = readme_run
    assert run.returncode == 0, f"README's Python examples failed as a script from the repo root:\n{run.stderr[-3000:]}"


def test_readme_outputs_are_what_the_examples_print(readme_run):
    "Every output block that follows a Python block is printed by the script (re-run index.ipynb if not)."
    blocks, run = readme_run
    found = readme_blocks()
    shown = [text for (lang, _), (next_lang, text) in zip(found, found[1:]) if lang == "python" and next_lang == ""]
    assert shown, "the README shows no output of its Python examples"
    stale = [text for text in shown if text.strip() not in run.stdout]
    assert not stale, ("README shows output its examples no longer print: re-execute nbs/index.ipynb, "
                       f"then run tools/make_readme.py\nshown: {stale}\nprinted: {run.stdout}")
