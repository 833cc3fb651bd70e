#!/usr/bin/env bash
# Runs one command as root inside a throwaway QEMU VM whose kernel has a pure cgroup v2
# hierarchy, and returns its output and exit code. Exists to prove Burrow's cgroup v2 code on
# hosts (like our CI containers) that only offer hybrid cgroups. See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: Scripts/vm-test.sh [options] [--] COMMAND [ARG...]

Boots Debian's stock kernel (linux-image-amd64) under QEMU (TCG, no KVM needed) and runs
COMMAND as root in a guest that sees:
  /                 the host's root filesystem, read-only over virtio-9p, with a discardable
                    tmpfs overlay on top (writes succeed and vanish at power-off)
  the checkout      this repository (or --share DIR), READ-WRITE, at the same path as here
  /sys/fs/cgroup    cgroup2 alone, every controller enabled in the root's subtree_control
  /tmp /run /var/tmp /var/lib/burrow /root
                    fresh, empty tmpfs (HOME=/root)
Host binaries run unchanged (same paths, same libraries); fork+exec is ~40x slower under TCG.
COMMAND's stdout and stderr stream to this script's stdout and stderr, byte for byte, and
the script exits with COMMAND's exit code. The environment is clean: the host's PATH,
HOME=/root, TERM=dumb, BURROW_TEST_STRICT if set, and whatever --env adds.

Options:
  --env NAME[=VALUE]  pass NAME into the guest, with VALUE or the host's value (repeatable)
  --share DIR         directory shared read-write (default: the repository root)
  --workdir DIR       directory COMMAND starts in (default: the shared directory)
  --memory MB         guest memory (default: 2048)
  --timeout SECONDS   kill the VM after this long and exit 124 (default: 1200)
  --verbose           stream the kernel console and QEMU's messages to stderr
  -h, --help          this text

Exit codes: COMMAND's own; 124 on timeout; 125 if the guest never reported a status (boot
failure, kernel panic): the tail of the console log is printed then.

Missing tools (qemu-system-x86 busybox-static kmod xz-utils) are installed with apt-get. The
kernel package is downloaded once and cached, with its uncompressed vmlinux (booted through
the PVH entry, ~2x faster than bzImage) and the initramfs, in $BURROW_VM_CACHE
(default /var/cache/burrow-vm):
  <kernel-package>_<version>/kernel.deb                 the downloaded package
  <kernel-package>_<version>/vmlinux                    extracted from /boot/vmlinuz-*
  <kernel-package>_<version>/initramfs-<hash>.cpio.gz   busybox, modules, init; <hash> covers
                                                        them, so editing the init rebuilds it
A newer kernel in the apt lists replaces the cached one.

Examples:
  Scripts/vm-test.sh -- cat /sys/fs/cgroup/cgroup.subtree_control
  Scripts/vm-test.sh --env BURROW_LOG=debug -- .build/debug/burrow doctor
  Scripts/vm-test.sh --timeout 3600 -- swift test --skip-build --filter Cgroup
EOF
}

log() { echo "vm-test: $*" >&2; }
die() { log "$*"; exit 125; }

# --- Arguments ---------------------------------------------------------------------------
share=$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")
workdir= memory=2048 timeout=1200 verbose=0 envs=()
while [ $# -gt 0 ]; do
    case $1 in
        --env) [ $# -ge 2 ] || die "--env needs NAME[=VALUE]"
               name=${2%%=*}
               [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env: bad variable name '$name'"
               if [[ $2 == *=* ]]; then envs+=("$2")
               elif [ -n "${!name+set}" ]; then envs+=("$name=${!name}")
               else die "--env $name: not set on the host"; fi
               shift 2 ;;
        --share) share=$(realpath "${2:?--share needs a directory}"); shift 2 ;;
        --workdir) workdir=$(realpath -m "${2:?--workdir needs a directory}"); shift 2 ;;
        --memory) memory=${2:?--memory needs MB}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
        --verbose) verbose=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { usage >&2; exit 2; }
[ -d "$share" ] || die "--share $share: not a directory"
[[ $memory =~ ^[0-9]+$ && $timeout =~ ^[0-9]+$ ]] || die "--memory and --timeout take integers"
workdir=${workdir:-$share}
[ -z "${BURROW_TEST_STRICT+set}" ] || envs=("BURROW_TEST_STRICT=$BURROW_TEST_STRICT" "${envs[@]}")

tmp=$(mktemp -d /tmp/burrow-vm.XXXXXX)
pids=()   # background processes we started (qemu's `timeout`, tails): the only ones we kill
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Host tools ----------------------------------------------------------------------------
sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
# DPkg::Lock::Timeout waits for another apt/dpkg run (e.g. a background install) to finish.
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=900 "$@"; }
missing=()
for p in qemu-system-x86 busybox-static kmod xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    { apt install -y --no-install-recommends "${missing[@]}" ||
        { apt update && apt install -y --no-install-recommends "${missing[@]}"; }; } >"$tmp/apt.log" 2>&1 ||
        { cat "$tmp/apt.log" >&2; die "could not install ${missing[*]}"; }
fi
busybox=/bin/busybox   # busybox-static's: it runs with nothing else in the initramfs

# --- Guest init (PID 1, busybox sh). Its text is part of the initramfs cache key. -----------
# /job, added per run, sets SHARE and `set --` to the host-quoted command line.
read -r -d '' init <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
die() { echo "vm-init: $*"; sync; poweroff -f; }
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || die "no /proc /sys /dev"
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m" || die "insmod $m failed"; done
. /job
# Root: the host's / (read-only 9p) under a tmpfs overlay, so mount points like
# /var/lib/burrow can be created and writes are discarded.
o=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /lower /rw && mount -t 9p -o "ro,$o" hostroot /lower && mount -t tmpfs tmpfs /rw &&
    mkdir /rw/upper /rw/work &&
    mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
    die "cannot mount the host root"
r=/newroot
rm -f $r/.dockerenv   # a container marker (it makes systemd think it runs in one): not here
for d in tmp:1777 var/tmp:1777 run:755 var/lib/burrow:755 root:700; do
    mkdir -p "$r/${d%:*}" && mount -t tmpfs -o "mode=${d#*:}" tmpfs "$r/${d%:*}" || die "tmpfs $d"
done
mount -t proc proc $r/proc && mount -t sysfs sys $r/sys && mount -t devtmpfs dev $r/dev &&
    mkdir -p $r/dev/pts $r/dev/shm && mount -t devpts -o ptmxmode=666 devpts $r/dev/pts &&
    mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm || die "cannot mount the API filesystems"
ln -sf /proc/self/fd $r/dev/fd; for i in 0:stdin 1:stdout 2:stderr; do ln -sf "/proc/self/fd/${i%:*}" "$r/dev/${i#*:}"; done
# cgroup2 alone, mounted as systemd does, with every controller delegated from the root.
cg=$r/sys/fs/cgroup
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $cg || die "cannot mount cgroup2"
for c in $(cat $cg/cgroup.controllers); do echo "+$c" > $cg/cgroup.subtree_control || die "cannot enable $c"; done
mkdir -p "$r$SHARE" && mount -t 9p -o "$o" share "$r$SHARE" || die "cannot mount the share at $SHARE"
port() {   # /dev node of the virtio-serial port named $1; ports show up asynchronously
    for _ in $(seq 200); do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return; }
        done
        sleep 0.05
    done
    die "no virtio-serial port $1"
}
out=$(port burrow.stdout) && err=$(port burrow.stderr) && status=$(port burrow.status) || die "no ports"
echo "vm-init: running the command at $(cut -d' ' -f1 /proc/uptime)s"
chroot $r "$@" </dev/null >"$out" 2>"$err"
echo $? >"$status"
sync
poweroff -f
EOF
modules="virtio_pci virtio_console 9pnet_virtio 9p overlay"   # their dependencies come along

# --- Kernel and initramfs, cached per kernel package version --------------------------------
cache=${BURROW_VM_CACHE:-/var/cache/burrow-vm}
mkdir -p "$cache"
exec 9>"$cache/lock"; flock 9   # one preparer at a time; released below
# The metapackage depends on the current ABI's package at an exact version, e.g.
# "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)". apt-cache takes ~1 s here (no
# pkgcache.bin in Docker images), so the answer is kept until the next apt-get update.
resolve() {
    [ -s "$cache/kernel" ] && [ "$cache/kernel" -nt /var/lib/apt/lists ] ||
        apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends:.*\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' >"$cache/kernel"
    read -r pkg version <"$cache/kernel" || true
    [ -n "${version:-}" ]
}
resolve || { apt update && resolve; } || die "apt-cache knows no linux-image-amd64"
kdir=$cache/${pkg}_$version
hash=$(printf '%s\n' "$init" "$modules" | cat - "$busybox" | sha256sum | cut -c1-16)
initramfs=$kdir/initramfs-$hash.cpio.gz
if [ ! -s "$kdir/vmlinux" ] || [ ! -s "$initramfs" ]; then
    find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "${kdir##*/}" -exec rm -rf {} +  # older kernels
    mkdir -p "$kdir"
    if [ ! -s "$kdir/kernel.deb" ]; then
        log "downloading $pkg $version"
        (cd "$tmp" && apt download -o APT::Sandbox::User=root "$pkg=$version") ||
            (cd "$tmp" && apt update && apt download -o APT::Sandbox::User=root "$pkg=$version")
        mv "$tmp"/*.deb "$kdir/kernel.deb"
    fi
    dpkg-deb -x "$kdir/kernel.deb" "$tmp/kernel"
    if [ ! -s "$kdir/vmlinux" ]; then
        # vmlinuz is a bzImage: setup code, a decompressor and the kernel ELF as an xz stream.
        # Find the xz magic (FD 37 7A 58 5A 00) and decompress from there (cf. extract-vmlinux).
        vmlinuz=$(echo "$tmp"/kernel/boot/vmlinuz-*)
        for off in $(LC_ALL=C grep -obaUP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
            # (not a pipe: xz stops at the stream's end, and tail's SIGPIPE would fail pipefail)
            xz -dc --single-stream <(tail -c +$((off + 1)) "$vmlinuz") >"$tmp/vmlinux" 2>/dev/null || continue
            [ "$(head -c4 "$tmp/vmlinux")" = $'\x7fELF' ] && mv "$tmp/vmlinux" "$kdir/vmlinux" && break
        done
        [ -s "$kdir/vmlinux" ] || die "no xz-compressed ELF kernel in $pkg's vmlinuz"
    fi
    if [ ! -s "$initramfs" ]; then
        log "building the initramfs"
        kver=$(ls "$tmp/kernel/lib/modules")
        depmod -b "$tmp/kernel" "$kver"
        ird=$tmp/initramfs
        mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
        cp "$busybox" "$ird/bin/busybox"
        printf '%s\n' "$init" >"$ird/init"; chmod +x "$ird/init"
        # modprobe resolves each module's dependencies in load order ("insmod PATH"), or says
        # "builtin NAME" for what the kernel has built in: nothing to load then.
        for m in $modules; do
            modprobe -d "$tmp/kernel" -S "$kver" --show-depends "$m" || log "warning: no module $m"
        done | awk '!seen[$0]++' | while read -r how path _; do
            [ "$how" = insmod ] || { log "$path: built in"; continue; }
            name=${path##*/}; name=${name%%.ko*}.ko
            case $path in *.xz) xz -dc "$path" ;; *) cat "$path" ;; esac >"$ird/lib/modules/$name"
            echo "$name" >>"$ird/lib/modules/order"
        done
        log "modules: $(tr '\n' ' ' <"$ird/lib/modules/order")"
        (cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -9) >"$tmp/initramfs.cpio.gz"
        rm -f "$kdir"/initramfs-*; mv "$tmp/initramfs.cpio.gz" "$initramfs"
    fi
    rm -rf "$tmp/kernel"
fi
exec 9>&-

# --- This run's initramfs: the cached one plus /job, the quoted command line -----------------
q() { printf "'%s' " "${1//\'/\'\\\'\'}"; }   # single-quote for sh: ' becomes '\''
mkdir "$tmp/job"
{
    echo "SHARE=$(q "$share")"
    printf 'set -- '
    for a in /usr/bin/env -i -C "$workdir" "PATH=$PATH" HOME=/root TERM=dumb "${envs[@]}" "$@"; do q "$a"; done
    echo
} >"$tmp/job/job"
# An uncompressed cpio first, the compressed one after: the kernel unpacks both in turn.
(cd "$tmp/job" && echo job | "$busybox" cpio -o -H newc 2>/dev/null) | cat - "$initramfs" >"$tmp/initrd"

# --- Boot ------------------------------------------------------------------------------------
: >"$tmp/stdout"; : >"$tmp/stderr"; : >"$tmp/status"; : >"$tmp/console.log"
ports=()
for p in stdout stderr status; do
    # Plain files, not FIFOs: byte-exact, and nothing is lost when the guest powers off.
    ports+=(-chardev "file,id=$p,path=$tmp/$p" -device "virtserialport,chardev=$p,name=burrow.$p")
done
quiet=quiet; [ $verbose -eq 0 ] || quiet=
timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -m "$memory" -smp 2 \
    -nographic -nodefaults -no-reboot -serial "file:$tmp/console.log" \
    -kernel "$kdir/vmlinux" -initrd "$tmp/initrd" -append "console=ttyS0 panic=-1 $quiet" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev "local,id=share,path=$share,security_model=passthrough" \
    -device virtio-9p-pci,fsdev=share,mount_tag=share \
    -device virtio-serial-pci "${ports[@]}" </dev/null >"$tmp/qemu.log" 2>&1 &
qemu=$!; pids+=("$qemu")
# Stream the output files while QEMU runs; tail --pid exits once QEMU is gone and drained.
tail -s 0.1 --pid="$qemu" -c +1 -f "$tmp/stdout" & pids+=($!)
tail -s 0.1 --pid="$qemu" -c +1 -f "$tmp/stderr" >&2 & pids+=($!)
[ $verbose -eq 0 ] || { tail -s 0.1 --pid="$qemu" -c +1 -f "$tmp/console.log" "$tmp/qemu.log" >&2 & pids+=($!); }
rc=0; wait "$qemu" || rc=$?
wait "${pids[@]:1}" || true
pids=()

status=$(cat "$tmp/status")
[[ $status =~ ^[0-9]+$ ]] && exit "$status"
if [ $rc -eq 124 ]; then log "timed out after ${timeout}s; the VM was killed"; code=124
else log "the guest reported no exit status (QEMU exited with $rc)"; code=125; fi
log "console (last 30 lines):"; tail -n 30 "$tmp/console.log" >&2
[ ! -s "$tmp/qemu.log" ] || { log "QEMU said:"; cat "$tmp/qemu.log" >&2; }
exit $code
