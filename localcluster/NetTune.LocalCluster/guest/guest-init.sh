#!/bin/bash
# The guest node's stage 2 (stage 1 in the initramfs switched root into the host's / read-only over 9p with a tmpfs
# on top, and runs this from the node's folder on the host). Sets the guest up as its own machine and hands PID 1 to
# busybox init, which keeps the control agent, containerd and the kubelet running.
#   guest-init.sh           stage 2 (PID 1)
#   guest-init.sh kubelet   waits for containerd, imports the pause image once, runs the kubelet (respawned by init)
set -u
DIR=$(dirname "$(readlink -f "$0")")
# shellcheck source=/dev/null
. "$DIR/guest.env"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [[ ${1:-} == kubelet ]]; then
  # The socket first: each ctr run loads a large binary, which costs seconds under emulation.
  until [[ -S /run/containerd/containerd.sock ]] && ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; do sleep 0.5; done
  echo "[guest-init] containerd answers at $(cut -d' ' -f1 /proc/uptime)s"
  if [[ ! -e /run/nettune-pause-imported ]]; then
    ctr --address /run/containerd/containerd.sock -n k8s.io images import "$DIR/pause.oci.tar" && touch /run/nettune-pause-imported
  fi
  exec "$KUBELET" --config="$DIR/kubelet-config.yaml" --kubeconfig="$DIR/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
    --node-ip="${MGMT_IP%/*}" --hostname-override="$NODE_NAME" --node-labels="$NODE_LABELS" --v=1
fi

mount -t proc proc /proc
echo "[guest-init] stage 2 at $(cut -d' ' -f1 /proc/uptime)s"
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/hugepages
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t hugetlbfs hugetlbfs /dev/hugepages
# cgroup v1 hybrid, as on the host (the kubelet v1.20 cgroupfs driver).
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in cpu cpuacct cpuset memory devices freezer blkio pids hugetlb; do
  mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
# The host's /run, /var/lib/{containerd,kubelet,cni,nettune} and /etc/cni/net.d hold the host's own state (the
# host node's agent journals in /var/lib/nettune): the guest gets empty ones (containerd's overlayfs snapshotter
# cannot use an overlayfs upper either).
# (The host's /tmp stays visible, read-only below the tmpfs layer: tests hand the guest folders there.)
for d in /run /var/lib/containerd /var/lib/kubelet /var/lib/cni /var/lib/nettune /var/log /etc/cni/net.d /var/run/netns; do
  mkdir -p $d; mount -t tmpfs tmpfs $d
done
mkdir -p /var/log/pods /var/log/containers /run/containerd /logs
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 logs /logs
exec >>/logs/guest-init.log 2>&1
echo "[guest-init] mounts done at $(cut -d' ' -f1 /proc/uptime)s"
mkdir -p /lib/modules && mount --bind "$MODULES" /lib/modules
# The persistent disk (the only virtio-blk device), formatted at the first boot: the state a server keeps on its disk
# across a reboot (images and containers, the kubelet's, the agent's journal) goes there instead of the tmpfs.
if [[ ${PERSISTENT_DISK:-0} == 1 ]]; then
  modprobe virtio_blk; modprobe ext4
  mkdir -p /persist
  mount -t ext4 /dev/vda /persist 2>/dev/null || { mkfs.ext4 -q -F /dev/vda && mount -t ext4 /dev/vda /persist; }
  echo "[guest-init] persistent disk mounted at $(cut -d' ' -f1 /proc/uptime)s, boot $(cat /proc/sys/kernel/random/boot_id), earlier boots: $(cat /persist/boots 2>/dev/null | wc -l)"
  cat /proc/sys/kernel/random/boot_id >>/persist/boots
  for d in containerd kubelet nettune; do mkdir -p /persist/$d; mount --bind /persist/$d /var/lib/$d; done
fi
# The host node's kubelet root dir names the guest's kubelet too: the agents of one DaemonSet mount one kubelet root
# (chart agent.kubeletRootDir) on every node, as a real cluster's nodes share one --root-dir. Below that path the
# guest sees its own kubelet (its CPU manager checkpoint, the seccomp profiles its pods load), not the host node's.
mkdir -p "$HOST_NODE_KUBELET_ROOT" && mount -t tmpfs tmpfs "${HOST_NODE_KUBELET_ROOT%/*}"
mkdir -p "$HOST_NODE_KUBELET_ROOT" && mount --bind /var/lib/kubelet "$HOST_NODE_KUBELET_ROOT"
# Shared, as systemd makes every mount on a real host: the agent mounts the kubelet's root with HostToContainer
# propagation, which containerd refuses on a private mount ("is mounted on /var/lib/kubelet but it is not a shared or
# slave mount"), and the pods' volume mounts must reach it.
mount --make-rshared /
for m in virtio_net bridge veth br_netfilter; do modprobe "$m"; done
hostname "$NODE_NAME"
echo "$NODE_NAME" >/etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "${MGMT_IP%/*}" "$NODE_NAME" >/etc/hosts

# NICs by MAC (their names follow probe order), renamed to what the tests name: eth0 management, eth1 data.
for n in /sys/class/net/*; do
  name=${n##*/}
  case "$(cat "$n/address")" in
    "$MGMT_MAC") ip link set "$name" down; ip link set "$name" name nt-mgmt ;;
    "$DATA_MAC") ip link set "$name" down; ip link set "$name" name nt-data ;;
  esac
done
ip link set nt-mgmt name eth0; ip link set nt-data name eth1
ip link set lo up
ip addr add "$MGMT_IP" dev eth0; ip link set eth0 up
ip addr add "$DATA_IP" dev eth1; ip link set eth1 up
ip route add default via "$GATEWAY" dev eth0
# The `kubernetes` Service's ClusterIP: the control agent relays it to the apiserver's relay on the host.
ip addr add "$SERVICE_IP/32" dev lo
sysctl -qw net.ipv6.conf.all.disable_ipv6=1
echo "[guest-init] network up at $(cut -d' ' -f1 /proc/uptime)s"

cat >/etc/inittab <<INITTAB
::respawn:/usr/bin/python3 $DIR/guest-agent.py
::respawn:/bin/sh -c 'exec /usr/bin/containerd --config $DIR/containerd.toml >>/logs/containerd.log 2>&1'
::respawn:/bin/sh -c 'exec /bin/bash $DIR/guest-init.sh kubelet >>/logs/kubelet.log 2>&1'
::ctrlaltdel:/bin/busybox reboot
::shutdown:/bin/busybox killall5 -15
INITTAB
exec /bin/busybox init
