"""CMER's windows in the from-scratch feature source: does the chosen view hold the object? (issue 22/23: CMER now
exists once, and the from-scratch CMG takes the windows too.) A diagnostic on a development task; it chooses no
setting, and the default of the from-scratch source stays the paper's masks whatever it prints.
- task: scenes-dev (`make_scenes(800, size=64, seed=99)`, normal: circle, square, triangle, diamond), split seed 0,
  fit seed 0 (one seed);
- settings: the demo's from-scratch settings (`DEMO_CONFIG`: 32 px, the small convnet, 6 epochs of E1 and of the
  RID, 8 of E2), method `cmg`; three arms: the paper's masks (M = 4), windows with `whole_margin` 0.5 (the frozen
  family's value) and windows with no margin (plain Eq. 2). With windows the RID has a prior per candidate, as the frozen
  family's view RID has: its first run, without one, could not learn that CMER chose the whole image (margin 0.5:
  the whole image for every training image, the RID's validation accuracy 0.0), since one MLP scores every view alike;
- measured: CMER's labels on the training images (E1, each image's own caption) and the RID's choice on the test
  images, each against the object masks (ground truth for measuring only): object kept, box IoU, whole image chosen,
  beside a random candidate; the RID's agreement with CMER's labels on validation images; and AUROC/AUPR on the
  test split of this development task.

    python bench/scratch_windows.py

Writes `nbs/results/scratch_windows.json`.
"""
import json, time, datetime, warnings
from pathlib import Path
warnings.filterwarnings("ignore")

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "scratch_windows.json"
ARMS = {"masks (paper)": dict(cmer_candidates="masks"), "windows, margin 0.5": dict(cmer_candidates="windows", whole_margin=0.5),
        "windows, no margin": dict(cmer_candidates="windows", whole_margin=0.0)}

def main():
    import resource
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import one_class_split
    from cmg_nb.scenes import make_scenes
    from cmg_nb.pipeline import CMG
    from cmg_nb.inputs import as_image_tensor
    from cmg_nb.rid import rid_select
    from cmg_nb.masking import localisation_report
    from cmg_nb.scoring import evaluate
    from cmg_nb.evaluation import DEMO_CONFIG
    from cmg_nb.io import atomic_write_text
    t0, per = time.time(), {}
    sp = one_class_split(make_scenes(800, size=64, seed=99), ["circle", "square", "triangle", "diamond"], seed=0)
    for arm, kw in ARMS.items():
        t = time.time()
        det = CMG(CMGConfig(**DEMO_CONFIG, **kw, seed=0)).fit(sp.train, sp.valid, progress=False)
        c, cands = det.config, det.candidates()
        xt = as_image_tensor(sp.test, c.image_size)
        r = dict(n_candidates=len(cands), rid_valid_accuracy=round(float(det.info_["rid_valid_accuracy"]), 4), chance=round(1 / len(cands), 4))
        for name, lab, d in (("train (CMER's labels)", det.info_["train_labels"], sp.train), ("test (the RID's choice)", rid_select(det.rid_, xt, c), sp.test)):
            rep = localisation_report(lab, cands, d.masks_array(c.image_size))
            r[name] = {row: {k: round(float(v), 4) for k, v in rep.loc[row].items()} for row in ("chosen", "random", "best candidate")}
        ev = evaluate(det.anomaly_score(sp.test), sp.test_labels)
        r.update(auroc=round(100 * ev["auroc"], 2), aupr=round(100 * ev["aupr"], 2), chance_aupr=round(100 * float(sp.test_labels.mean()), 2), seconds=round(time.time() - t, 1))
        per[arm] = r
        print(arm, {k: r[k] for k in ("auroc", "aupr", "rid_valid_accuracy", "chance", "seconds")},
              {n: (r[n]["chosen"]["object_kept"], r[n]["chosen"]["box_iou"], r[n]["chosen"]["whole_chosen"]) for n in ("train (CMER's labels)", "test (the RID's choice)")}, flush=True)
    res = dict(date=datetime.date.today().isoformat(), task="scenes-dev", seeds=[0], arms=per, seconds=round(time.time() - t0, 1),
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(res, indent=1))
    print(f"wrote {OUT} ({res['seconds']}s, peak {res['peak_rss_mib']} MiB)")

if __name__ == "__main__": main()
