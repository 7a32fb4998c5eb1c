#!/usr/bin/env bash
# Installs infodrop with its test extras and the lightning extra (the plane callback has tests;
# CPU torch 2.13.0) and runs the whole test suite.
# Fashion-MNIST (Debian package dataset-fashion-mnist) is installed when apt-get is usable;
# the tests that need it say so when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "note: could not install dataset-fashion-mnist; its tests will be skipped"
fi
python -m pip install -q --disable-pip-version-check -e ".[test,lightning]"
python -m pytest -q "$@"
