#!/usr/bin/env bash
# Installs the template-check and test tools at pinned versions:
#   cfn-lint, aws-sam-cli and moto[server] (PyPI) into a Python virtual
#   environment, asl-validator (npm) into a local prefix.
# moto_server stands in for the IAM API in the shared/iamfence tests.
# Idempotent: a tool already at its pinned version is left alone.
#
# Usage: scripts/install-template-tools.sh
#   KMIG_TOOLS_DIR  where to install (default: $HOME/.cache/kmig-tools)
#   PYTHON          the python3 to build the venv with (default: python3)
#
# It prints the bin directories to put on PATH; the template tests in
# ./templatetest also look there by themselves (same default KMIG_TOOLS_DIR).
set -euo pipefail

CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
ASL_VALIDATOR_VERSION=4.0.0
MOTO_VERSION=5.2.5

TOOLS_DIR="${KMIG_TOOLS_DIR:-$HOME/.cache/kmig-tools}"
PYTHON="${PYTHON:-python3}"
VENV="$TOOLS_DIR/venv"
NODE_PREFIX="$TOOLS_DIR/node"
export SAM_CLI_TELEMETRY=0

mkdir -p "$TOOLS_DIR"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

have_pip() { # name version
  # grep reads to the end (no -q): pip show fails on a closed pipe, and
  # pipefail would turn that into "not installed".
  "$VENV/bin/python" -m pip show "$1" 2>/dev/null | grep -x "Version: $2" >/dev/null
}

# One pip run for all three, so that the resolver sees every pin at once.
# moto's [server] extra brings Flask; the import check catches a moto
# installed without it.
if have_pip aws-sam-cli "$SAM_CLI_VERSION" && have_pip cfn-lint "$CFN_LINT_VERSION" &&
   have_pip moto "$MOTO_VERSION" && "$VENV/bin/python" -c 'import flask, flask_cors' 2>/dev/null; then
  echo "aws-sam-cli $SAM_CLI_VERSION, cfn-lint $CFN_LINT_VERSION and moto[server] $MOTO_VERSION already installed" >&2
else
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION" "moto[server]==$MOTO_VERSION"
fi

if command -v npm >/dev/null 2>&1; then
  if [ -x "$NODE_PREFIX/node_modules/.bin/asl-validator" ] &&
     grep -q "\"version\": \"$ASL_VALIDATOR_VERSION\"" "$NODE_PREFIX/node_modules/asl-validator/package.json" 2>/dev/null; then
    echo "asl-validator $ASL_VALIDATOR_VERSION already installed" >&2
  else
    npm install --silent --no-audit --no-fund --prefix "$NODE_PREFIX" "asl-validator@$ASL_VALIDATOR_VERSION" >&2
  fi
else
  echo "npm not found: asl-validator not installed" >&2
fi

echo "cfn-lint:      $("$VENV/bin/cfn-lint" --version)"
echo "sam:           $("$VENV/bin/sam" --version)"
echo "moto_server:   $("$VENV/bin/python" -c "import moto; print(moto.__version__)") ($VENV/bin/moto_server)"
if [ -x "$NODE_PREFIX/node_modules/.bin/asl-validator" ]; then
  echo "asl-validator: $ASL_VALIDATOR_VERSION ($NODE_PREFIX/node_modules/.bin/asl-validator)"
fi
echo "add to PATH:   $VENV/bin:$NODE_PREFIX/node_modules/.bin"
