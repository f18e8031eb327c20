"""How fast `cmg --help` and `cmg --version` answer (issue 24's target: <= 1.5 s on 2 cores), whole process, wall clock.

    python bench/cli_startup.py            # the median of 5 runs of each, printed
    python bench/cli_startup.py --runs 9

Each run is a fresh `python -m cmg_nb ...` process (the `cmg` script does the same), so the time includes the
interpreter's start and every import. `tests/test_cli.py::test_parser_imports_nothing_heavy` is the check that keeps
it fast (no torch, fastai, scikit-learn, dcor or transformers before argparse has parsed); this script prints the number.
"""
import argparse, statistics, subprocess, sys, time

def wall(args:list)->float:
    "Seconds one `python -m cmg_nb ARGS` process takes, start to exit."
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cmg_nb", *args], check=True, capture_output=True)
    return time.perf_counter() - t

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each command (default: 5)")
    p.add_argument("--target", type=float, default=1.5, help="seconds not to exceed (default: 1.5)")
    a = p.parse_args()
    ok = True
    for args in (["--help"], ["--version"], ["fit", "--help"]):
        ts = [wall(args) for _ in range(a.runs)]
        med = statistics.median(ts); ok &= med <= a.target
        print(f"cmg {' '.join(args):12s} median {med:.2f} s (min {min(ts):.2f}, max {max(ts):.2f}, {a.runs} runs)"
              f"{'' if med <= a.target else f'  over the {a.target} s target'}")
    return 0 if ok else 1

if __name__ == "__main__": sys.exit(main())
