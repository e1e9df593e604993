#!/usr/bin/env bash
# Build the documentation as CI does: HTML into docs/_build/html, warnings are errors.
# Needs the package and its docs extra installed: pip install ".[docs]".
# The examples of the gallery (examples/plot_*.py) are executed; extra arguments are passed
# to Sphinx (e.g. -E for a clean build, or -D plot_gallery=0 to skip running the examples).
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND="${MPLBACKEND:-Agg}"
python -m sphinx -W --keep-going -b html "$@" docs docs/_build/html
echo "docs: $(pwd)/docs/_build/html/index.html"
