#!/usr/bin/env bash
# EMR bootstrap action: install bovw and its Python dependencies on every node.
#
#   bootstrap.sh PACKAGE [PYTHON]
#     PACKAGE  s3:// URI of the bovw wheel, or a pip requirement such as "bovw==0.2.0"
#     PYTHON   the interpreter Spark runs (default python3.11; keep it equal to emr.python)
#
# Spark itself comes from the EMR release (emr-spark-8.0.0: Spark 4.0.2, inside the pyspark
# range bovw declares), so pyspark is not installed from PyPI: bovw is installed without
# dependencies, then every dependency it declares except pyspark.
set -euo pipefail

package="${1:?usage: bootstrap.sh <s3://.../bovw-VERSION-py3-none-any.whl | pip requirement> [python]}"
python="${2:-python3.11}"

if ! command -v "$python" >/dev/null 2>&1; then
    sudo dnf install -y "$python"
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
    sudo dnf install -y "$python-pip"
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
if [[ "$package" == s3://* ]]; then
    aws s3 cp --only-show-errors "$package" "$workdir/"
    package="$workdir/${package##*/}"
fi

sudo "$python" -m pip install --quiet --no-deps "$package"

# The dependency list is read from the installed package, so it never drifts from pyproject.
requirements="$workdir/requirements.txt"
"$python" - >"$requirements" <<'PY'
import re
from importlib.metadata import requires

for requirement in requires("bovw") or []:
    name = re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0].lower()
    if "extra ==" in requirement or name == "pyspark":
        continue  # optional extras, and Spark, which the EMR release provides
    print(requirement)
PY
if [[ -s "$requirements" ]]; then
    sudo "$python" -m pip install --quiet -r "$requirements"
fi

"$python" -c "import bovw, cv2, numpy, pyarrow; print('bovw', bovw.__version__, 'ready')"
