"""Write README.md from nbs/index.ipynb (offline stand-in for `nbdev_readme`, which needs Quarto).

Markdown cells are copied; code cells are shown as Python blocks (cells with a `#| hide` directive are left
out, directive lines are dropped) followed by their plain-text output. `--check` exits 1 when README.md differs.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _src(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def render(nb_path=ROOT / "nbs" / "index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        src = _src(cell)
        lines = src.splitlines()
        directives = [l.strip() for l in lines if l.strip().startswith("#|")]
        if any(d.replace(" ", "").startswith("#|hide") for d in directives): continue
        body = "\n".join(l for l in lines if not l.strip().startswith("#|")).strip("\n")
        if cell["cell_type"] == "markdown": out.append(body)
        elif cell["cell_type"] == "code" and body:
            out.append(f"```python\n{body}\n```")
            for o in cell.get("outputs", []):
                txt = o.get("text") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain")
                if txt:
                    txt = "".join(txt) if isinstance(txt, list) else txt
                    out.append("```\n" + txt.rstrip("\n") + "\n```")
    return "\n\n".join(out).strip() + "\n"

if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        if not readme.is_file() or readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`")
        print("README.md is up to date")
    else:
        readme.write_text(text, encoding="utf-8"); print(f"wrote {readme}")
