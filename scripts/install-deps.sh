#!/usr/bin/env bash
# Installs the Debian packages kvaudit builds and tests with. Idempotent, non-interactive.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config
      nlohmann-json3-dev libpcre2-dev libicu-dev libcli11-dev libfmt-dev
      libcld2-dev libgtest-dev libgmock-dev libbenchmark-dev libomp-dev libeigen3-dev
      clang libclang-rt-14-dev  # the sanitizer stage and libFuzzer (scripts/test.sh, scripts/fuzz.sh)
      libcpp-httplib-dev  # serve, eval --endpoint
      python3 python3-pip unzip ca-certificates  # pip: fetch-models.sh, the openai client of tests/serve
      chromium fonts-dejavu-core)  # report.html browser test (tests/report), its font
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
