"The `cmg` command end to end: exit codes, one-line errors, files written."
import json, subprocess, sys, shutil
from pathlib import Path
import pytest
from conftest import FIXTURES

def cmg(*args, cwd=None):
    exe = shutil.which("cmg") or str(Path(sys.executable).parent / "cmg")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)

def test_help():
    r = cmg("--help"); assert r.returncode == 0 and "demo" in r.stdout

_HEAVY = ("torch", "fastai", "dcor", "transformers", "sklearn")

def test_parser_imports_nothing_heavy():
    "`cmg --help`/`--version` answer at once: importing the CLI and building its parser loads no heavy module (issue 24)."
    code = ("import sys; from cmg_nb.cli import _parser; p = _parser(); p.parse_args(['fit', '--data', 'd', '--normal-groups', 'a', "
            "'--out', 'm']); print(','.join(m for m in %r if m in sys.modules))" % (_HEAVY,))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"imported before parsing: {r.stdout.strip()}"

def test_version_imports_nothing_heavy():
    code = ("import sys, contextlib, io\nfrom cmg_nb.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            "    for a in (['--help'], ['--version'], ['fit', '--help'], ['score', '--help']):\n"
            "        try: main(a)\n        except SystemExit: pass\n"
            "print(','.join(m for m in %r if m in sys.modules))" % (_HEAVY,))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "", (r.stdout, r.stderr)

def test_score_progress_is_fastprogress_on_stderr(capsys):
    "One progress system (fastprogress, as fit's), drawn on stderr: stdout carries `cmg score`'s rows (issue 24)."
    import inspect, cmg_nb.cli as cli
    assert "tqdm" not in inspect.getsource(cli)
    assert list(cli._stderr_bar(range(3), True)) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert out == "" and "3/3" in err

def test_every_flag_has_help():
    "Every flag of every sub-command says what it does (`-q`, `--split-seed`, ... had no help)."
    import argparse
    from cmg_nb.cli import _parser
    p = _parser()
    subs = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, sp in [("cmg", p), *subs.items()] for a in sp._actions
               if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()]
    assert not missing, f"flags without help: {missing}"

def test_tour_embedded(tmp_path):
    r = cmg("tour", "--out", tmp_path / "t", "-n", "4")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "t/summary.json").read_text())["items"] == 200
    assert (tmp_path / "t/tour.png").stat().st_size > 1000
    assert not list((tmp_path / "t").glob("*.tmp*"))

@pytest.mark.parametrize("args,msg", [
    (["tour", "--data", "/nonexistent/folder"], "data folder not found"),
    (["tour", "--data", FIXTURES / "folder"], "cannot decode image"),
    (["tour", "--data", FIXTURES / "ucm", "--format", "wikipedia"], "trainset_txt_img_cat.list not found"),
])
def test_bad_input_is_one_line(tmp_path, args, msg):
    r = cmg(*args, "--out", tmp_path / "o")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmg: error:") and msg in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()            # nothing half-written
