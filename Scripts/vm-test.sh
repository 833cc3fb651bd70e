#!/usr/bin/env bash
# Runs one command as root inside a throwaway QEMU VM that has a pure cgroup v2 hierarchy, and
# returns its output and exit code: it proves Burrow's cgroup v2 code on hosts (like our CI
# containers) that only offer hybrid cgroups. See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: Scripts/vm-test.sh [options] [--] COMMAND [ARG...]

Boots Debian's stock kernel under QEMU (TCG: no KVM needed) and runs COMMAND as root there,
stdin from /dev/null, in a guest that sees:
  /                the host's root filesystem, read-only over virtio-9p, under a tmpfs
                   overlay (writes vanish at power-off; /.dockerenv is hidden)
  the checkout     this repository (or --share DIR) READ-WRITE, at the same path as here
  /sys/fs/cgroup   cgroup2 alone, mounted as systemd does, every controller enabled in the
                   root's cgroup.subtree_control; COMMAND starts in the root cgroup
  /tmp /run /var/tmp /var/lib/burrow /root    fresh, empty tmpfs
Host binaries run unchanged (same paths and libraries), though fork+exec is ~40x slower.
COMMAND's stdout and stderr stream to this script's, byte for byte, and its exit status is
the script's. Its environment: the host's PATH, HOME=/root, TERM=dumb, BURROW_TEST_STRICT
if set here, and what --env adds.

Options:
  --env NAME[=VALUE]  set NAME in the guest to VALUE, or to its value here (repeatable)
  --share DIR         directory shared read-write (default: the repository root)
  --workdir DIR       directory COMMAND starts in (default: the shared directory)
  --memory MB         guest memory (default: 2048)
  --timeout SECONDS   kill the VM after this long and exit 124 (default: 1200)
  --systemd           boot the guest's systemd as PID 1 and run COMMAND as its oneshot
                      service vm-job.service (slower: systemd's early units start first)
  --verbose           also stream the kernel console and QEMU's messages to stderr
  -h, --help          this text

Exit status: COMMAND's; 124 on timeout; 125 if the harness fails or the guest never reports
a status (boot failure, panic: the console's tail is printed); 2 on bad usage.

Missing tools (qemu-system-x86 busybox-static kmod xz-utils) are installed with apt-get.
The kernel is downloaded once, then runs take seconds. $BURROW_VM_CACHE (default
/var/cache/burrow-vm) holds:
  kernel                     "<package> <version>" of linux-image-amd64's current ABI
  <package>_<version>/       kernel.deb, as downloaded; vmlinux, its uncompressed kernel
                             (booted through the PVH entry: twice as fast as the bzImage);
                             initramfs-<hash>.cpio.gz: busybox, modules and the guest init,
                             <hash> covering them all, so that editing the init rebuilds it
A newer kernel package replaces the cached one; deleting the directory is always safe.

Examples:
  Scripts/vm-test.sh -- cat /sys/fs/cgroup/cgroup.subtree_control
  Scripts/vm-test.sh --env BURROW_LOG=debug -- .build/debug/burrow doctor
  BURROW_TEST_STRICT=1 Scripts/vm-test.sh --timeout 3600 -- swift test --skip-build
EOF
}

log() { echo "vm-test: $*" >&2; }
die() { log "$*"; exit 125; }
misuse() { log "$* (see --help)"; exit 2; }

# --- Arguments --------------------------------------------------------------------------------
share=$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")
workdir='' memory=2048 timeout=1200 verbose=0 systemd=0 envs=()
while [ $# -gt 0 ]; do
    opt=$1; shift
    case $opt in --env|--share|--workdir|--memory|--timeout)
        [ $# -gt 0 ] || misuse "$opt needs a value"; val=$1; shift ;;
    esac
    case $opt in
        --env) name=${val%%=*}
               [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || misuse "--env: bad variable name '$name'"
               if [[ $val == *=* ]]; then envs+=("$val")
               elif [ -n "${!name+set}" ]; then envs+=("$name=${!name}")
               else misuse "--env $name: not set here"; fi ;;
        --share) share=$(realpath -e "$val" 2>/dev/null) && [ -d "$share" ] || misuse "--share $val: no such directory" ;;
        --workdir) workdir=$(realpath -m "$val") ;;
        --memory) memory=$val ;;
        --timeout) timeout=$val ;;
        --verbose) verbose=1 ;;
        --systemd) systemd=1 ;;
        -h|--help) usage; exit 0 ;;
        --) break ;;
        -*) misuse "unknown option $opt" ;;
        *) set -- "$opt" "$@"; break ;;
    esac
done
[ $# -gt 0 ] || misuse "no COMMAND"
[[ $memory =~ ^[1-9][0-9]*$ && $timeout =~ ^[1-9][0-9]*$ ]] || misuse "--memory and --timeout take positive integers"
workdir=${workdir:-$share}
[ -z "${BURROW_TEST_STRICT+set}" ] || envs=("BURROW_TEST_STRICT=$BURROW_TEST_STRICT" "${envs[@]}")

tmp=$(mktemp -d /tmp/burrow-vm.XXXXXX)
pids=()   # what we started in the background (qemu's `timeout`, tails): all we ever kill
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

# --- Host tools -------------------------------------------------------------------------------
sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
# The lock timeout makes apt wait for another apt or dpkg run (a background install) to end.
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=900 "$@"; }
missing=()
for p in qemu-system-x86 busybox-static kmod xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    install=(install -y --no-install-recommends "${missing[@]}")
    { apt "${install[@]}" || { apt update && apt "${install[@]}"; }; } >"$tmp/apt.log" 2>&1 ||
        { cat "$tmp/apt.log" >&2; die "could not install ${missing[*]}"; }
fi
busybox=/bin/busybox   # busybox-static's: the initramfs holds nothing else to run

# --- Guest init: PID 1, busybox sh. Its text is part of the initramfs's cache key. ------------
# /job, added for each run, sets SHARE and `set --` the command line, quoted on the host.
read -r -d '' init <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
die() { echo "vm-init: $*"; sync; poweroff -f; }
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || die "no /proc /sys /dev"
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m" || die "insmod $m failed"; done
. /job
# The new root: the host's / (read-only 9p) under a tmpfs overlay, so that mount points
# missing on the host (/var/lib/burrow) can be made, and /.dockerenv hidden by a whiteout
# (it would make systemd and others believe they run in a container). The host's / is
# cached (cache=loose: file-heavy work gets ~1.3x faster); so is the share below, because
# Landlock cannot follow 9p inodes without a cache (exec of a granted file fails with EACCES).
o=trans=virtio,version=9p2000.L,msize=512000 r=/newroot
mkdir -p /lower /rw && mount -t 9p -o "ro,cache=loose,$o" hostroot /lower && mount -t tmpfs tmpfs /rw &&
    mkdir /rw/upper /rw/work &&
    mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay $r ||
    die "cannot mount the host's root"
rm -f $r/.dockerenv
for d in tmp:1777 var/tmp:1777 run:755 var/lib/burrow:755 root:700; do
    mkdir -p "$r/${d%:*}" && mount -t tmpfs -o "mode=${d#*:}" tmpfs "$r/${d%:*}" || die "tmpfs $d"
done
mount -t proc proc $r/proc && mount -t sysfs sys $r/sys && mount -t devtmpfs dev $r/dev &&
    mkdir -p $r/dev/pts $r/dev/shm && mount -t devpts -o ptmxmode=666 devpts $r/dev/pts &&
    mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm || die "cannot mount the API filesystems"
ln -s /proc/self/fd $r/dev/fd && ln -s fd/0 $r/dev/stdin && ln -s fd/1 $r/dev/stdout && ln -s fd/2 $r/dev/stderr
# cgroup2 alone, with systemd's mount options, every controller enabled below the root.
cg=$r/sys/fs/cgroup
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $cg || die "cannot mount cgroup2"
for c in $(cat $cg/cgroup.controllers); do echo "+$c" >$cg/cgroup.subtree_control || die "cannot enable $c"; done
ip link set lo up || die "cannot bring up the loopback interface"
mkdir -p "$r$SHARE" && mount -t 9p -o "cache=loose,$o" share "$r$SHARE" || die "cannot mount the share at $SHARE"
port() {   # the /dev node of the virtio-serial port named $1 (ports show up asynchronously)
    for _ in $(seq 200); do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return; }
        done
        sleep 0.05
    done
    return 1
}
out=$(port burrow.stdout) && err=$(port burrow.stderr) && status=$(port burrow.status) ||
    die "missing virtio-serial ports"
echo "vm-init: running the command at $(cut -d' ' -f1 /proc/uptime)s"
if [ "${SYSTEMD:-0}" = 1 ]; then
    # --systemd: the guest's own systemd becomes PID 1 and runs the command as a oneshot
    # service, which reports like the plain mode does and powers the guest off.
    { cat /job; echo "OUT=$out ERR=$err STATUS=$status"; } >$r/etc/vm-job
    printf '%s\n' '. /etc/vm-job' '"$@" </dev/null >"$OUT" 2>"$ERR"' 'echo $? >"$STATUS"' sync \
        'systemctl poweroff --force --force' >$r/etc/vm-job.sh
    printf '%s\n' '[Unit]' 'Description=vm-test.sh job' '[Service]' 'Type=oneshot' 'ExecStart=/bin/sh /etc/vm-job.sh' \
        >$r/etc/systemd/system/vm-job.service
    cd $r && mount --move . / && mount --make-rshared . && exec chroot . /lib/systemd/systemd --unit=vm-job.service
    die "cannot start systemd"
fi
# A plain chroot would leave the command chrooted in the kernel's eyes: unshare(CLONE_NEWUSER)
# fails there with EPERM, pivot_root with EINVAL. So the child moves the new root over / (as
# switch_root does) and makes it shared (as systemd does); this PID 1 keeps the initramfs.
(cd $r && mount --move . / && mount --make-rshared . && exec chroot . "$@") </dev/null >"$out" 2>"$err"
echo $? >"$status"
sync
poweroff -f
EOF
# With their dependencies. loop, ext4 and quota_v2: a test-made ext4 with project quotas
# (max_disk_write, DiskQuotaTests); the kernel cannot load modules by itself in the guest.
modules="virtio_pci virtio_console 9pnet_virtio 9p overlay loop ext4 quota_v2"

# --- This run's command line, quoted for sh, for /job in the initramfs -----------------------
q() { printf "'%s' " "${1//\'/\'\\\'\'}"; }   # quote for sh: ' becomes '\''
mkdir "$tmp/job"
{   echo "SHARE=$(q "$share") SYSTEMD=$systemd"; printf 'set -- '
    for a in /usr/bin/env -i -C "$workdir" "PATH=$PATH" HOME=/root TERM=dumb "${envs[@]}" "$@"; do q "$a"; done; echo
} >"$tmp/job/job"

# --- Kernel and initramfs, cached by kernel package version -----------------------------------
cache=${BURROW_VM_CACHE:-/var/cache/burrow-vm}
mkdir -p "$cache"
exec 9>"$cache/lock"; flock 9   # one run prepares at a time; closed before the boot
# The metapackage depends on the current ABI's package at an exact version, as in
# "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)". apt-cache takes ~1 s (Docker images
# have no pkgcache.bin), so its answer is kept until the package lists change.
resolve() {
    [ -s "$cache/kernel" ] && [ "$cache/kernel" -nt /var/lib/apt/lists ] ||
        apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends:.*\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' >"$cache/kernel"
    read -r pkg version <"$cache/kernel" || true
    [ -n "${version:-}" ]
}
resolve || { apt update && resolve; } || die "apt knows no linux-image-amd64"
kdir=$cache/${pkg}_$version
hash=$(printf '%s\n' "$init" "$modules" | cat - "$busybox" | sha256sum | cut -c1-16)
initramfs=$kdir/initramfs-$hash.cpio.gz
if [ ! -s "$kdir/vmlinux" ] || [ ! -s "$initramfs" ]; then
    find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "${kdir##*/}" -exec rm -rf {} +  # old kernels
    mkdir -p "$kdir"
    if [ ! -s "$kdir/kernel.deb" ]; then
        log "downloading $pkg $version"
        get=(download -o APT::Sandbox::User=root "$pkg=$version")
        (cd "$tmp" && { apt "${get[@]}" || { apt update && apt "${get[@]}"; }; }) || die "cannot download $pkg"
        mv "$tmp"/*.deb "$kdir/kernel.deb"
    fi
    dpkg-deb -x "$kdir/kernel.deb" "$tmp/kernel" || { rm "$kdir/kernel.deb"; die "bad kernel.deb (removed)"; }
    if [ ! -s "$kdir/vmlinux" ]; then
        # A bzImage is setup code and a decompressor followed by the kernel's ELF image as an
        # xz stream: find the xz magic (FD 37 7A 58 5A 00) and decompress from there, as the
        # kernel's scripts/extract-vmlinux does. (Process substitution rather than a pipe: xz
        # stops at the end of the stream, and tail's SIGPIPE would fail the pipeline.)
        vmlinuz=$(echo "$tmp"/kernel/boot/vmlinuz-*)
        for off in $(LC_ALL=C grep -obaUP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
            xz -dc --single-stream <(tail -c +$((off + 1)) "$vmlinuz") >"$tmp/vmlinux" 2>/dev/null || continue
            [ "$(head -c4 "$tmp/vmlinux")" = $'\x7fELF' ] && mv "$tmp/vmlinux" "$kdir/vmlinux" && break
        done
        [ -s "$kdir/vmlinux" ] || die "found no xz-compressed ELF kernel in $vmlinuz"
    fi
    if [ ! -s "$initramfs" ]; then
        log "building the initramfs"
        kver=$(ls "$tmp/kernel/lib/modules")
        depmod -b "$tmp/kernel" "$kver"
        ird=$tmp/initramfs
        mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
        cp "$busybox" "$ird/bin/busybox"
        printf '%s\n' "$init" >"$ird/init"; chmod +x "$ird/init"
        # modprobe lists what each module needs in load order ("insmod PATH"), or says
        # "builtin NAME" for what this kernel has built in, which needs no loading.
        for m in $modules; do
            modprobe -d "$tmp/kernel" -S "$kver" --show-depends "$m" || log "warning: no module $m"
        done | awk '!seen[$0]++' | while read -r how path _; do
            [ "$how" = insmod ] || { log "built in: $path"; continue; }
            name=${path##*/}; name=${name%%.ko*}.ko   # busybox insmod wants them uncompressed
            case $path in *.xz) xz -dc "$path" ;; *) cat "$path" ;; esac >"$ird/lib/modules/$name"
            echo "$name" >>"$ird/lib/modules/order"
        done
        log "modules: $(tr '\n' ' ' <"$ird/lib/modules/order")"
        (cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -9) >"$tmp/initramfs.gz"
        mv "$tmp/initramfs.gz" "$initramfs"
        ls -t "$kdir"/initramfs-*.cpio.gz | tail -n +4 | xargs -r rm -f   # keep the 3 newest
    fi
    rm -rf "$tmp/kernel"
fi
# This run's initramfs: /job, then the cached archive. (The kernel unpacks concatenated
# archives in turn; an uncompressed one must come first.)
(cd "$tmp/job" && echo job | "$busybox" cpio -o -H newc 2>/dev/null) | cat - "$initramfs" >"$tmp/initrd"
exec 9>&-

# --- Boot -------------------------------------------------------------------------------------
# The guest's output comes back through virtio-serial ports into plain files, not FIFOs:
# byte-exact, and nothing is lost when the guest powers off.
touch "$tmp"/{stdout,stderr,status,console.log,qemu.log}
ports=()
for p in stdout stderr status; do
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
# Stream the files while QEMU runs; tail --pid reads them to the end once QEMU is gone.
tail -s 0.1 --pid="$qemu" -c +1 -f "$tmp/stdout" & pids+=($!)
tail -s 0.1 --pid="$qemu" -c +1 -f "$tmp/stderr" >&2 & pids+=($!)
[ $verbose -eq 0 ] || { tail -q -s 0.1 --pid="$qemu" -c +1 -f "$tmp/console.log" "$tmp/qemu.log" >&2 & pids+=($!); }
rc=0; wait "$qemu" || rc=$?
wait "${pids[@]:1}" || true
pids=()

status=$(cat "$tmp/status")
[[ $status =~ ^[0-9]+$ ]] && exit "$status"
if [ $rc -eq 124 ]; then log "timed out after ${timeout}s (--timeout); the VM was killed"; code=124
else log "the guest reported no exit status (QEMU exited with $rc)"; code=125; fi
log "console, last 40 lines:"; tail -n 40 "$tmp/console.log" >&2
[ ! -s "$tmp/qemu.log" ] || { log "QEMU said:"; cat "$tmp/qemu.log" >&2; }
exit $code
