#!/usr/bin/env bash
# Installs the Debian packages the tests need and a bare machine lacks:
#   qemu-user-static  runs the arm64 build of the base64 and event decoder
#                     tests (make test-arm64), Lambda's architecture.
# Idempotent: does nothing when every package's command is already there.
set -euo pipefail

missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
"${sudo[@]}" apt-get update -q >/dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
command -v qemu-aarch64-static >/dev/null
