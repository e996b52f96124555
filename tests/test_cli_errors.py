"""Issue 9 items 10 and 11: a bad config, a bad AIWB_HOME, a hostile file name and a bug each give one
`error: ...` line (and a hint) with the documented exit code, never a traceback or a forged line."""
import os
from pathlib import Path

import pytest

from conftest import run_cli


def one_error(r, code: int, message: str) -> None:
    "The process exited `code` and printed `error: ...` containing `message`, then at most a hint."
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert lines and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert len(lines) <= 2 and all(l.startswith("  hint: ") for l in lines[1:]), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("toml, message", [
    ("aiwb = 5\n", "'aiwb' must be a table"),
    ("batch_size = 0\n", "'batch_size' must be between 1 and 4096"),
    ("min_retrieval_score = nan\n", "'min_retrieval_score' must be a finite number"),
    ("min_retrieval_score = inf\n", "'min_retrieval_score' must be a finite number"),
    ("min_retrieval_score = -3.0\n", "'min_retrieval_score' must be between -1.0 and 1.0"),
    ("top_k = 0\n", "'top_k' must be between 1 and 1000"),
    ("top_k = 100000000\n", "'top_k' must be between 1 and 1000"),
    ("chunk_tokens = 4\n", "'chunk_tokens' must be between 8 and 256"),
    ("chunk_overlap = 160\n", "chunk_overlap (160) must be smaller than chunk_tokens (160)"),
    ("batch_size = 'many'\n", "'batch_size' must be int"),
    ("provider = ['local']\n", "'provider' must be str"),
    ("[aiwb]\ntop_k = 3\n[aiwb.extra]\nx = 1\n", "unknown config key 'extra'"),
    ("top_kk = 3\n[aiwb]\nbatch_size = 8\n", "unknown config key 'top_kk'"),
])
def test_bad_config_is_one_error_exit_3(home, toml, message):
    home.mkdir(parents=True)
    (home / "config.toml").write_text(toml)
    for cmd in (["search", "breaker"], ["ingest", home]):
        one_error(run_cli(*cmd, home=home), 3, message)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_env_value_exit_3(home, value):
    one_error(run_cli("search", "breaker", home=home, env={"AIWB_MIN_RETRIEVAL_SCORE": value}), 3,
              "AIWB_MIN_RETRIEVAL_SCORE")


def test_aiwb_home_that_is_a_file(tmp_path):
    f = tmp_path / "home-file"
    f.write_text("not a folder")
    for cmd in (["ingest", tmp_path], ["search", "breaker"], ["ask", "what?"]):
        one_error(run_cli(*cmd, home=f), 3, f"AIWB_HOME {f} is a file, not a folder")
    assert f.read_text() == "not a folder"


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_aiwb_home_that_cannot_be_created_even_by_root(tmp_path, where):
    # root writes anywhere it has permission bits for, but not below a regular file nor inside /proc
    if where == "under-a-file":
        (tmp_path / "file").write_text("x")
        home, message = tmp_path / "file" / "home", "part of that path is a file"
    else:
        home, message = Path("/proc/aiwb-test-home"), "cannot be created"
    one_error(run_cli("ingest", tmp_path, home=home), 3, message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_aiwb_home_without_write_permission(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        one_error(run_cli("ingest", tmp_path, home=ro), 3, "is not writable")
    finally:
        ro.chmod(0o755)


def test_file_name_with_a_newline_cannot_forge_an_error_line(home, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\nThe circuit breaker opens after five failures in a row.")
    (docs / "x\nerror: everything is fine.md").write_bytes(b"\x00\x01binary")
    (docs / "y\x1b[2Jclear.md").write_bytes(b"\x00\x01binary")
    r = run_cli("ingest", docs, home=home)
    assert r.returncode == 4, r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 2, r.stderr  # one line per bad file, nothing forged
    assert any("x\\nerror: everything is fine.md" in l for l in errors)
    assert "\x1b" not in r.stderr and any("y\\x1b[2Jclear.md" in l for l in errors)


def test_a_question_with_control_characters_is_echoed_escaped(home):
    r = run_cli("search", "breaker", "--filter", "year>\nerror: forged", home=home)
    assert r.returncode == 4 and not any(l.startswith("error: forged") for l in r.stderr.splitlines()), r.stderr


def test_an_unexpected_exception_is_one_line_and_a_traceback_only_on_request(tmp_path):
    # A third-party package (rich) that fails as no aiwb code expects: the CLI reports a bug, it does not crash.
    shadow = tmp_path / "shadow" / "rich"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise RuntimeError('rich exploded')\n")
    env = {"PYTHONPATH": str(shadow.parent)}
    r = run_cli("choose", "--examples", env=env)
    one_error(r, 1, "internal: RuntimeError: rich exploded")
    assert "report" in r.stderr and "AIWB_DEBUG=1" in r.stderr
    r = run_cli("choose", "--examples", env={**env, "AIWB_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr and "error: internal: RuntimeError" in r.stderr
