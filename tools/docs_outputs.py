"""Give every stored output an HTML form the docs renderer can show: plotly figures and ipywidgets.

The docs pipeline is nbdev's processing (`_proc/`, cells and outputs as saved) then smalldocs, which renders an
output only in one of `text/html`, `image/*`, `text/markdown`, `text/latex` or `text/plain` (Quarto's order). Two
kinds of output carry none of those, so the site lost them:

- a plotly figure saved only as `application/vnd.plotly.v1+json` (what plotly's renderer writes when a notebook
  returns a figure) was dropped: the eval dashboard, the trace waterfall;
- an ipywidget (`application/vnd.jupyter.widget-view+json`) fell back to its `text/plain` repr, `VBox(children=...)`.

`add_static_html` runs between the two steps, on every processed notebook: a figure gets the interactive HTML
plotly itself writes, loading `plotly.min.js` from the site's own folder (no CDN); a widget gets a static rendering
of the state saved in the notebook's `widgets` metadata (labels, values, options, HTML), with a note that the form
is live in JupyterLab. Outputs that already have `text/html` are left as they are.
"""
import html
import json
from pathlib import Path

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
LIVE_NOTE = ("Static snapshot of this widget as the notebook was saved: it is live in JupyterLab "
             "(<code>make lab</code>).")
BOXES = {"VBoxModel": "column", "BoxModel": "column", "HBoxModel": "row", "GridBoxModel": "row"}
CHOICES = {"DropdownModel", "SelectModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectMultipleModel"}
SLIDERS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "IntRangeSliderModel",
           "FloatRangeSliderModel", "SelectionSliderModel", "SelectionRangeSliderModel"}
TEXTS = {"TextModel", "TextareaModel", "PasswordModel", "IntTextModel", "FloatTextModel",
         "BoundedIntTextModel", "BoundedFloatTextModel", "ComboboxModel"}


def plotly_html(figure: dict,  # The figure as plotly JSON (data, layout)
                div_id: str,  # The id of the figure's div, unique in the page
                ) -> str:
    "The figure as interactive HTML that loads `plotly.min.js` from the page's own folder."
    import plotly.io

    return plotly.io.to_html(figure, full_html=False, include_plotlyjs="directory", div_id=div_id, validate=False)


def _model_ref(value: object) -> str | None:
    "The model id in a widget reference `IPY_MODEL_<id>`, or None."
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        return value[len("IPY_MODEL_"):]
    return None


def _label(state: dict) -> str:
    "The widget's description as escaped HTML (empty if none)."
    text = state.get("description") or ""
    return text if state.get("description_allow_html") else html.escape(str(text))


def _choice_html(name: str, state: dict) -> str:
    "A disabled select showing a choice widget's options and its selection."
    labels = state.get("_options_labels") or []
    index = state.get("index")
    chosen = set(index) if isinstance(index, (list, tuple)) else {index}
    options = "".join(f"<option{' selected' if i in chosen else ''}>{html.escape(str(o))}</option>"
                      for i, o in enumerate(labels))
    multiple = " multiple" if name == "SelectMultipleModel" else ""
    return f"<label>{_label(state)} <select disabled{multiple}>{options}</select></label>"


def widget_html(model_id: str,  # The id of the widget's model
                models: dict,  # The notebook's widget state: model id -> {model_name, state}
                depth: int = 0,  # Nesting depth so far (a cycle or a very deep tree stops here)
                ) -> str:
    "A static HTML rendering of the widget `model_id` and its children, from their saved state."
    model = models.get(model_id)
    if model is None:
        return "<p>(this widget's state was not saved with the notebook)</p>"
    if depth > 50:
        return ""
    name = model.get("model_name", "")
    state = model.get("state", {})
    if "children" in state:
        children = "".join(widget_html(_model_ref(c) or "", models, depth + 1) for c in state["children"])
        direction = BOXES.get(name, "column")
        return f'<div style="display:flex;flex-direction:{direction};gap:0.4em 1.5em">{children}</div>'
    value = state.get("value")
    if name == "AnyModel" and "_widget_data" in state:  # plotly's FigureWidget: its figure, drawn by the site's plotly.js
        figure = {"data": state["_widget_data"], "layout": state.get("_widget_layout", {})}
        return plotly_html(figure, f"figw-{model_id}")
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{value or ''}</div>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(value or ''))}</span>"
    if name in ("CheckboxModel", "ToggleButtonModel"):
        checked = " checked" if value else ""
        return f'<label><input type="checkbox" disabled{checked}> {_label(state)}</label>'
    if name == "ButtonModel":
        return f"<button disabled>{_label(state)}</button>"
    if name in CHOICES:
        return _choice_html(name, state)
    if name in SLIDERS:
        labels, index = state.get("_options_labels"), state.get("index")
        shown = labels[index] if labels and isinstance(index, int) and 0 <= index < len(labels) else value
        return f"<label>{_label(state)} <output>{html.escape(str(shown))}</output></label>"
    if name in TEXTS:
        return f'<label>{_label(state)} <input type="text" disabled value="{html.escape(str(value or ""))}"></label>'
    shown = "" if value is None else f": {html.escape(str(value))}"
    return f"<span>{_label(state)} [{html.escape(name.removesuffix('Model'))}{shown}]</span>"


def widget_snapshot(model_id: str,  # The id of the widget's model
                    models: dict,  # The notebook's widget state: model id -> {model_name, state}
                    ) -> str:
    "The widget's static rendering in a bordered box, with a note that it is live in JupyterLab."
    body = widget_html(model_id, models)
    return (f'<div class="widget-snapshot" style="border:1px dashed #999;border-radius:6px;padding:0.6em 1em">'
            f'{body}<p style="font-size:0.85em;color:#555;margin:0.6em 0 0">{LIVE_NOTE}</p></div>')


def add_static_html(nb: dict,  # A notebook (nbformat 4 JSON), changed in place
                    ) -> int:
    "Add `text/html` to every plotly and widget output that has none; return how many outputs were given one."
    widgets = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    added = 0
    for i, cell in enumerate(nb.get("cells", [])):
        for j, out in enumerate(cell.get("outputs", [])):
            data = out.get("data")
            if not data or "text/html" in data:
                continue
            if PLOTLY in data:
                data["text/html"] = plotly_html(data[PLOTLY], div_id=f"plotly-{i}-{j}")
                added += 1
            elif WIDGET_VIEW in data:
                data["text/html"] = widget_snapshot(str(data[WIDGET_VIEW].get("model_id")), widgets)
                added += 1
    return added


def process_folder(folder: Path,  # nbdev's processed notebooks (`_proc/`)
                   ) -> int:
    "Run `add_static_html` on every notebook in `folder`, rewriting those it changes; return the outputs changed."
    total = 0
    for path in sorted(folder.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        added = add_static_html(nb)
        if added:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        total += added
    return total
