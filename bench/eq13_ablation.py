"""Eq. 13 plain against divided by the batch's total variance, on the Open Clip Art benchmark (a reduced ablation).

`ssd+cmle-frozen` (CMLE alone on frozen features, so that nothing but Eq. 13 differs) on the benchmark's 3 tasks x
seeds 0-2, with every setting of `bench/openclipart.py`. Two arms: `divided`, the shipped loss
(`FeatureBank.loss(..., relative=True)` in the frozen head's training), and `plain`, the same run with the division
switched off. The frozen family has no setting for it, so this script switches it by wrapping `FeatureBank.loss`
(relative forced to False) for the plain arm only; λ stays 1 in both (so the plain arm's guidance is weaker by the
factor V = 1 - |mean f|^2). Writes `nbs/results/eq13_ablation.json`. Nothing is chosen from it.

    python bench/eq13_ablation.py
"""
import json, os, time, datetime, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np
from cmg_nb.io import atomic_write_text
from scipy import stats

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "eq13_ablation.json"

def main():
    from cmg_nb.core import CMGConfig
    from cmg_nb.openclipart import load_openclipart
    from cmg_nb.experiments import task_split, OPENCLIPART_TASKS
    from cmg_nb.evaluation import make_detector
    from cmg_nb.scoring import evaluate
    import cmg_nb.cmle as C
    real = C.FeatureBank.loss
    t0 = time.time()
    data = load_openclipart(cache_size=96)
    rows = []
    for task in OPENCLIPART_TASKS:
        split = task_split(data, task, seed=0)
        for arm in ("divided", "plain"):
            cache = {}
            C.FeatureBank.loss = real if arm == "divided" else (lambda self, W, idx, f, relative=False: real(self, W, idx, f, relative=False))
            try:
                for seed in (0, 1, 2):
                    det = make_detector("ssd+cmle-frozen", CMGConfig(), seed=seed).fit(split.train, split.valid, stage_cache=cache, progress=False)
                    r = evaluate(det.anomaly_score(split.test), split.test_labels)
                    rows.append(dict(task=task, arm=arm, seed=seed, auroc=float(r["auroc"]), aupr=float(r["aupr"])))
                    print(rows[-1], flush=True)
            finally: C.FeatureBank.loss = real
    per = {a: [np.mean([r["auroc"] for r in rows if r["arm"] == a and r["task"] == t]) for t in OPENCLIPART_TASKS] for a in ("divided", "plain")}
    d = np.array([r["auroc"] for r in rows if r["arm"] == "divided"]) - np.array([r["auroc"] for r in rows if r["arm"] == "plain"])
    ci = lambda v: float(stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v)))
    res = dict(method="ssd+cmle-frozen", tasks=list(OPENCLIPART_TASKS), seeds=[0, 1, 2], runs=rows,
               summary={a: dict(auroc_mean=float(np.mean(v)), auroc_ci95_tasks=ci(v), per_task=dict(zip(OPENCLIPART_TASKS, map(float, v)))) for a, v in per.items()},
               divided_minus_plain=dict(mean=float(d.mean()), paired_ci95=ci(d), n_pairs=len(d)),
               seconds=round(time.time() - t0, 1), date=datetime.date.today().isoformat(), load_average=round(os.getloadavg()[0], 1))
    atomic_write_text(OUT, json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["summary"], indent=1), res["divided_minus_plain"], f"wrote {OUT}")

if __name__ == "__main__": main()
