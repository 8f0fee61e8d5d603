#!/usr/bin/env bash
# deploy_check.sh - validates deploy/ (Dockerfile, compose.yaml, k8s/) as far
# as a machine without a Docker engine can:
#   1. `docker-compose config` (Debian's docker-compose 1.29) accepts
#      deploy/compose.yaml, and its variables move --threads and the CPU
#      limit together;
#   2. deploy_check.py: the manifests parse as YAML, their kinds and fields
#      agree, every flag is a real flag of the binary (from its --help), one
#      gRPC port everywhere, TLS flags and their secrets wherever saturnd and
#      the workers run, the Dockerfile's stages, users and packages, and
#      .dockerignore lets in every file the meson build reads.
# Never runs `docker build` (no engine here).
#
#   deploy_check.sh SOURCE_ROOT BUILD_ROOT SATURND SATURN_WORKER SATURN
# (meson passes its build dir and the built binaries). Exit 0 pass, 1 fail,
# 77 skipped.
set -u
ROOT=$1 BUILD=$2 SATURND=$3 WORKER=$4 CLI=$5
PY=/usr/bin/python3
if ! command -v docker-compose >/dev/null; then
    echo "SKIP: docker-compose is not installed (Debian package docker-compose)"
    exit 77
fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
    echo "SKIP: $PY cannot import yaml (Debian package python3-yaml)"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/saturn-deploy.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0

# docker-compose in a clean environment: only deploy/.env's defaults apply.
compose() {
    env -i PATH="$PATH" HOME="$T" "$@" docker-compose -f "$ROOT/deploy/compose.yaml" config \
        2>"$T/compose.err"
}

if compose >"$T/compose.yaml"; then
    echo "ok - docker-compose -f deploy/compose.yaml config"
else
    echo "not ok - docker-compose -f deploy/compose.yaml config"
    sed 's/^/#   /' "$T/compose.err"
    fails=$((fails + 1))
fi
if grep -qi "warn" "$T/compose.err"; then
    echo "not ok - docker-compose config prints no warnings"
    sed 's/^/#   /' "$T/compose.err"
    fails=$((fails + 1))
fi
if compose SATURN_WORKER_THREADS=3 SATURN_WORKERS=5 >"$T/compose-3.yaml" &&
    "$PY" - "$T/compose-3.yaml" <<'EOF'
import sys, yaml
w = yaml.safe_load(open(sys.argv[1]))["services"]["worker"]
cmd = w["command"]
assert cmd[cmd.index("--threads") + 1] == "3", cmd
assert float(w["deploy"]["resources"]["limits"]["cpus"]) == 3.0, w["deploy"]
assert w["deploy"]["replicas"] == 5, w["deploy"]
EOF
then
    echo "ok - SATURN_WORKER_THREADS sets --threads and the CPU limit, SATURN_WORKERS the replicas"
else
    echo "not ok - SATURN_WORKER_THREADS sets --threads and the CPU limit, SATURN_WORKERS the replicas"
    fails=$((fails + 1))
fi

"$PY" "$(dirname "$0")/deploy_check.py" "$ROOT" "$BUILD" "$SATURND" "$WORKER" "$CLI" \
    "$T/compose.yaml" || fails=$((fails + 1))

if [ "$fails" -gt 0 ]; then
    echo "# deploy_check: $fails failure(s)"
    exit 1
fi
echo "# deploy_check: all passed"
