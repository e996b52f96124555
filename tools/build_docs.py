"""Build the docs site into `_docs/` offline, without Quarto.

`nbdev_proc_nbs` would first try to download Quarto (with sudo) and then `pip install -e .` into whatever `pip`
is on PATH, so this script calls the same nbdev steps directly: refresh `nbdev.yml`, rebuild the symbol index,
write the sidebar, process the notebooks into `_proc/` (show_doc, hidden cells, directives), then render `_proc/`
with smalldocs, a pure-Python renderer that reads the same `_quarto.yml`. Where Quarto is installed,
`nbdev_docs` builds the site from the same files.

Usage: python tools/build_docs.py
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    import nbdev.doclinks
    from nbdev.config import get_config
    from nbdev.quarto import nbdev_sidebar, proc_nbs, refresh_quarto_yml

    cfg = get_config()
    proc, out = ROOT / "_proc", ROOT / cfg.doc_path.name
    shutil.rmtree(proc, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    proc_nbs(cfg.nbs_path, n_workers=2)
    # nbdev's sidebar lists every file in nbs/; only notebooks are pages.
    sidebar = proc / "sidebar.yml"
    lines = sidebar.read_text().splitlines()
    sidebar.write_text("\n".join(l for l in lines if not l.rstrip().endswith((".yml", ".css"))) + "\n")
    smalldocs = Path(sys.executable).parent / "smalldocs"
    render = subprocess.run([str(smalldocs), "render", "--quiet", str(proc)], capture_output=True, text=True)
    for line in (render.stdout + render.stderr).splitlines():
        if "output-file is not read" not in line:  # nbdev's Quarto frontmatter; smalldocs names pages after notebooks
            print(line)
    if render.returncode:
        return render.returncode
    shutil.move(str(proc / out.name), str(out))
    import plotly  # figures' HTML loads plotly.min.js from the page's folder (see aiwb.core.interactive)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    notebooks = sorted(cfg.nbs_path.glob("*.ipynb"))
    missing = [nb.name for nb in notebooks if not (out / f"{nb.stem}.html").is_file()]
    if not (out / "index.html").is_file() or missing:
        print(f"docs: missing pages: {['index.html'] if not (out / 'index.html').is_file() else []} {missing}")
        return 1
    print(f"docs: {len(notebooks)} notebooks -> {len(list(out.glob('*.html')))} pages in {out.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
