#!/usr/bin/env bash
# Virtual environment for bench/pandas_path.py: creates bench/.venv if missing, installs pandas
# from PyPI into it, and prints the path of its python.
#   PY=$(bench/pandas_venv.sh) && "$PY" bench/pandas_path.py LOGS_DIR
set -euo pipefail
VENV="$(cd "$(dirname "$0")" && pwd)/.venv"
PANDAS=pandas==2.2.3   # has CPython 3.11 wheels (numpy comes with it)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
"$VENV/bin/python" -c "import pandas; assert pandas.__version__ == '${PANDAS#pandas==}'" 2>/dev/null || "$VENV/bin/python" -m pip install -q "$PANDAS" >&2
echo "$VENV/bin/python"
