#!/usr/bin/env bash
# Installs the official `openai` Python client from PyPI into $1 (a folder of the build tree) for
# tests/serve/serve_e2e_test.py. Never fails the build: without network or pip the client's test
# cases skip, saying why.
set -u
target="$1"
if PYTHONPATH="$target" python3 -c 'import openai' 2>/dev/null; then exit 0; fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "install_openai: no pip for python3; the openai client cases will skip" >&2; exit 0
fi
# --target installs into a plain folder (no virtual environment, and not into the system Python).
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target "$target" openai \
  || echo "install_openai: 'pip install openai' failed; the openai client cases will skip" >&2
exit 0
