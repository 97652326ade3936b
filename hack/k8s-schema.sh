#!/usr/bin/env bash
# Provides @kubernetes/client-node (its models, generated from one Kubernetes release's OpenAPI) and kubernetes-models
# (JSON-schema validate()) from npm for the tests that check objects against a current Kubernetes API.
#
# Usage: hack/k8s-schema.sh
# Installs hack/k8s-schema/package-lock.json into ${NETTUNE_CACHE:-$HOME/.cache/nettune}/k8s-schema/<hash>/ together
# with check.mjs (hack/npm-tool.sh), and prints that folder on the last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/hack/npm-tool.sh" k8s-schema "$here/hack/k8s-schema" check.mjs
