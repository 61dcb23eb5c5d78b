#!/usr/bin/env bash
# Creates the host Python environment the agent/driver tests use: <repo>/.venv-driver
# with IPython, matplotlib, NumPy and msgpack. Idempotent and quiet; safe to rerun.
# Override the interpreter with PYTHON=/path/to/python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-driver"
python="${PYTHON:-python3}"
packages=(ipython matplotlib matplotlib-inline numpy msgpack)

if [[ -x "$venv/bin/python3" ]] &&
    "$venv/bin/python3" -c 'import IPython, matplotlib, matplotlib_inline, numpy, msgpack' 2>/dev/null; then
    exit 0
fi

echo "python-test-env: creating $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
"$venv/bin/python3" -c 'import IPython, matplotlib, matplotlib_inline, numpy, msgpack' 
echo "python-test-env: ready ($("$venv/bin/python3" -c 'import IPython; print("IPython", IPython.__version__)'))" >&2
