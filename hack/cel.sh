#!/usr/bin/env bash
# Provides @bufbuild/cel (a CEL implementation; the npm registry serves it) for the CEL conformance tests.
#
# Usage: hack/cel.sh
# Installs tests/NetTune.Api.Tests/cel/package-lock.json into ${NETTUNE_CACHE:-$HOME/.cache/nettune}/cel/<hash>/
# together with evaluate.mjs (hack/npm-tool.sh), and prints that folder on the last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/hack/npm-tool.sh" cel "$here/tests/NetTune.Api.Tests/cel" evaluate.mjs
