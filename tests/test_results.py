"The README's and the results pages' figures are the saved files' figures (the prose may not drift from the JSON)."
import json
from conftest import ROOT
from cmg_nb.experiments import benchmark_lines, OPENCLIPART_TASKS
from cmg_nb.evaluation import results_table, margin_line

RES = ROOT / "nbs/results"

def _nb_outputs(name):
    nb = json.loads((ROOT / "nbs" / name).read_text())
    out = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            t = o.get("text") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain")
            if t: out.append("".join(t) if isinstance(t, list) else t)
    return "\n".join(out)

def test_benchmark_table_in_readme_and_pages():
    res = json.loads((RES / "openclipart.json").read_text())
    assert res["tasks"] == OPENCLIPART_TASKS and res["seeds"] == [0, 1, 2]
    table = benchmark_lines(res)
    assert table in (ROOT / "README.md").read_text()
    for page in ("21_benchmark.ipynb", "16_results.ipynb"): assert table in _nb_outputs(page), page

def test_demo_and_speed_in_readme():
    readme = (ROOT / "README.md").read_text()
    demo = json.loads((RES / "demo_frozen.json").read_text())
    assert results_table(demo["results"]) in readme and margin_line(demo["cmg_frozen_minus_caption_free"]) in readme
    sp = json.loads((RES / "frozen_speed.json").read_text())
    assert f"fit 2,500 images: {sp['n2500']['fit_seconds']} s" in readme and f"peak memory {sp['n10000']['peak_rss_gb']} GB" in readme

def test_benchmark_summary_matches_runs():
    "Each method's mean over tasks is the mean of its tasks' means over seeds (recomputed here from the runs)."
    import numpy as np
    res = json.loads((RES / "openclipart.json").read_text())
    for m, d in res["methods"].items():
        per_task = [np.mean([r["auroc"] for r in res["runs"] if r["method"] == m and r["task"] == t]) for t in res["tasks"]]
        assert abs(d["auroc_mean"] - np.mean(per_task)) < 1e-12, m
