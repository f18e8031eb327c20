"The README's and the results pages' figures are the saved files' figures (the prose may not drift from the JSON)."
import json
import pytest
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

def _nb_sources(name):
    return ["".join(c["source"]) for c in json.loads((ROOT / "nbs" / name).read_text())["cells"]]

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
    for key in ("n2500_whole_rid", "n2500_channels_last"):          # the default (whole-image RID) and the view RID
        f = sp[key]
        assert f"fit 2,500 images: {f['fit_seconds']} s" in readme and f"= {f['scoring_over_bare']}x the bare backbone" in readme, key
    assert f"peak memory {sp['n10000']['peak_rss_gb']} GB" in readme

def test_benchmark_summary_matches_runs():
    "Each method's mean over tasks is the mean of its tasks' means over seeds (recomputed here from the runs)."
    import numpy as np
    res = json.loads((RES / "openclipart.json").read_text())
    for m, d in res["methods"].items():
        per_task = [np.mean([r["auroc"] for r in res["runs"] if r["method"] == m and r["task"] == t]) for t in res["tasks"]]
        assert abs(d["auroc_mean"] - np.mean(per_task)) < 1e-12, m


# --- the paper's Tables I and II (nbs/results/paper.json) and our columns beside them ---

PAPER_MD = ROOT.parent / "shared/paper/cmg-paper.md"     # the paper's text, where a checkout has it beside the repo

def _paper(): return json.loads((RES / "paper.json").read_text())

def test_paper_relative_gains_recomputed():
    "The paper's 6.84%, 16.81% and 9.21% are CMG / SSD - 1 of its Table I AUROCs (recomputed here by hand, not by the library)."
    from cmg_nb.experiments import paper_gains
    p = _paper()
    t = p["table1"]
    by_hand = {"class-coco": 81.69 / 76.46 - 1, "ucm": 99.71 / 85.36 - 1, "wikipedia": 65.59 / 60.06 - 1}
    for d, g in by_hand.items():
        assert (t[d]["cmg"]["auroc"], t[d]["ssd"]["auroc"]) == {"class-coco": (81.69, 76.46), "ucm": (99.71, 85.36), "wikipedia": (65.59, 60.06)}[d]
        assert round(100 * g, 2) == p["relative_gain_cmg_over_ssd_auroc_printed"][d]
        assert abs(paper_gains(p)[d] - 100 * g) < 1e-9
    assert p["relative_gain_cmg_over_ssd_auroc_printed"] == {"class-coco": 6.84, "ucm": 16.81, "wikipedia": 9.21}
    for d in t: assert p["table2"][d]["ssd"] == t[d]["ssd"] and p["table2"][d]["cmg"] == t[d]["cmg"]   # shared rows

def test_paper_json_matches_the_paper_text():
    "Every value of Tables I and II in paper.json is the one printed in the paper (when its text is beside the repo)."
    import re, pytest
    if not PAPER_MD.is_file(): pytest.skip("the paper's text is not beside this checkout")
    text = PAPER_MD.read_text()
    names = {"Class-COCO": "class-coco", "UCM caption": "ucm", "Wikipedia": "wikipedia"}
    meth = {"SSD": "ssd", "CMDA": "cmda", "SHE": "she", "CMG": "cmg", "SSD+ER": "ssd+cmer", "SSD+LE": "ssd+cmle"}
    p = _paper()
    for table, start in (("table1", "TABLE I"), ("table2", "TABLE II")):
        block = text[text.index(start + "  \n"):]; block = block[:block.index("\n\n", block.index("Wikipedia"))]
        ds, seen = None, 0
        for line in block.splitlines():
            cols = line.split("\t")
            if len(cols) != 4 or cols[2] == "AUROC": continue
            ds = names.get(cols[0], ds)
            nums = lambda s: [float(v) for v in re.findall(r"\d+\.\d+", s)]
            a, b = nums(cols[2]), nums(cols[3])
            r = p[table][ds][meth[cols[1]]]
            assert [r["auroc"]] + ([r["auroc_ci95"]] if r["auroc_ci95"] is not None else []) == a, (table, ds, cols)
            assert [r["aupr"]] + ([r["aupr_ci95"]] if r["aupr_ci95"] is not None else []) == b, (table, ds, cols)
            seen += 1
        assert seen == 12, (table, seen)

def _ours():
    tables = json.loads((RES / "tables.json").read_text())
    oca = json.loads((RES / "openclipart.json").read_text())
    return tables, {"scenes, from scratch": tables["results"],
                    "Open Clip Art, frozen": {m.removesuffix("-frozen"): v for m, v in oca["methods"].items() if m.endswith("-frozen")}}

def test_paper_columns_in_readme_and_results_page():
    "The side-by-side tables and the relative gains, rendered from the JSON, are what the README and the results page show."
    from cmg_nb.experiments import paper_table, gain_lines
    p, (_, ours) = _paper(), _ours()
    readme, page = (ROOT / "README.md").read_text(), _nb_outputs("16_results.ipynb")
    for t in ("table1", "table2"):
        assert paper_table(p, ours, t).to_string() in readme and paper_table(p, ours, t).to_string() in page, t
        assert paper_table(p, ours, t, "aupr").to_string() in page, t
    assert gain_lines(p, ours) in readme and gain_lines(p, ours) in page
    for stale in ("could not be found", "did not find them", "leave the paper's column out"):   # the old "the paper's tables are missing"
        assert stale not in readme and stale not in "\n".join(_nb_sources("16_results.ipynb")), stale

def test_m_ablation_and_rid_baselines_are_the_files():
    "The M = 4 / M = 9 figures and the RID's baselines in the README are the saved runs'; ssd+cmer and cmg were rerun at M = 9."
    import numpy as np
    from cmg_nb.experiments import results_frame
    tables, _ = _ours()
    m9 = json.loads((RES / "ablation_m9.json").read_text())
    assert (tables["config"]["n_regions"], m9["config"]["n_regions"]) == (4, 9) and set(m9["results"]) == {"cmg", "ssd+cmer"}
    assert {k: v for k, v in tables["config"].items() if k != "n_regions"} == {k: v for k, v in m9["config"].items() if k != "n_regions"}
    readme = (ROOT / "README.md").read_text()
    line = "AUROC % at M = 4 / M = 9: " + ", ".join(f"{m} {results_frame({m: tables['results'][m]}).iloc[0, 0]} / {results_frame({m: m9['results'][m]}).iloc[0, 0]}" for m in ("ssd+cmer", "cmg"))
    assert line in readme
    for t in (tables, m9):
        g = [r for r in t["rid"] if r["method"] == "cmg"]
        acc = np.mean([r["rid_valid_accuracy"] for r in g]); maj = np.mean([r["majority_rule_valid"] for r in g])
        assert f"RID accuracy at M = {t['config']['n_regions']}: {acc:.3f} (chance {1 / t['config']['n_regions']:.3f}, always the most frequent training region {maj:.3f}" in readme
        for r in g:   # the majority rule's accuracy from the saved label counts: the training mode's share of the validation labels
            assert abs(r["majority_train"] - max(r["train_labels"]) / sum(r["train_labels"])) < 1e-12

def test_results_page_reads_its_json():
    "The results page's tables are the renderings of its JSON files (Table I/II, the M ablation, beyond the paper)."
    import pandas as pd
    from cmg_nb.experiments import results_frame
    tables, _ = _ours()
    res = tables["results"]
    page = _nb_outputs("16_results.ipynb")
    assert results_frame({m: res[m] for m in ("ssd", "cmda", "she", "cmg")}).drop(columns="uses labels").to_string() in page
    assert results_frame({m: res[m] for m in ("ssd", "ssd+cmer", "ssd+cmle", "cmg")}).drop(columns="uses labels").to_string() in page
    beyond = RES / "beyond.json"
    if beyond.is_file():
        b = json.loads(beyond.read_text())
        bres = {**{m: res[m] for m in ("ssd", "cmg")}, **b["results"]}
        for m, r in bres.items(): assert results_frame({m: r}).iloc[0, 0] in page, m

# The per-seed AUROC of the caption-free baselines on frozen features before CMER's windows (nbs/results/demo_frozen.json at
# commit bb83f64): they never see CMER, so the windows must leave them exactly where they were.
DEMO_UNCHANGED = {
    'pretrained-knn': [0.755284858157693, 0.755284858157693, 0.755284858157693],
    'pretrained-maha': [0.7727158929102317, 0.7727158929102317, 0.7727158929102317],
}

def test_demo_recorded():
    "The demo's file: caption-free baselines as before the windows, every summary recomputed from the per-seed values, the margin and verdict from them."
    import numpy as np, scipy.stats
    from cmg_nb.evaluation import verdict
    demo = json.loads((RES / "demo_frozen.json").read_text())
    assert demo["config"]["n_regions"] == 4
    for m, auroc in DEMO_UNCHANGED.items(): assert demo["results"][m]["auroc"] == auroc, m
    for m, r in demo["results"].items():
        for k in ("auroc", "aupr"):
            v = r[k]
            assert abs(r[f"{k}_mean"] - np.mean(v)) < 1e-12, (m, k)
            ci = scipy.stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))
            assert abs(r[f"{k}_ci95"] - ci) < 1e-12, (m, k)
    c = demo["cmg_frozen_minus_caption_free"]
    d = np.asarray(demo["results"]["cmg-frozen"]["auroc"]) - np.asarray(demo["results"][c["baseline"]]["auroc"])
    assert np.allclose(c["per_seed"], d, atol=1e-12) and abs(c["auroc_margin"] - d.mean()) < 1e-12
    assert c["baseline"] == max(("pretrained-knn", "pretrained-maha", "ssd-frozen"), key=lambda m: demo["results"][m]["auroc_mean"])
    assert demo["verdict"] == verdict(c)
    assert demo["verdict"] in (ROOT / "README.md").read_text()

def test_eq13_ablation_divided_arm_is_the_benchmark():
    "The ablation's divided arm reproduces the benchmark's ssd+cmle-frozen runs exactly; its summary is recomputed from its runs."
    import numpy as np
    e = json.loads((RES / "eq13_ablation.json").read_text())
    bench = {(r["task"], r["seed"]): r["auroc"] for r in json.loads((RES / "openclipart.json").read_text())["runs"] if r["method"] == "ssd+cmle-frozen"}
    div = [r for r in e["runs"] if r["arm"] == "divided"]
    assert len(div) == 9 and all(abs(r["auroc"] - bench[(r["task"], r["seed"])]) < 1e-12 for r in div)
    for arm, s in e["summary"].items():
        per = [np.mean([r["auroc"] for r in e["runs"] if r["arm"] == arm and r["task"] == t]) for t in e["tasks"]]
        assert abs(s["auroc_mean"] - np.mean(per)) < 1e-12
    d = np.array([r["auroc"] for r in div]) - np.array([r["auroc"] for r in e["runs"] if r["arm"] == "plain"])
    assert abs(e["divided_minus_plain"]["mean"] - d.mean()) < 1e-12
    page = _nb_outputs("16_results.ipynb")
    dd = e["divided_minus_plain"]
    assert f"divided - plain: {100 * dd['mean']:+.2f} points (paired 95% interval ±{100 * dd['paired_ci95']:.2f}" in page

@pytest.mark.parametrize("where", ["repository root", "nbs"])
def test_readme_printed_blocks_match_their_files(where):
    "Every code block of the README (the docs index) runs as written from the repository root (the README) and from nbs/ (the docs), and each block that reads a results file prints exactly what the README shows."
    import io, os, contextlib
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    readme, g, cwd, checked = (ROOT / "README.md").read_text(), {}, os.getcwd(), 0
    os.chdir(ROOT if where == "repository root" else ROOT / "nbs")
    try:
        for c in nb["cells"]:
            src = "".join(c["source"])
            if c["cell_type"] != "code" or "nbdev_export" in src: continue
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf): exec(src, g)
            if "load_result(" in src and not src.startswith("#| hide") and buf.getvalue().strip():
                assert buf.getvalue().strip() in readme, src[:120]; checked += 1
    finally: os.chdir(cwd)
    assert checked >= 4, checked

def test_whole_image_rid_study_recomputed():
    "bench/rid_whole_image.py's file: the six development tasks, each mean recomputed from the tasks, and the verdict from its pre-written rule."
    import numpy as np
    r = json.loads((RES / "rid_whole_image.json").read_text())
    assert r["tasks"] == ["scenes-dev", "dev-recreation", "dev-signs", "comp-recreation", "comp-signs", "comp-shapes"]
    arms = ("view RID", "whole-image RID")
    for a in arms:
        for k, v in r["mean"][a].items(): assert abs(v - np.mean([r["per_task"][t][a][k] for t in r["tasks"]])) < 1e-12, (a, k)
        for t in r["tasks"]: assert r["per_task"][t][a]["passes_per_test_image"] <= (18 if a == "view RID" else 2)
    v, w = r["mean"]["view RID"], r["mean"]["whole-image RID"]
    assert r["whole_image_rid_is_a_candidate"] == (w["box_iou"] >= v["box_iou"] - 0.02 and w["auroc"] >= v["auroc"] - 0.005)
    doc = " ".join((ROOT / "bench" / "rid_whole_image.py").read_text().split())
    assert " ".join(r["rule"].split()) in doc and "box IoU is at least the view RID's - 0.02" in doc   # the file's rule is the script's
