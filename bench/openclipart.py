"""Open Clip Art benchmark: the frozen-feature family against the caption-free detectors, 3 tasks x 3 seeds.

Prints every ablation with both scorers, the targets of issue 22 and whether each is met, the localisation of
cmg-frozen's views against the drawings' alpha (seed 0; ground truth for measuring only), and writes
nbs/results/openclipart.json (the results page and the README read their numbers from it).

    python bench/openclipart.py                 # the benchmark (about 15 minutes on 2 cores)
    python bench/openclipart.py --quick         # 1 task, 1 seed: a smoke run
    python bench/openclipart.py --rerun ssd+cmer-frozen cmg-frozen   # re-run these methods only; the others' runs are kept from the file

Rules fixed before any result was seen: the tasks and caps (`OPENCLIPART_TASKS`, `OPENCLIPART_CAPS`), the split
seed 0, seeds 0-2, every setting of the family (the defaults of `CMGConfig(features="frozen")`), and the from-scratch SSD at the demo's
settings (`DEMO_CONFIG`). Nothing is chosen on the test sets.
"""
import argparse, json, os, sys, time, platform
from pathlib import Path
import numpy as np
from cmg_nb.io import atomic_write_text
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ["ssd-frozen", "ssd+cmer-frozen", "ssd+cmle-frozen", "cmg-frozen"]
BASELINES = ["pretrained-knn", "pretrained-maha"]

def ci95(v):
    "Half-width of the 95% t-interval of the mean of `v` (nan for one value)."
    v = np.asarray(v, float)
    return float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")

def run(tasks, seeds, scratch=True, progress=False, methods=None):
    from cmg_nb.core import CMGConfig
    from cmg_nb.openclipart import load_openclipart
    from cmg_nb.experiments import task_split
    from cmg_nb.evaluation import make_detector, DEMO_CONFIG
    from cmg_nb.scoring import evaluate
    t0 = time.time()
    data = load_openclipart(cache_size=96)
    print(f"data: {data!r} (loaded in {time.time() - t0:.0f}s)", flush=True)
    rows, loc = [], {}
    for task in tasks:
        split = task_split(data, task, seed=0)
        chance = float(split.test_labels.mean())
        print(f"\n== task {task}: {split!r}; AUPR chance level {100 * chance:.1f}", flush=True)
        cache = {}
        for seed in seeds:
            for m in BASELINES + FAMILY + (["ssd"] if scratch else []):
                if methods is not None and m not in methods: continue
                if m in BASELINES and seed != seeds[0]: continue           # deterministic: one fit
                cfg = CMGConfig(**DEMO_CONFIG) if m == "ssd" else CMGConfig()
                t = time.time()
                det = make_detector(m, cfg, seed=seed).fit(split.train, split.valid, stage_cache=cache, progress=progress)
                fit_s = time.time() - t
                if hasattr(det, "scorers_"):
                    G = det.features(split.test)
                    sc = {k: evaluate(s.score(G), split.test_labels) for k, s in det.scorers_.items()}
                    if "knn" in det.scorers_:   # issue 26: Eq. 14 with K = 5 k-means clusters on the same normal training features
                        from cmg_nb.scoring import MahalanobisScorer
                        F = det.scorers_["knn"].state_dict()["train"].numpy()
                        sc["maha5"] = evaluate(MahalanobisScorer(n_clusters=5, seed=seed).fit(F).score(G), split.test_labels)
                else:
                    sc = {"maha": evaluate(det.anomaly_score(split.test), split.test_labels)}
                    if m == "ssd":                                   # the other scorer on the same features (SSD scores unmasked images)
                        from cmg_nb.scoring import KNNScorer
                        knn = KNNScorer(5).fit(det.features(split.train)).score(det.features(split.test))
                        sc["knn"] = evaluate(knn, split.test_labels)
                main = getattr(getattr(det, "config", None), "scorer", None) or "maha"
                r = dict(task=task, seed=int(seed), method=m, auroc=float(sc[main]["auroc"]), aupr=float(sc[main]["aupr"]), chance=chance,
                         scorer=main, fit_seconds=round(fit_s, 1), **{f"auroc_{k}": float(v["auroc"]) for k, v in sc.items()},
                         **{f"aupr_{k}": float(v["aupr"]) for k, v in sc.items()}, rid_valid_accuracy=getattr(det, "info_", {}).get("rid_valid_accuracy"))
                rows.append(r)
                if m == "cmg-frozen" and seed == seeds[0] and getattr(split.test, "masks", None) is not None:   # alpha = ground truth, for measuring only
                    normal = split.test.subset(np.flatnonzero(split.test_labels == 0))
                    loc[task] = dict(seed=int(seed), info={k: v for k, v in det.info_.items() if isinstance(v, (int, float))},
                                     e1_labels_train=det.localisation(split.train, labels=det.cmer_labels_).round(4).to_dict(orient="index"),
                                     rid_test_normal=det.localisation(normal).round(4).to_dict(orient="index"))
                print(f"  {m:16s} seed {seed}: AUROC {100 * r['auroc']:.1f} (knn {100 * r.get('auroc_knn', np.nan):.1f}, "
                      f"maha {100 * r['auroc_maha']:.1f}, maha K=5 {100 * r.get('auroc_maha5', np.nan):.1f})  AUPR {100 * r['aupr']:.1f}  fit {fit_s:.0f}s", flush=True)
    return rows, loc

ORDER = BASELINES + FAMILY + ["ssd"]

def merge_runs(old_runs, new_runs, rerun):
    "The old file's runs of the methods not re-run, and the new runs, ordered as a full run orders them (method, then task and seed as run)."
    rows = [r for r in old_runs if r["method"] not in rerun] + list(new_runs)
    return sorted(rows, key=lambda r: ORDER.index(r["method"]) if r["method"] in ORDER else len(ORDER))

def _commit():
    "The code's git commit (with '+' when the tree has changes), or None outside a git checkout."
    import subprocess
    try:
        h = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return h + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError): return None

def summarize(rows, tasks, seeds):
    "Per method: mean over tasks (each task's mean over seeds) with the 95% interval over tasks; and the targets."
    methods = list(dict.fromkeys(r["method"] for r in rows))
    def per_task(m, key):
        return [np.mean([r[key] for r in rows if r["method"] == m and r["task"] == t]) for t in tasks]
    out = {}
    for m in methods:
        d = dict(auroc_mean=float(np.mean(per_task(m, "auroc"))), auroc_ci95_tasks=ci95(per_task(m, "auroc")),
                 aupr_mean=float(np.mean(per_task(m, "aupr"))), aupr_ci95_tasks=ci95(per_task(m, "aupr")),
                 per_task_auroc={t: float(v) for t, v in zip(tasks, per_task(m, "auroc"))},
                 seed_std_auroc=float(np.mean([np.std([r["auroc"] for r in rows if r["method"] == m and r["task"] == t], ddof=1)
                                               if len(seeds) > 1 and m not in BASELINES else 0. for t in tasks])),
                 fit_seconds=float(np.mean([r["fit_seconds"] for r in rows if r["method"] == m])))
        for k in ("knn", "maha", "maha5"):
            if all(f"auroc_{k}" in r for r in rows if r["method"] == m): d[f"auroc_{k}_mean"] = float(np.mean(per_task(m, f"auroc_{k}")))
        out[m] = d
    chance = float(np.mean([np.mean([r["chance"] for r in rows if r["task"] == t]) for t in tasks]))
    best = max(BASELINES, key=lambda b: out[b]["auroc_mean"]) if all(b in out for b in BASELINES) else None
    targets = {}
    if best and "cmg-frozen" in out:
        base = {t: np.mean([r["auroc"] for r in rows if r["method"] == best and r["task"] == t]) for t in tasks}
        pairs = [r["auroc"] - base[r["task"]] for r in rows if r["method"] == "cmg-frozen"]
        task_d = [out["cmg-frozen"]["per_task_auroc"][t] - base[t] for t in tasks]
        targets["vs_best_caption_free"] = dict(baseline=best, margin=float(np.mean(task_d)), paired_ci95=ci95(pairs), n_pairs=len(pairs),
                                               ci95_tasks=ci95(task_d), target=0.01, met=bool(np.mean(task_d) >= 0.01))   # issue 22: +1 on the mean over tasks
    if "ssd+cmer-frozen" in out and "ssd-frozen" in out:                  # issue 22: CMER does no harm, on every task
        d = {t: out["ssd+cmer-frozen"]["per_task_auroc"][t] - out["ssd-frozen"]["per_task_auroc"][t] for t in tasks}
        targets["cmer_no_harm"] = dict(margin=float(min(d.values())), per_task=d, target=-0.005, met=bool(min(d.values()) >= -0.005))
    if "ssd" in out and "cmg-frozen" in out:
        m = out["cmg-frozen"]["auroc_mean"] - out["ssd"]["auroc_mean"]
        targets["vs_scratch_ssd"] = dict(margin=float(m), target=0.10, met=bool(m >= 0.10))
    return dict(methods=out, chance_aupr=chance, targets=targets)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one task, one seed, no from-scratch SSD (a smoke run)")
    p.add_argument("--dev", action="store_true", help="the development tasks where the design was chosen (nbs/results/openclipart_dev.json)")
    p.add_argument("--out", default=str(ROOT / "nbs/results/openclipart.json"))
    p.add_argument("--rerun", nargs="+", metavar="METHOD", help="re-run only these methods; every other method's runs are kept from --out (same tasks and seeds)")
    a = p.parse_args()
    from cmg_nb.experiments import OPENCLIPART_TASKS, OPENCLIPART_DEV_TASKS, OPENCLIPART_CAPS
    tasks, seeds = (["living"], [0]) if a.quick else (list(OPENCLIPART_DEV_TASKS), [0, 1, 2]) if a.dev else (list(OPENCLIPART_TASKS), [0, 1, 2])
    if a.dev and a.out == p.get_default("out"): a.out = str(ROOT / "nbs/results/openclipart_dev.json")
    t0 = time.time()
    old = json.loads(Path(a.out).read_text()) if a.rerun else None
    if a.rerun and (list(old["tasks"]) != tasks or old["seeds"] != seeds): sys.exit(f"--rerun: {a.out} holds other tasks or seeds")
    rows, loc = run(tasks, seeds, scratch=not (a.quick or a.dev), methods=a.rerun)
    if a.rerun:                                           # the kept methods' runs and the new ones, in the full run's order of methods
        rows = merge_runs(old["runs"], rows, a.rerun)
        loc = loc or old["localisation"]
    rerun = dict(methods=a.rerun, date=time.strftime("%Y-%m-%d"), seconds=round(time.time() - t0),
                 kept_from=old.get("rerun", {}).get("kept_from") or dict(commit=old.get("commit"), date=old.get("date"), seconds=old["seconds"])) if a.rerun else None
    res = dict(summarize(rows, tasks, seeds), runs=rows, localisation=loc, date=time.strftime("%Y-%m-%d"), commit=_commit(), **(dict(rerun=rerun) if rerun else {}), tasks={t: {**OPENCLIPART_TASKS, **OPENCLIPART_DEV_TASKS}[t] for t in tasks}, caps=OPENCLIPART_CAPS,
               seeds=seeds, split_seed=0, seconds=round(time.time() - t0), machine=dict(cpus=os.cpu_count(), python=platform.python_version(),
               load_average=os.getloadavg()[0]))
    from cmg_nb.experiments import benchmark_lines
    print("\n" + benchmark_lines(res))
    if not a.quick:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(a.out, json.dumps(res, indent=1))
        print(f"wrote {a.out} ({res['seconds']} s)")

if __name__ == "__main__":
    sys.exit(main())
