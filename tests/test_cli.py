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
