#!/usr/bin/env bash
# Container images of NetTune's three components.
#
#   hack/images.sh publish COMPONENT OUT   publish one component's payload into OUT, exactly as its Dockerfile does
#                                          (the Dockerfiles run this same command in their build stage)
#   hack/images.sh build [TAG]             build the three images with docker or podman ($CONTAINER_ENGINE wins):
#                                          nettune/{operator,agent,dataplane}:TAG (default: the chart's appVersion)
#
# COMPONENT: operator (framework-dependent, ASP.NET Core runtime), agent (framework-dependent), dataplane (NativeAOT).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[images] %s\n' "$*" >&2; }

project_of() {
  case "$1" in
    operator) echo operator/NetTune.Operator/NetTune.Operator.csproj ;;
    agent) echo agent/NetTune.Agent/NetTune.Agent.csproj ;;
    dataplane) echo dataplane/NetTune.DataPlane/NetTune.DataPlane.csproj ;;
    *) log "unknown component '$1' (operator, agent, dataplane)"; exit 2 ;;
  esac
}

# NativeAOT links with clang; Debian names it clang-NN when the unversioned package is absent.
native_linker() {
  local c
  for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    command -v "$c" >/dev/null && { echo "$c"; return 0; }
  done
  log "NativeAOT links with clang: installing Debian's clang"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends clang >&2
  command -v clang >/dev/null || { log "clang did not install"; exit 1; }
  echo clang
}

publish() {
  local component=$1 out=$2 project
  project=$(project_of "$component")
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  # Own bin/obj folders, so a publish never races a developer's build of the same projects.
  local artifacts
  artifacts=$(mktemp -d "${TMPDIR:-/tmp}/nettune-publish-$component.XXXXXX")
  trap 'rm -rf "$artifacts"' RETURN
  local common=(-c Release -nologo -v quiet --artifacts-path "$artifacts" -o "$out" -p:DebugType=none -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en)
  case "$component" in
    dataplane)
      dotnet publish "$ROOT/$project" "${common[@]}" -r linux-x64 -p:PublishAot=true -p:StripSymbols=true \
        -p:CppCompilerAndLinker="$(native_linker)" >&2 ;;
    *)
      dotnet publish "$ROOT/$project" "${common[@]}" --no-self-contained -p:UseAppHost=true >&2 ;;
  esac
  log "$component published to $out"
}

build() {
  local tag=${1:-$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ROOT/charts/nettune/Chart.yaml")}
  local engine=${CONTAINER_ENGINE:-}
  if [[ -z "$engine" ]]; then
    if command -v podman >/dev/null; then engine=podman
    elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
    else log "neither podman nor a running docker found (set CONTAINER_ENGINE)"; exit 1
    fi
  fi
  local c
  for c in operator agent dataplane; do
    log "$engine build nettune/$c:$tag"
    "$engine" build -f "$ROOT/images/$c/Dockerfile" -t "nettune/$c:$tag" "$ROOT"
  done
}

case "${1:-}" in
  publish) [[ $# -eq 3 ]] || { log "usage: $0 publish COMPONENT OUT"; exit 2; }; publish "$2" "$3" ;;
  build) build "${2:-}" ;;
  *) log "usage: $0 publish COMPONENT OUT | build [TAG]"; exit 2 ;;
esac
