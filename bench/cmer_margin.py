"""Choosing `whole_margin` (issue 22): how much better must a window match the caption than the whole image before
CMER's Eq. 2 gives up the whole image?

The rule, fixed before any result was seen:
- tasks: development tasks only. The scenes' development draw (`make_scenes(800, size=64, seed=99)`, the four shapes
  normal, as in `20_frozen`), Open Clip Art's `OPENCLIPART_DEV_TASKS` (dev-recreation, dev-signs) and the composite
  development set's `COMPOSITE_TASKS` (comp-recreation, comp-signs, comp-shapes); split seed 0, fit seed 0;
- the fit: `ssd+cmer-frozen` at the family's defaults with `whole_margin=0` (its E1 is the one `cmg-frozen` trains);
- the grid: 0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5 and 2 (cosines lie in [-1, 1], so 2 always keeps the whole image);
- the criterion: CMER's labels on the training images, rated against the object masks (ground truth, for measuring
  only): the mean over the six tasks of the IoU of the kept view with the object's box. The largest wins; a tie
  (within 0.005) goes to the smaller margin. No AUROC, and no test image, is read.

    python bench/cmer_margin.py

Writes `nbs/results/cmer_margin.json`.
"""
import json, time, datetime, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "cmer_margin.json"
GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 2.0)

def splits():
    "The development tasks' splits, one at a time (name, split)."
    from cmg_nb.data import one_class_split
    from cmg_nb.scenes import make_scenes
    from cmg_nb.openclipart import load_openclipart
    from cmg_nb.experiments import task_split, OPENCLIPART_DEV_TASKS
    from cmg_nb.composites import COMPOSITE_TASKS, composite_split
    yield "scenes-dev", one_class_split(make_scenes(800, size=64, seed=99), ["circle", "square", "triangle", "diamond"], seed=0)
    data = load_openclipart(cache_size=96)
    for t in OPENCLIPART_DEV_TASKS: yield t, task_split(data, t, seed=0)
    for t in COMPOSITE_TASKS: yield t, composite_split(t, seed=0)

def dev_fits(**kw):
    "Each development task's default `ssd+cmer-frozen` fit (split seed 0, fit seed 0): (task, split, detector, its stage cache, and the cached views (N, 1 + C', D) of the training, validation and test images)."
    from cmg_nb.core import CMGConfig
    from cmg_nb.frozen import frozen_method
    for task, sp in splits():
        cache = {}
        det = frozen_method("ssd+cmer-frozen", CMGConfig(), seed=0, **kw).fit(sp.train, sp.valid, stage_cache=cache, progress=False)
        yield (task, sp, det, cache, *(det._view_features(d.to_array(det.config.image_size), cache) for d in (sp.train, sp.valid, sp.test)))

def arm_scores(det, V, Vt, ch, cht):
    "Test scores of one way of choosing views: the fitted head, with the kNN bank rebuilt from the training images' views chosen by `ch` (test views: `cht`)."
    from cmg_nb.frozen import score_features
    from cmg_nb.scoring import KNNScorer
    bank = KNNScorer(det.config.knn_k).fit(score_features(V[np.arange(len(V)), ch], det.head_))
    return bank.score(score_features(Vt[np.arange(len(Vt)), cht], det.head_))

def save_study(out:Path, doc:str, per:dict, t0:float, **fields)->dict:
    "Write a development study's JSON: the date, the rule quoted from the script's docstring, its tasks, `fields`, the per-task figures and the seconds."
    from cmg_nb.io import atomic_write_text
    res = dict(date=datetime.date.today().isoformat(), rule=doc.split("The rule, fixed before any result was seen:")[1].split("    python")[0].strip(),
               tasks=list(per), **fields, per_task=per, seconds=round(time.time() - t0, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=1))
    return res

def main():
    from cmg_nb.core import CMGConfig
    from cmg_nb.frozen import frozen_method
    from cmg_nb.masking import cmer_choice, localisation_report
    t0, per = time.time(), {}
    for task, sp in splits():
        det = frozen_method("ssd+cmer-frozen", CMGConfig(), seed=0, whole_margin=0.0).fit(sp.train, sp.valid, progress=False)
        cands, masks = det.candidates(), sp.train.masks_array(det.config.image_size)
        whole = (cands.kind == "whole").to_numpy()
        gap = det.cmer_scores_[:, ~whole].max(1) - det.cmer_scores_[:, whole][:, 0]
        rows = {}
        for m in GRID:
            r = localisation_report(cmer_choice(det.cmer_scores_, whole, m), cands, masks)
            rows[str(m)] = {k: round(float(v), 4) for k, v in r.loc["chosen"].items()}
        best = localisation_report(np.zeros(len(masks), np.int64), cands, masks).loc["best candidate"]
        per[task] = dict(n_train=int(len(masks)), grid=rows, best_candidate_iou=round(float(best["box_iou"]), 4),
                         gap_quantiles={q: round(float(np.quantile(gap, q)), 4) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
                         e1_R1=det.info_["e1_R1"], e1_chance_R1=det.info_["e1_chance_R1"])
        print(task, {m: rows[str(m)]["box_iou"] for m in GRID}, f"{time.time() - t0:.0f}s", flush=True)
    mean = {str(m): float(np.mean([per[t]["grid"][str(m)]["box_iou"] for t in per])) for m in GRID}
    top = max(mean.values())
    chosen = min(m for m in GRID if mean[str(m)] >= top - 0.005)
    save_study(OUT, __doc__, per, t0, grid=list(GRID), mean_box_iou=mean, chosen=chosen)
    print("mean box IoU:", {m: round(v, 4) for m, v in mean.items()}, "-> whole_margin =", chosen)

if __name__ == "__main__":
    main()
