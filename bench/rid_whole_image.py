"""A cheaper RID for CMER's candidate views (issue 22's scoring speed): can the RID choose the view from the whole image's
frozen features alone, so that scoring encodes the whole image and at most one view instead of all 1 + C' views?

The rule, fixed before any result was seen:
- tasks: the six development tasks of `bench/cmer_margin.py` (scenes-dev, dev-recreation, dev-signs, comp-recreation,
  comp-signs, comp-shapes); split seed 0, fit seed 0;
- the fit: `ssd+cmer-frozen` at the family's defaults (whole_margin 0.5, 18 candidates). Its CMER labels train two RIDs:
  the view RID (the default: a score per candidate view from that view's features) and a whole-image RID (an MLP
  512-256-128 on the whole image's normalised features with one output per candidate, cross-entropy, the view RID's
  optimiser, epochs and keep-best rule on the normal validation images' CMER labels);
- measured on each task's test images: the RID's choice against the object masks (object kept, box IoU, whole image
  chosen; ground truth for measuring only), backbone passes per test image, and the development AUROC of each RID
  with the same trained head (the kNN bank rebuilt from the training images' views that this RID chooses);
- the verdict: the whole-image RID is a candidate for the default if, on the mean over the six tasks, its box IoU is
  at least the view RID's - 0.02 and its AUROC at least the view RID's - 0.5 points. It becomes the default only
  after the benchmark re-runs (Open Clip Art, composite set, demo), which this script does not do.

    python bench/rid_whole_image.py

Writes `nbs/results/rid_whole_image.json`.
"""
import json, time, warnings, sys
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from cmer_margin import dev_fits, arm_scores, save_study

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "rid_whole_image.json"

def whole_image_rid(F0, labels, F0v, vlabels, n_views, cfg):
    "The whole-image RID: MLP on the whole image's normalised features -> one logit per candidate (Eq. 3's cross-entropy)."
    import torch, torch.nn as nn, torch.nn.functional as F
    from cmg_nb.frozen import _fit_best
    from cmg_nb.core import set_seed
    set_seed(cfg.seed)
    X, Xv = (F.normalize(torch.as_tensor(np.asarray(a, np.float32)), dim=-1) for a in (F0, F0v))
    y, yv = (torch.as_tensor(np.asarray(a, np.int64)) for a in (labels, vlabels))
    net = nn.Sequential(nn.Linear(X.shape[1], 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, n_views))
    net = _fit_best(net, lambda b: F.cross_entropy(net(X[b]), y[b]), lambda: F.cross_entropy(net(Xv), yv), len(X), cfg.rid_epochs, cfg)
    with torch.no_grad(): return lambda A: net(F.normalize(torch.as_tensor(np.asarray(A, np.float32)), dim=-1)).argmax(1).numpy()

def main():
    from cmg_nb.frozen import rid_choose
    from cmg_nb.masking import localisation_report
    from cmg_nb.evaluation import evaluate
    t0, per = time.time(), {}
    for task, sp, det, cache, V, Vv, Vt in dev_fits(rid_from="views"):   # the view RID, the default when this study ran
        c, cands, S = det.config, det.candidates(), det.config.image_size
        cm = next(v for k, v in cache.items() if isinstance(k, tuple) and "rid" in k and isinstance(v, dict) and "valid_labels" in v)
        whole = whole_image_rid(V[:, 0], cm["labels"], Vv[:, 0], cm["valid_labels"], V.shape[1], c)
        r = {}
        for name, choose in (("view RID", lambda A: rid_choose(det.rid_, A)), ("whole-image RID", lambda A: whole(A[:, 0]))):
            ch, chv, cht = choose(V), choose(Vv), choose(Vt)
            s = arm_scores(det, V, Vt, ch, cht)
            if name == "view RID": np.testing.assert_allclose(s, det.anomaly_score(sp.test), rtol=1e-4, atol=1e-6)   # the detector's own path
            loc = localisation_report(cht, cands, sp.test.masks_array(S))
            r[name] = dict(valid_accuracy=float((chv == cm["valid_labels"]).mean()), auroc=float(evaluate(s, sp.test_labels)["auroc"]),
                           passes_per_test_image=float(V.shape[1] if name == "view RID" else 1 + (cands.kind.to_numpy()[cht] != "whole").mean()),
                           **{k: round(float(v), 4) for k, v in loc.loc["chosen"].items()})
        r["random"] = {k: round(float(v), 4) for k, v in loc.loc["random"].items()}
        r["chance"] = 1 / V.shape[1]
        per[task] = r
        print(task, {k: (v.get("box_iou"), v.get("auroc")) for k, v in r.items() if isinstance(v, dict)}, f"{time.time() - t0:.0f}s", flush=True)
    arms = ("view RID", "whole-image RID")
    mean = {a: {k: float(np.mean([per[t][a][k] for t in per])) for k in ("box_iou", "object_kept", "whole_chosen", "auroc", "valid_accuracy", "passes_per_test_image")} for a in arms}
    ok = mean[arms[1]]["box_iou"] >= mean[arms[0]]["box_iou"] - 0.02 and mean[arms[1]]["auroc"] >= mean[arms[0]]["auroc"] - 0.005
    save_study(OUT, __doc__, per, t0, mean=mean, whole_image_rid_is_a_candidate=bool(ok))
    print(json.dumps(mean, indent=1), "\nwhole-image RID is a candidate:", ok)

if __name__ == "__main__":
    main()
