"""Drop the JavaScript that plotly's FigureWidget saves with every notebook's widget state.

plotly 6+ builds `FigureWidget` on anywidget, whose saved state carries `_esm`: the whole plotly.js bundle (about
5 MB) once per figure widget. A notebook keeps only what the docs' static snapshot needs (`_widget_data`,
`_widget_layout`, `_config`); a kernel re-sends the bundle when the notebook runs, so nothing live is lost.

    python tools/slim_widget_state.py            # slim every notebook in nbs/
    python tools/slim_widget_state.py --check    # exit 1 if a notebook still holds a bundle (make sync-check)
"""
import json
import sys
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent / "nbs"
STATE = "application/vnd.jupyter.widget-state+json"
DROP_PREFIXES = ("_esm", "_css", "_py2js_", "_js2py_", "_anywidget_id", "_last_")


def slim(nb: dict) -> int:
    "Remove the bundles and message buffers from `nb`'s anywidget models (in place); return how many were slimmed."
    models = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
    n = 0
    for m in models.values():
        state = m.get("state", {})
        drop = [k for k in state if k.startswith(DROP_PREFIXES)]
        if m.get("model_name") == "AnyModel" and drop:
            for k in drop:
                del state[k]
            n += 1
    return n


def main(argv: list[str]) -> int:
    check = "--check" in argv
    bad = []
    for path in sorted(NBS.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if slim(nb):
            if check:
                bad.append(path.name)
            else:
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
                print(f"slimmed {path.name}")
    if bad:
        print(f"notebooks hold plotly.js bundles in their widget state: {', '.join(bad)}\n"
              f"  hint: run python tools/slim_widget_state.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
