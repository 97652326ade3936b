#!/usr/bin/env bash
# Provides the local cluster's binaries.
#
#   kube-assets.sh [control-plane]  etcd, kube-apiserver, kube-controller-manager (the envtest convention)
#   kube-assets.sh node             kubelet, kube-scheduler and a static `pause` for the real node
#
# Prints the folder that holds them on its last line of stdout.
#  - $KUBEBUILDER_ASSETS wins when set: the user brings their own binaries. A real node needs kubelet,
#    kube-scheduler and pause there too; when they are missing the script says which and builds the
#    node's binaries into the cache instead.
#  - Otherwise all of them are built once, in one `make WHAT=...`, from Debian's `kubernetes` source
#    package and cached outside the repo, keyed by version, under ${NETTUNE_CACHE:-$HOME/.cache/nettune}.
# Progress goes to stderr so callers can capture the folder from stdout.
set -euo pipefail

ROLE="${1:-control-plane}"
case "$ROLE" in
  control-plane) NEEDED=(etcd kube-apiserver kube-controller-manager) ;;
  node) NEEDED=(kubelet kube-scheduler pause) ;;
  *) echo "usage: kube-assets.sh [control-plane|node]" >&2; exit 2 ;;
esac
ALL=(etcd kube-apiserver kube-controller-manager kubelet kube-scheduler pause)

KUBE_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
KUBE_VERSION="v1.20.2"
CACHE_ROOT="${NETTUNE_CACHE:-$HOME/.cache/nettune}"
ASSETS="$CACHE_ROOT/kube-assets/$KUBE_VERSION"

log() { printf '[kube-assets] %s\n' "$*" >&2; }

has_all() { # folder, binaries...
  local dir=$1 bin; shift
  for bin in "$@"; do [[ -x "$dir/$bin" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  missing=()
  for bin in "${NEEDED[@]}"; do [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || missing+=("$bin"); done
  if ((${#missing[@]} == 0)); then echo "$KUBEBUILDER_ASSETS"; exit 0; fi
  if [[ $ROLE == control-plane ]]; then
    log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks an executable ${missing[*]}"; exit 1
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks ${missing[*]} (the real node needs them): using the cache in $ASSETS"
fi

if has_all "$ASSETS" "${NEEDED[@]}"; then
  echo "$ASSETS"
  exit 0
fi

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

apt_install etcd-server golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev make gcc libc6-dev

# Serialise concurrent builds (two test runs starting at once).
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/kube-assets.lock"
flock 9
if has_all "$ASSETS" "${NEEDED[@]}"; then
  echo "$ASSETS"
  exit 0
fi

WORK="$CACHE_ROOT/build-$KUBE_VERSION"
APTDIR="$WORK/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$WORK/src"

# A private apt state with deb-src entries for the same mirror; the system's sources stay untouched.
# Take the system's own Debian mirror (deb822 "URIs:" or one-line "deb" entries; never comments).
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -vE '^[[:space:]]*#' \
  | grep -oE 'https?://[^ ]+/debian/?([[:space:]]|$)' | head -n1 | tr -d '[:space:]' || true)
mirror="${mirror:-http://deb.debian.org/debian}"
mirror="${mirror%/}"
cat >"$APTDIR/sources.list" <<SRC
deb-src $mirror bookworm main
deb-src $mirror bookworm-updates main
deb-src ${mirror}-security bookworm-security main
SRC
APT_OPTS=(-o "Dir::Etc::sourcelist=$APTDIR/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache" -o "APT::Get::List-Cleanup=0")

SRCDIR="$WORK/src/kubernetes-1.20.5+really1.20.2"
if [[ ! -d "$SRCDIR/vendor" ]]; then
  log "fetching Debian source package kubernetes=$KUBE_DEB_VERSION (34 MB)"
  apt-get "${APT_OPTS[@]}" update -qq >&2
  (cd "$WORK/src" && apt-get "${APT_OPTS[@]}" source --download-only "kubernetes=$KUBE_DEB_VERSION" >&2)
  log "unpacking"
  (cd "$WORK/src" && dpkg-source --no-check -x kubernetes_*.dsc "$SRCDIR" >&2)
fi

# The vendored reflect2 v1.0.1 crashes under Go 1.19 on the first custom-resource request; Debian's 1.0.2 fixes it.
if grep -q 'modern-go/reflect2 v1.0.1' "$SRCDIR/go.mod"; then
  log "replacing vendored modern-go/reflect2 v1.0.1 with Debian's 1.0.2"
  rm -rf "$SRCDIR/vendor/github.com/modern-go/reflect2"
  mkdir -p "$SRCDIR/vendor/github.com/modern-go/reflect2"
  (cd /usr/share/gocode/src/github.com/modern-go/reflect2 && find . -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' -exec cp {} "$SRCDIR/vendor/github.com/modern-go/reflect2/" \; )
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/LICENSE "$SRCDIR/vendor/github.com/modern-go/reflect2/" 2>/dev/null || true
  find "$SRCDIR" -name go.mod -not -path '*/vendor/*' -exec sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#' {} +
  sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#' "$SRCDIR/vendor/modules.txt"
fi

# One build for the control plane and the node: the packages they share compile once.
log "building kube-apiserver, kube-controller-manager, kube-scheduler and kubelet $KUBE_VERSION (cold build takes 11-17 min on 2 cores)"
(cd "$SRCDIR" && GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 KUBE_GIT_VERSION="$KUBE_VERSION" \
   KUBE_GIT_TREE_STATE=clean make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet" >&2)

out=$(find "$SRCDIR/_output" -type f -name kube-apiserver -perm -u+x | head -n1)
[[ -n "$out" ]] || { log "build produced no kube-apiserver"; exit 1; }
mkdir -p "$ASSETS.tmp"
for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  cp "$(dirname "$out")/$bin" "$ASSETS.tmp/" || { log "build produced no $bin"; exit 1; }
done
cp "$(command -v etcd || echo /usr/bin/etcd)" "$ASSETS.tmp/etcd"
# The sandbox image's only process, from the same tree; static so the image needs no libc.
gcc -Os -static -DVERSION="$KUBE_VERSION" -o "$ASSETS.tmp/pause" "$SRCDIR/build/pause/linux/pause.c" >&2
rm -rf "$ASSETS" && mv "$ASSETS.tmp" "$ASSETS"
log "cached in $ASSETS"
rm -rf "$SRCDIR/_output"
echo "$ASSETS"
