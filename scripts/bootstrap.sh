#!/usr/bin/env bash
# Prepare a fresh Debian machine: system packages (when missing and we can install them),
# the virtualenv and the Python requirements. Usage: scripts/bootstrap.sh requirements.txt [--browser]
set -euo pipefail
cd "$(dirname "$0")/.."
REQS="${1:-requirements.txt}"
WANT_BROWSER="${2:-}"

need=()
dpkg -s default-libmysqlclient-dev >/dev/null 2>&1 || need+=(default-libmysqlclient-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s build-essential >/dev/null 2>&1 || need+=(build-essential)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
if [[ "$WANT_BROWSER" == "--browser" ]] && [[ ! -x /usr/bin/chromium ]]; then need+=(chromium); fi
if ((${#need[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && SUDO="sudo -n"
  if [[ $(id -u) -eq 0 || -n "$SUDO" ]]; then
    echo ">> installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo ">> warning: missing system packages (${need[*]}) and no root; trying anyway" >&2
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  echo ">> creating virtualenv .venv"
  python3 -m venv .venv
fi
stamp=".venv/.installed-$(basename "$REQS")"
if [[ ! -f "$stamp" || "$REQS" -nt "$stamp" || requirements.txt -nt "$stamp" ]]; then
  echo ">> installing $REQS"
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQS"
  touch "$stamp"
fi
