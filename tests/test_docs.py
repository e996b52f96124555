"""The docs site shows every figure and widget, and loads offline.

smalldocs renders an output only as HTML, an image, Markdown, LaTeX or text, so a plotly figure saved as plotly
JSON alone was dropped and a widget showed as `VBox(children=...)`; `tools/docs_outputs.py` gives both an HTML form
between nbdev's processing and smalldocs. These tests run that step on outputs made by plotly and ipywidgets
themselves, then build the real site and read its pages."""
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import build_docs  # noqa: E402
import docs_outputs  # noqa: E402


def notebook(*outputs: dict, widgets: dict | None = None) -> dict:
    "A one-cell notebook whose cell has `outputs` (display data bundles), with widget state in its metadata."
    outs = [{"output_type": "display_data", "data": data, "metadata": {}} for data in outputs]
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "source": "x", "outputs": outs}
    meta = {"widgets": {docs_outputs.WIDGET_STATE: widgets}} if widgets else {}
    return {"cells": [cell], "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def smalldocs_html(nb: dict) -> str:
    "The page body smalldocs renders for `nb`."
    from smalldocs.notebook import to_markdown

    return to_markdown(json.dumps(nb))[1]


def test_plotly_only_output_becomes_an_interactive_figure():
    import plotly.graph_objects as go
    import plotly.io

    fig = go.Figure(go.Bar(x=["a", "b"], y=[3, 5]), layout={"title": {"text": "latency by stage"}})
    bundle = plotly.io.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())  # what a notebook saves
    assert set(bundle) == {docs_outputs.PLOTLY}
    nb = notebook(bundle)
    assert "plotly-graph-div" not in smalldocs_html(nb)  # dropped without the step
    assert docs_outputs.add_static_html(nb) == 1
    page = smalldocs_html(nb)
    assert 'class="plotly-graph-div"' in page and "Plotly.newPlot" in page and "latency by stage" in page
    assert re.search(r'<script[^>]*src="plotly.min.js"', page)  # served by the site itself, no CDN
    assert not build_docs.REMOTE_ASSET.search(page)


def test_widget_output_becomes_a_static_snapshot():
    import ipywidgets as w

    box = w.VBox([w.HBox([w.Checkbox(value=True, description="high volume"), w.Checkbox(description="realtime")]),
                  w.Dropdown(options=["rag", "agent"], value="agent", description="pattern"),
                  w.HTML("<b>fine_tuned</b>")])
    bundle = box._repr_mimebundle_()
    state = w.Widget.get_manager_state(drop_defaults=False)
    nb = notebook(bundle, widgets=state)
    assert "VBox(children=" in smalldocs_html(nb)  # the text repr, without the step
    assert docs_outputs.add_static_html(nb) == 1
    page = smalldocs_html(nb)
    assert "VBox(children=" not in page
    assert '<input type="checkbox" disabled checked> high volume' in page
    assert '<input type="checkbox" disabled> realtime' in page
    assert "<option>rag</option><option selected>agent</option>" in page
    assert "<b>fine_tuned</b>" in page and "live in JupyterLab" in page


def test_figure_widget_snapshot_is_its_figure_without_the_bundle():
    import ipywidgets as w
    import plotly.graph_objects as go
    sys.path.insert(0, str(ROOT / "tools"))
    import slim_widget_state

    fig = go.FigureWidget(go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="measured")))
    box = w.VBox([w.FloatSlider(description="max $/query"), fig])
    bundle = box._repr_mimebundle_()
    nb = notebook(bundle, widgets=w.Widget.get_manager_state(drop_defaults=False))
    before = len(json.dumps(nb))
    assert slim_widget_state.slim(nb) >= 1
    assert len(json.dumps(nb)) < before - 1_000_000  # the plotly.js bundle is gone
    assert docs_outputs.add_static_html(nb) == 1
    page = smalldocs_html(nb)
    assert 'class="plotly-graph-div"' in page and "max $/query" in page and "live in JupyterLab" in page


def test_widget_without_saved_state_says_so():
    nb = notebook({docs_outputs.WIDGET_VIEW: {"model_id": "abc", "version_major": 2}, "text/plain": "VBox(...)"})
    docs_outputs.add_static_html(nb)
    page = smalldocs_html(nb)
    assert "state was not saved" in page and "live in JupyterLab" in page


def test_outputs_with_html_are_left_alone():
    nb = notebook({docs_outputs.PLOTLY: {"data": []}, "text/html": "<div>mine</div>"})
    assert docs_outputs.add_static_html(nb) == 0
    assert nb["cells"][0]["outputs"][0]["data"]["text/html"] == "<div>mine</div>"


@pytest.fixture(scope="module")
def site():
    "The docs site, built as `make docs` builds it."
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "build_docs.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return ROOT / "_docs"


def page_of(nb_path) -> str:
    "The page nbdev names after a notebook: its name without the leading number (`60_eval.ipynb` -> `eval.html`)."
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", nb_path.stem.lower()) + ".html"


def test_page_of():
    assert page_of(ROOT / "nbs" / "60_eval.ipynb") == "eval.html"
    assert page_of(ROOT / "nbs" / "index.ipynb") == "index.html"


def test_site_shows_the_eval_dashboard_trace_waterfall_and_pattern_form(site):
    for page in ("eval.html", "observability.html", "store.html"):
        html = (site / page).read_text(encoding="utf-8")
        assert 'class="plotly-graph-div"' in html and "Plotly.newPlot" in html, page
    assert (site / "plotly.min.js").stat().st_size > 1_000_000
    patterns = (site / "patterns.html").read_text(encoding="utf-8")
    assert "VBox(children=" not in patterns
    assert 'class="widget-snapshot"' in patterns and "live in JupyterLab" in patterns
    assert "high volume" in patterns and "fine_tuned" in patterns


def test_every_saved_figure_and_widget_reaches_its_page(site):
    "Count plotly and widget outputs in every notebook: each page has as many figures/snapshots."
    for nb_path in sorted((ROOT / "nbs").glob("*.ipynb")):
        outs = [o.get("data", {}) for c in json.loads(nb_path.read_text())["cells"] for o in c.get("outputs", [])]
        html = (site / page_of(nb_path)).read_text(encoding="utf-8")
        figures = sum(docs_outputs.PLOTLY in d for d in outs)
        widgets = sum(docs_outputs.WIDGET_VIEW in d for d in outs)
        assert html.count('class="plotly-graph-div"') >= figures, nb_path.name
        assert html.count('class="widget-snapshot"') >= widgets, nb_path.name


def test_no_page_loads_a_script_or_style_from_the_web(site):
    assert build_docs.remote_assets(site) == []
    pages = list(site.glob("*.html"))
    assert len(pages) >= 17
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<(script|link)\b[^>]*(src|href)=[\"']?(https?:)?//", html), page.name
        assert '<link rel="icon" href="favicon.svg">' in html, page.name  # else the browser asks for /favicon.ico
    assert (site / "favicon.svg").is_file()
    for css in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*['\"]?(https?:)?//", css.read_text(encoding="utf-8")), css.name


def test_pages_are_named_without_the_notebooks_number(site):
    "Every notebook is one page, named as nbdev names it, so a renumbered notebook keeps its URL."
    notebooks = sorted((ROOT / "nbs").glob("*.ipynb"))
    assert {page_of(nb) for nb in notebooks} <= {p.name for p in site.glob("*.html")}
    assert not [p.name for p in site.glob("*.html") if re.match(r"\d", p.name)]
    search = json.loads((site / "search.json").read_text(encoding="utf-8"))
    assert not [e["href"] for e in search if re.match(r"\d", e["href"])]


def test_links_between_pages_resolve(site):
    "Every link from a page to another page of the site (sidebar, prose, symbol links) names a page that exists."
    pages = {p.name for p in site.glob("*.html")}
    broken = []
    for page in site.glob("*.html"):
        for target in re.findall(r'href="([^"#:?]+\.html)(?:#[^"]*)?"', page.read_text(encoding="utf-8")):
            if target not in pages:
                broken.append(f"{page.name} -> {target}")
    assert not broken, broken
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="cli.html"' in index and 'href="store.html"' in index


def test_symbol_links_point_at_the_sites_own_pages(site):
    core = (site / "providers.html").read_text(encoding="utf-8")
    assert 'href="core.html#completion"' in core
    assert "aiwb.github.io" not in "".join(p.read_text(encoding="utf-8") for p in site.glob("*.html"))
