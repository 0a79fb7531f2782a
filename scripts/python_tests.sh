#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest) and the example notebook
# (examples/seed_study.ipynb, executed with nbconvert), in the project's virtual environment
# (.venv, or XLT_VENV) where `./setup --torch pip` installed the package. Without that
# environment or package it says so and skips; under CI=true that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${XLT_VENV:-.venv}
py="$venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c 'import xlt' >/dev/null 2>&1; then
  msg="python_tests: no xlt package in $venv (run ./setup --torch pip, docs/python.md)"
  if [ "${CI:-}" = true ]; then
    echo "$msg" >&2
    exit 1
  fi
  echo "$msg: skipped" >&2
  exit 0
fi
export XLT_SHARED=${XLT_SHARED:-$(cd .. && pwd)/shared}
# Run from outside the source tree so that `import xlt` is the installed package.
"$py" -m pytest -q -p no:cacheprovider --rootdir python/tests python/tests "$@"
# The notebook runs offline on the demo models; outputs go to a scratch copy, not the repository.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$venv/bin/jupyter" nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
  --ExecutePreprocessor.kernel_name=python3 --output-dir "$out" examples/seed_study.ipynb
echo "python_tests: examples/seed_study.ipynb executed" >&2
