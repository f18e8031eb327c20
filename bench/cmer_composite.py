"""CMER's windows on the composite development set (issue 22): does CMG beat the caption-free detector on the same features,
and does CMER's chosen view keep the object?

Rules fixed before any result was seen: the tasks (`COMPOSITE_TASKS` in `01d_composites`: comp-recreation, comp-signs,
comp-shapes; anomalies are every other category), their caps (600 normal drawings, 600 anomalies), seeds 0-2, the
frozen family's defaults (`CMGConfig(features="frozen")`: 96 px, candidates "windows" with M = 4 and a 3 x 3 window grid). The target
(cmg-frozen >= best caption-free + 5 AUROC on the mean over tasks) is the issue's. Nothing is chosen from these numbers.
Localisation uses the pasted drawings' masks (ground truth, for measuring only): CMER's labels on the training images
and the RID's choice on the test images, each against a random candidate, the best candidate and the oracle crop.

    python bench/cmer_composite.py [--tasks comp-signs] [--seeds 0]
    python bench/cmer_composite.py --rerun ssd+cmer-frozen cmg-frozen   # re-run these only; the others' runs are kept from the file

Writes `nbs/results/cmer_composite.json`.
"""
import argparse, json, time, datetime, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "cmer_composite.json"
METHODS = ("pretrained-knn", "pretrained-maha", "ssd-frozen", "ssd+cmer-frozen", "cmg-frozen")
FREE = ("pretrained-knn", "pretrained-maha", "ssd-frozen")

def paired(d):
    "Mean and 95% t-interval half-width of paired differences (the library's `summarize_runs`)."
    import pandas as pd
    from cmg_nb.scoring import summarize_runs
    r = summarize_runs(pd.DataFrame(dict(margin=np.asarray(d, float))), metrics=("margin",), by=[]).iloc[0]
    return float(r["margin_mean"]), float(r["margin_ci95"])

def main():
    from cmg_nb.core import CMGConfig
    from cmg_nb.composites import COMPOSITE_TASKS, composite_split
    from cmg_nb.evaluation import run_methods
    from cmg_nb.io import atomic_write_text
    ap = argparse.ArgumentParser(); ap.add_argument("--tasks", nargs="*", default=list(COMPOSITE_TASKS)); ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--rerun", nargs="+", metavar="METHOD", help="re-run only these methods; every other method's runs are kept from the file (same tasks and seeds)")
    a = ap.parse_args()
    old = json.loads(OUT.read_text()) if a.rerun else None
    if a.rerun and (list(old["tasks"]) != a.tasks or old["seeds"] != a.seeds): raise SystemExit(f"--rerun: {OUT} holds other tasks or seeds")
    t0, rows, loc, chance = time.time(), [r for r in old["runs"] if r["method"] not in a.rerun] if a.rerun else [], {}, {}
    for task in a.tasks:
        split = composite_split(task, seed=0)
        chance[task] = float(np.mean(split.test_labels))            # AUPR of a random score: the share of anomalies
        runs, models = run_methods(split, a.rerun or METHODS, a.seeds, CMGConfig(), progress=False, keep_models=True)
        for r in runs.to_dict("records"): rows.append(dict(task=task, **{k: r[k] for k in ("method", "seed", "auroc", "aupr", "fit_seconds")}))
        det = models[("cmg-frozen", a.seeds[0])]
        loc[task] = dict(seed=a.seeds[0], info={k: v for k, v in det.info_.items() if isinstance(v, (int, float))},
                         e1_labels_train=det.localisation(split.train, labels=det.cmer_labels_).round(4).to_dict(orient="index"),
                         rid_test=det.localisation(split.test).round(4).to_dict(orient="index"),
                         rid_test_normal=det.localisation(split.test.subset(np.flatnonzero(split.test_labels == 0))).round(4).to_dict(orient="index"))
        print(task, runs.groupby("method").auroc.mean().round(3).to_dict(), f"{time.time() - t0:.0f}s", flush=True)
    import pandas as pd
    df = pd.DataFrame(rows)
    per = df.groupby(["method", "task"]).auroc.mean().unstack()
    best_free = per.loc[list(FREE)].mean(1).idxmax()                  # the caption-free method with the best mean over tasks
    pair = df.pivot_table(index=["task", "seed"], columns="method", values="auroc")
    margin, ci = paired(pair["cmg-frozen"] - pair[best_free])
    res = dict(date=datetime.date.today().isoformat(), tasks={t: COMPOSITE_TASKS[t] for t in a.tasks}, seeds=a.seeds, caps=dict(max_normal=600, max_anomalies=600),
               methods={m: dict(auroc_mean=float(df[df.method == m].auroc.mean()), aupr_mean=float(df[df.method == m].aupr.mean()),
                                per_task_auroc={t: float(per.loc[m, t]) for t in a.tasks}) for m in METHODS},
               chance_aupr=float(np.mean(list(chance.values()))), chance_aupr_per_task=chance, best_caption_free=best_free, cmg_minus_best_free=dict(auroc=margin, paired_ci95=ci, n_pairs=int(len(pair))),
               target=dict(rule="cmg-frozen >= best caption-free + 5 AUROC points (mean over tasks x seeds)", met=bool(margin >= 0.05)),
               localisation=loc, runs=rows, seconds=round(time.time() - t0, 1),
               **(dict(rerun=dict(methods=a.rerun, kept_from=old.get("rerun", {}).get("kept_from") or dict(date=old["date"], seconds=old["seconds"]))) if a.rerun else {}))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("best_caption_free", "cmg_minus_best_free", "target", "seconds")}, indent=1))

if __name__ == "__main__":
    main()
