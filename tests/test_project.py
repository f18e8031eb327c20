"The project's promises: README opens with the two commands, CI runs the same test command, README is generated."
import re, subprocess, sys
from conftest import ROOT

def test_readme_opens_with_two_commands():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```sh\n(.*?)```", text, re.S)
    assert m and text.index(m.group(0)) < 40, "README must open with the commands block"
    cmds = [l.split("#")[0].strip() for l in m.group(1).splitlines() if l.strip()]
    assert cmds == ["bash tools/dev.sh demo", "bash tools/dev.sh test"]
    assert "bash tools/dev.sh test" in (ROOT / ".ci/run").read_text()

def test_readme_in_sync_with_index():
    r = subprocess.run([sys.executable, str(ROOT / "tools/make_readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout

def test_wheel_carries_the_license_and_the_tested_python(tmp_path):
    "The settings declare Apache-2.0: the wheel must carry the LICENSE; python_requires must match what is tested (3.10+)."
    import zipfile, email
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    whl = next(tmp_path.glob("cmg_nb-*.whl"))
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        lic = [n for n in names if n.endswith("LICENSE")]
        assert lic and "Apache License" in z.read(lic[0]).decode()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith("METADATA"))))
    assert meta["Requires-Python"] == ">=3.10"
    assert sys.version_info >= (3, 10)

def test_bench_scripts_import_names_that_exist():
    "Every `from cmg_nb.X import a, b` in bench/ names something the package has (a rename once broke bench/scenes_tables.py unseen)."
    import ast, importlib
    missing = []
    for f in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cmg_nb"):
                mod = importlib.import_module(node.module)
                missing += [f"{f.name}: {node.module}.{a.name}" for a in node.names if not hasattr(mod, a.name)]
    assert not missing, missing

def test_star_import_shadows_nothing():
    "`from cmg_nb.all import *` must not let one module's public name hide another's (analysis.cmer_labels once hid frozen.cmer_labels)."
    import importlib, re
    mods = re.findall(r"^from \.(\w+) import \*", (ROOT / "cmg_nb" / "all.py").read_text(), re.M)
    owner, clashes = {}, []
    for m in mods:
        mod = importlib.import_module(f"cmg_nb.{m}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if name in owner and owner[name][1] is not obj: clashes.append(f"{name}: {owner[name][0]} and {m}")
            owner.setdefault(name, (m, obj))
    assert not clashes, clashes
