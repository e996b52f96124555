"""Build the docs site into `_docs/` offline, without Quarto.

`nbdev_proc_nbs` would first try to download Quarto (with sudo) and then `pip install -e .` into whatever `pip`
is on PATH, so this script calls the same nbdev steps directly: refresh `nbdev.yml`, rebuild the symbol index,
write the sidebar, process the notebooks into `_proc/` (show_doc, hidden cells, directives), then render `_proc/`
with smalldocs, a pure-Python renderer that reads the same `_quarto.yml`. Between the two, `docs_outputs` gives
plotly figures and ipywidgets an HTML form (smalldocs renders an output only as HTML, an image, Markdown, LaTeX or
plain text, so it dropped the figures and showed `VBox(children=...)` for widgets); the site serves its own
`plotly.min.js` and the build fails if a page loads a script or style sheet from the web, so the site works
offline. Pages are named as nbdev names them, without the notebook's number (`60_eval.ipynb` -> `eval.html`), so
the URLs stay when a notebook is renumbered. Where Quarto is installed, `nbdev_docs` builds the site from the same
files, without those steps.

Usage: python tools/build_docs.py
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from docs_outputs import process_folder

ROOT = Path(__file__).resolve().parent.parent
REMOTE_IMPORT = re.compile(r"@import\s+url\(\s*['\"]?https?://[^)]*\)\s*;?")
REMOTE_ASSET = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//[^>]*>", re.I)
OUTPUT_FILE = re.compile(r"^output-file:\s*(\S+)\s*$", re.M)


def drop_remote_imports(site: Path,  # The built site
                        ) -> int:
    "Remove `@import url(https://...)` (the theme's web fonts) from the site's style sheets; return how many."
    dropped = 0
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        kept, n = REMOTE_IMPORT.subn("", text)
        if n:
            css.write_text(kept, encoding="utf-8")
        dropped += n
    return dropped


def page_names(proc: Path,  # nbdev's processed notebooks
               ) -> dict[str, str]:
    "Map each processed notebook's stem (`60_eval`) to the page name nbdev gives it (its `output-file`, `eval`)."
    names = {}
    for nb in proc.glob("*.ipynb"):
        cells = json.loads(nb.read_text(encoding="utf-8")).get("cells", [])
        found = OUTPUT_FILE.search("".join(cells[0].get("source", "")) if cells else "")
        names[nb.stem] = found.group(1).removesuffix(".html") if found else nb.stem
    return names


def rename_pages(proc: Path,  # nbdev's processed notebooks, with their sidebar.yml
                 ) -> dict[str, str]:
    """Name each processed notebook after its nbdev page (`60_eval.ipynb` -> `eval.ipynb`, so smalldocs writes
    `eval.html`, the URL nbdev gives that page), and point the sidebar and the links between notebooks
    (`[Eval](60_eval.ipynb)`) at the new names; return old stem -> new stem."""
    names = page_names(proc)
    targets = sorted(names.values())
    clashes = {t for t in targets if targets.count(t) > 1}
    if clashes:
        raise SystemExit(f"docs: several notebooks would be the page {sorted(clashes)}: rename one of them")
    link = re.compile(r"\]\((\d+[a-zA-Z0-9]*_[\w.-]+)\.ipynb")  # a markdown link to a numbered notebook
    for nb in proc.glob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        nb.write_text(link.sub(lambda m: f"]({names.get(m.group(1), m.group(1))}.ipynb", text), encoding="utf-8")
    sidebar = proc / "sidebar.yml"
    lines = sidebar.read_text(encoding="utf-8").splitlines()
    entry = re.compile(r"^(\s*- )([\w.-]+)\.ipynb\s*$")
    sidebar.write_text("\n".join(entry.sub(lambda m: f"{m.group(1)}{names.get(m.group(2), m.group(2))}.ipynb", line)
                                 for line in lines) + "\n", encoding="utf-8")
    for old, new in names.items():
        if old != new:
            (proc / f"{old}.ipynb").rename(proc / f"{new}.ipynb")
    return names


def local_links(site: Path,  # The built site
                base: str,  # The URL the docs are published at (`doc_host` + `doc_baseurl`)
                ) -> int:
    "Point the symbol links nbdev writes as `<base>/core.html#x` at the site's own pages; return how many."
    pattern = re.compile(re.escape(base.rstrip("/")) + r"/([\w.-]+\.html)")
    pages = {page.name for page in site.glob("*.html")}
    changed = 0
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        new, n = pattern.subn(lambda m: m.group(1) if m.group(1) in pages else m.group(0), text)
        if n:
            page.write_text(new, encoding="utf-8")
        changed += n
    return changed


def remote_assets(site: Path,  # The built site
                  ) -> list[str]:
    "Every script, style sheet, image or frame the site's pages or style sheets would load from the web."
    found = []
    for page in site.rglob("*.html"):
        found += [f"{page.name}: {tag}" for tag in REMOTE_ASSET.findall(page.read_text(encoding="utf-8"))]
    for css in site.rglob("*.css"):
        found += [f"{css.name}: {imp}" for imp in REMOTE_IMPORT.findall(css.read_text(encoding="utf-8"))]
    return found


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
    process_folder(proc)
    # nbdev's sidebar lists every file in nbs/; only notebooks are pages.
    sidebar = proc / "sidebar.yml"
    lines = sidebar.read_text().splitlines()
    sidebar.write_text("\n".join(l for l in lines if not l.rstrip().endswith((".yml", ".css"))) + "\n")
    names = rename_pages(proc)  # pages are named as nbdev names them: eval.html, not 60_eval.html
    smalldocs = Path(sys.executable).parent / "smalldocs"
    render = subprocess.run([str(smalldocs), "render", "--quiet", str(proc)], capture_output=True, text=True)
    for line in (render.stdout + render.stderr).splitlines():
        if "output-file is not read" not in line:  # nbdev's Quarto frontmatter; smalldocs names pages after notebooks
            print(line)
    if render.returncode:
        return render.returncode
    shutil.move(str(proc / out.name), str(out))
    import plotly  # figures' HTML loads plotly.min.js from the page's folder (see docs_outputs, aiwb.core.interactive_figure)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    drop_remote_imports(out)
    local_links(out, cfg.doc_host + cfg.doc_baseurl)
    remote = remote_assets(out)
    if remote:
        print("docs: pages load from the web, which fails offline:\n  " + "\n  ".join(remote[:20]))
        return 1
    notebooks = sorted(cfg.nbs_path.glob("*.ipynb"))
    missing = [nb.name for nb in notebooks if not (out / f"{names.get(nb.stem, nb.stem)}.html").is_file()]
    if not (out / "index.html").is_file() or missing:
        print(f"docs: missing pages: {['index.html'] if not (out / 'index.html').is_file() else []} {missing}")
        return 1
    print(f"docs: {len(notebooks)} notebooks -> {len(list(out.glob('*.html')))} pages in {out.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
