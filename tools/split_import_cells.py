"""Move top-level imports out of example cells into their own cell, in every notebook in nbs/.

nbdev re-executes every cell that contains an import when it builds the docs (and warns "Found cells containing
imports and other code"), so an example cell that also imports runs again in the docs build, in another working
directory. Splitting them keeps the docs build to imports, exports and show_doc.

Usage: python tools/split_import_cells.py [--check]   (--check: list offending cells, exit 1 if any)
"""
import ast
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW = ("#| export", "#| exports", "#| exporti", "#|export", "#| exec_doc")


def offending(src: str):
    "Line ranges of top-level imports if the cell mixes them with other code, else None."
    if any(l.strip().startswith(SHOW) for l in src.splitlines()) or "nbdev_export()" in src:
        return None
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    others = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    if not imports or not others:
        return None
    return [(n.lineno, n.end_lineno) for n in imports]


def main() -> int:
    check = "--check" in sys.argv
    found = 0
    for nb_path in sorted((ROOT / "nbs").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        cells, changed = [], False
        for cell in nb["cells"]:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            spans = offending(src) if cell["cell_type"] == "code" else None
            if not spans:
                cells.append(cell)
                continue
            found += 1
            print(f"{nb_path.name}: cell {cell.get('id')} mixes imports and code")
            if check:
                cells.append(cell)
                continue
            lines = src.splitlines()
            take = {i for a, b in spans for i in range(a - 1, b)}
            directives = [l for l in lines if l.startswith("#|")]
            imp = "\n".join(directives + [lines[i] for i in sorted(take)])
            rest = "\n".join(l for i, l in enumerate(lines) if i not in take)
            new_id = hashlib.sha1((cell.get("id", "") + imp).encode()).hexdigest()[:8]
            cells.append({"cell_type": "code", "execution_count": None, "id": new_id, "metadata": {}, "outputs": [],
                          "source": imp.splitlines(keepends=True)})
            cell["source"] = rest.lstrip("\n").splitlines(keepends=True)
            cells.append(cell)
            changed = True
        if changed:
            nb["cells"] = cells
            nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if (check and found) else 0


if __name__ == "__main__":
    sys.exit(main())
