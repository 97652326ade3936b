#!/usr/bin/env bash
# Container images of NetTune's three components.
#
#   hack/images.sh publish COMPONENT OUT   publish one component's payload into OUT, exactly as its Dockerfile does
#                                          (the Dockerfiles run this same command in their build stage); a fourth
#                                          argument self-contained publishes it as the archives do
#   hack/images.sh build [TAG]             build the three images with docker or podman ($CONTAINER_ENGINE wins):
#                                          nettune/{operator,agent,dataplane}:TAG (default: the chart's appVersion)
#   hack/images.sh archives [OUT]          without a registry or an engine: OCI image archives of the three, named as
#                                          the chart names them, in OUT (default .artifacts/images), for
#                                          `ctr images import` (the local node loads them so)
#
# COMPONENT: operator (framework-dependent, ASP.NET Core runtime), agent (framework-dependent), dataplane (NativeAOT).
# NETTUNE_AOT=agent publishes the agent with NativeAOT too (-p:NetTuneAot=true: against KubernetesClient.Aot), in
# publish and in archives.
# For archives, operator and agent are published self-contained (no base image brings a .NET runtime there); every
# image holds its payload plus the libraries ldd lists, and OpenSSL for the two that talk TLS to the apiserver.
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
  local component=$1 out=$2 self_contained=${3:-} project
  project=$(project_of "$component")
  rm -rf "$out"; mkdir -p "$out"
  out=$(cd "$out" && pwd)
  # Own bin/obj folders, so a publish never races a developer's build of the same projects; kept under
  # .artifacts/publish when asked (NETTUNE_PUBLISH_CACHE=1), so a second publish of unchanged code is incremental.
  local artifacts
  if [[ ${NETTUNE_PUBLISH_CACHE:-} == 1 ]]; then
    artifacts="$ROOT/.artifacts/publish/$component${self_contained:+-sc}"; mkdir -p "$artifacts"
  else
    artifacts=$(mktemp -d "${TMPDIR:-/tmp}/nettune-publish-$component.XXXXXX")
    trap 'rm -rf "$artifacts"' RETURN
  fi
  local common=(-c Release -nologo -v quiet --artifacts-path "$artifacts" -o "$out" -p:DebugType=none -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en)
  local aot=$component
  [[ $component == agent && " ${NETTUNE_AOT:-} " == *" agent "* ]] && aot=agent-aot
  case "$aot" in
    agent-aot)
      dotnet publish "$ROOT/$project" "${common[@]}" -r linux-x64 -p:NetTuneAot=true -p:StripSymbols=true \
        -p:CppCompilerAndLinker="$(native_linker)" >&2 ;;
    dataplane)
      dotnet publish "$ROOT/$project" "${common[@]}" -r linux-x64 -p:PublishAot=true -p:StripSymbols=true \
        -p:CppCompilerAndLinker="$(native_linker)" >&2 ;;
    *)
      if [[ -n $self_contained ]]; then
        dotnet publish "$ROOT/$project" "${common[@]}" -r linux-x64 --self-contained -p:UseAppHost=true >&2
      else
        dotnet publish "$ROOT/$project" "${common[@]}" --no-self-contained -p:UseAppHost=true >&2
      fi ;;
  esac
  log "$component published to $out"
}

chart_version() {
  sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ROOT/charts/nettune/Chart.yaml"
}

# The entry point and user of each image, as its Dockerfile has them.
archives() {
  local out=${1:-$ROOT/.artifacts/images} tag cli
  tag=$(chart_version)
  mkdir -p "$out"; out=$(cd "$out" && pwd)
  cli="$ROOT/localcluster/NetTune.LocalCluster.Cli/bin/${CONFIGURATION:-Debug}/net10.0/nettune-local-cluster.dll"
  [[ -f $cli ]] || dotnet build "$ROOT/localcluster/NetTune.LocalCluster.Cli" -c "${CONFIGURATION:-Debug}" -nologo -v quiet >&2
  # A stamp of the sources the images are built from: unchanged sources reuse the archives.
  local key
  key=$( (cd "$ROOT" && git ls-files -s -- api agent operator dataplane hack/images.sh Directory.Build.props Directory.Packages.props \
          && git diff HEAD -- api agent operator dataplane && git ls-files --others --exclude-standard -- api agent operator dataplane | xargs -r sha256sum \
          && echo "aot=${NETTUNE_AOT:-}") | sha256sum | cut -c1-16)
  if [[ -f $out/stamp && $(cat "$out/stamp") == "$key" ]] && ls "$out"/{operator,agent,dataplane}.oci.tar >/dev/null 2>&1; then
    log "image archives are up to date ($out)"; echo "$out"; return 0
  fi
  rm -f "$out/stamp"
  local ssl=(--lib /usr/lib/x86_64-linux-gnu/libssl.so.3 --lib /usr/lib/x86_64-linux-gnu/libcrypto.so.3)
  local c started
  for c in operator agent dataplane; do
    started=$SECONDS
    case $c in
      dataplane) publish dataplane "$out/payload-$c" ;;
      *) publish "$c" "$out/payload-$c" self-contained ;;
    esac
    # The runtime's LTTng trace provider needs liblttng-ust, which no image here has; the runtime loads it only
    # when it is there, so it is left out rather than shipped broken.
    rm -f "$out/payload-$c/libcoreclrtraceptprovider.so"
    case $c in
      operator) dotnet "$cli" image "nettune/operator:$tag" /app/nettune-operator "$out/operator.oci.tar" "$out/payload-$c" "${ssl[@]}" --user 1654:1654 >&2 ;;
      # nsenter: the agent's kubelet restart command (chart agent.kubeletRestart.mode=command) enters the host's PID 1.
      agent) dotnet "$cli" image "nettune/agent:$tag" /app/NetTune.Agent "$out/agent.oci.tar" "$out/payload-$c" "${ssl[@]}" --file "$(command -v nsenter)" --user 0:0 >&2 ;;
      dataplane) dotnet "$cli" image "nettune/dataplane:$tag" /app/dataplane "$out/dataplane.oci.tar" "$out/payload-$c" --user 1654:1654 >&2 ;;
    esac
    rm -rf "$out/payload-$c"
    log "$c image archive in $((SECONDS - started))s"
  done
  echo "$key" >"$out/stamp"
  echo "$out"
}

build() {
  local tag=${1:-$(chart_version)}
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
  publish) [[ $# -eq 3 || ( $# -eq 4 && $4 == self-contained ) ]] || { log "usage: $0 publish COMPONENT OUT [self-contained]"; exit 2; }; publish "$2" "$3" "${4:-}" ;;
  build) build "${2:-}" ;;
  archives) archives "${2:-}" ;;
  *) log "usage: $0 publish COMPONENT OUT | build [TAG] | archives [OUT]"; exit 2 ;;
esac
