#!/usr/bin/env bash
# Runs one program inside a small throwaway qemu VM that has real V4L2 kernel
# drivers loaded, so tests can exercise real V4L2 ioctls on a machine without a
# camera or a hardware codec:
#   vivid    virtual camera (a module of Debian's stock kernel),
#   vicodec  virtual stateful memory-to-memory FWHT encoder/decoder, plus the
#            v4l2-mem2mem helper it needs; Debian ships neither, so they are built
#            here, out of tree, from linux-source against Debian's kernel headers;
#   sch_netem network delay, jitter and loss (`tc qdisc … netem`), which the
#            host's kernel may lack; the VM's loopback is there to impair;
#   snd-aloop the kernel's ALSA loopback sound card (what is played into device 0
#            is captured from device 1), for real ALSA capture and playback.
#
#   scripts/v4l2-vm.sh --setup
#       Installs the missing Debian packages, downloads Debian's current kernel and
#       builds the modules into .tools/vm/<kernel version>/. Idempotent; instant when
#       everything is there; a newer Debian kernel just gets its own build.
#   scripts/v4l2-vm.sh [--file SRC:DEST]... [--env NAME=VALUE]... -- PROGRAM [ARGS...]
#       Runs the setup, boots the VM (KVM when /dev/kvm is usable, else emulation),
#       runs PROGRAM ARGS in it and exits with PROGRAM's exit code, or 125 when the
#       VM failed (crash, timeout, a module that did not load). Nothing leaves the VM:
#       it has no network and no disk.
#
# Inside the VM: busybox, the modules, PROGRAM and each --file (SRC from the host,
# copied to the absolute path DEST; a directory is copied whole). A PROGRAM or
# --file that is a dynamic executable brings the shared libraries ldd lists. A
# PROGRAM given as a path is copied to the same absolute path; a bare name is a
# busybox applet when busybox has it (e.g. sh), else it is looked up in our PATH.
# PROGRAM runs as root in /tmp with stdin /dev/null; its stdout and stderr come
# back separately and unaltered on ours (through serial ports 2 and 3; the kernel
# console is port 1 and stays hidden unless something fails).
# With the default module options the nodes are: /dev/video0 vivid capture
# (single-planar), then vicodec's stateful encoder, stateful decoder and stateless
# decoder (multiplanar: VIDEO_M2M_MPLANE).
#
# Environment knobs:
#   V4L2_VM_TIMEOUT=300           seconds before the VM is killed (exit 125)
#   V4L2_VM_MEM=1024              guest memory in MiB
#   V4L2_VM_VIVID_OPTS="n_devs=1 node_types=0x1"   vivid module options
#   V4L2_VM_VICODEC_OPTS="multiplanar=1"            vicodec module options
#   V4L2_VM_VERBOSE=1             also show the VM console (kernel, init) on stderr
#   V4L2_VM_KERNEL_ARGS=...       extra kernel command line (e.g. loglevel=7)
#   V4L2_VM_ACCEL=auto            kvm, tcg (CPU emulation), or auto: kvm when /dev/kvm
#                                 is usable (not PVM, which cannot run Debian's kernel)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$repo/.tools/vm"
# Bump when the layout of a kernel's cache folder changes, to force a rebuild.
cache_format=2
# Modules to load; their dependencies are added, in order, from modules.dep.
# sch_netem (delay, jitter and loss, which this host's kernel lacks) serves
# tests/tests/lossy.rs; snd-aloop (the ALSA loopback sound card) the robot's ALSA
# capture and playback.
top_modules=(vivid vicodec sch_netem snd-aloop)

log() { echo "v4l2-vm: $*" >&2; }
die() {
  log "error: $*"
  exit 125
}
as_root() {
  if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

apt_updated=false
apt_update() {
  $apt_updated && return 0
  log "apt-get update"
  as_root apt-get update -qq
  apt_updated=true
}

# Installs those of the given Debian packages that are not installed yet.
ensure_packages() {
  local pkg missing=() installed
  installed=" $(dpkg-query -W -f='${Package}=${Status} ' "$@" 2>/dev/null || true)"
  for pkg in "$@"; do
    [[ $installed == *" $pkg=install ok installed "* ]] || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  apt_update
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sets kver (e.g. 6.1.0-56-amd64) and kpkgver (e.g. 6.1.192-2) from the package
# linux-image-amd64 currently depends on. apt-cache takes ~1 s here (no binary
# cache), so the answer is kept until the package lists change.
resolve_kernel() {
  local lists memo="$cache/resolved" answer=""
  lists=$(stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null || true)
  if [[ -n $lists && -f $memo && $(sed '$d' "$memo") == "$lists" ]]; then
    answer=$(tail -n 1 "$memo")
  else
    # "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)" -> "6.1.0-56-amd64 6.1.192-2"
    answer=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
      sed -n 's/^Depends: .*linux-image-\([0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n 1) || true
    if [[ -z $answer ]] && ! $apt_updated; then
      apt_update
      resolve_kernel
      return
    fi
    [[ -n $answer ]] || die "cannot find the kernel package that linux-image-amd64 depends on"
    mkdir -p "$cache"
    printf '%s\n%s\n' "$lists" "$answer" >"$memo"
  fi
  read -r kver kpkgver <<<"$answer"
}

# apt-get download into the current directory; refreshes stale package lists once.
download() {
  local sandbox=()
  ((EUID != 0)) || sandbox=(-o APT::Sandbox::User=root)
  apt-get download -qq "${sandbox[@]}" "$@" >/dev/null 2>&1 && return 0
  apt_update
  apt-get download -qq "${sandbox[@]}" "$@" >/dev/null
}

# Writes the kernel for qemu -kernel to $3: the uncompressed ELF vmlinux out of
# the bzImage $1 when the kernel can boot it directly (PVH entry point, see
# config $2): under emulation this skips seconds of decompression. Else the bzImage.
extract_vmlinux() {
  local bzimage=$1 config=$2 out=$3 offset
  cp "$bzimage" "$out"
  grep -qx 'CONFIG_PVH=y' "$config" || return 0
  # The payload is the first xz stream (Debian builds with CONFIG_KERNEL_XZ).
  offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bzimage" | head -n 1 | cut -d: -f1) || true
  [[ -n $offset ]] || return 0
  # (xz stops reading at the end of the stream: no pipe, or tail's SIGPIPE fails it.)
  if xz -dcq --single-stream < <(tail -c +"$((offset + 1))" "$bzimage") >"$out.elf" 2>/dev/null &&
    [[ $(head -c 4 "$out.elf" | od -An -c | tr -d ' ') == '177ELF' ]]; then
    mv "$out.elf" "$out"
  else
    rm -f "$out.elf"
  fi
}

# Builds .tools/vm/$kver/: kernel, modules/*.ko and modules/load-order.
build_kernel_cache() {
  local work="$cache/$kver.partial" kbuild="/usr/src/linux-headers-$kver"
  local series src m
  series=$(cut -d. -f1,2 <<<"$kver")
  src="linux-source-$series"
  rm -rf "$work"
  mkdir -p "$work/debs" "$work/image" "$work/src" "$work/build" "$work/modules" "$work/empty"

  log "downloading Debian kernel $kver ($kpkgver) and $src"
  (cd "$work/debs" && download "linux-image-$kver=$kpkgver" "$src=$kpkgver")

  log "extracting the kernel and its modules"
  dpkg-deb -x "$work/debs/linux-image-${kver}_"*.deb "$work/image"
  extract_vmlinux "$work/image/boot/vmlinuz-$kver" "$work/image/boot/config-$kver" "$work/kernel"

  # Only the few source files needed, straight out of the big tarball.
  log "extracting vicodec and v4l2-mem2mem sources from $src"
  dpkg-deb --fsys-tarfile "$work/debs/${src}_"*.deb |
    tar -xO "./usr/src/$src.tar.xz" |
    tar -xJ -C "$work/src" --strip-components=1 \
      "$src/drivers/media/test-drivers/vicodec" \
      "$src/drivers/media/v4l2-core/v4l2-mem2mem.c"
  cp "$work/src/drivers/media/test-drivers/vicodec/"*.[ch] \
    "$work/src/drivers/media/v4l2-core/v4l2-mem2mem.c" "$work/build/"
  cat >"$work/build/Kbuild" <<'EOF'
obj-m := v4l2-mem2mem.o vicodec.o
vicodec-y := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o
EOF

  log "building v4l2-mem2mem.ko and vicodec.ko"
  if ! make -C "$kbuild" M="$work/build" -j"$(nproc)" modules >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    die "module build failed (full log: $work/build.log)"
  fi
  local vermagic
  vermagic=$(modinfo -F vermagic "$work/build/vicodec.ko")
  [[ $vermagic == "$kver "* ]] || die "vicodec.ko has vermagic '$vermagic', expected $kver"

  # Resolve the load order with depmod/modprobe over the image's module tree,
  # with the new modules added to it.
  local moddir="$work/image/lib/modules/$kver"
  mkdir -p "$moddir/extra"
  cp "$work/build/v4l2-mem2mem.ko" "$work/build/vicodec.ko" "$moddir/extra/"
  depmod -b "$work/image" "$kver"
  local path order=()
  for m in "${top_modules[@]}"; do
    while read -r path; do
      [[ " ${order[*]} " == *" $path "* ]] || order+=("$path")
    done < <(modprobe -C "$work/empty" -d "$work/image" -S "$kver" --show-depends "$m" |
      sed -n 's/^insmod \([^ ]*\).*/\1/p')
  done
  ((${#order[@]})) || die "modprobe found no modules to load"
  : >"$work/modules/load-order"
  for path in "${order[@]}"; do
    cp "$path" "$work/modules/"
    basename "$path" >>"$work/modules/load-order"
  done

  rm -rf "$work/debs" "$work/image" "$work/src" "$work/empty"
  echo "$stamp" >"$work/ready"
  rm -rf "${cache:?}/$kver"
  mv "$work" "$cache/$kver"
  log "kernel $kver ready: $(tr '\n' ' ' <"$cache/$kver/modules/load-order")"
  # Builds for kernels Debian has since replaced are of no further use.
  local old
  for old in "$cache"/*/ready; do
    [[ $old == "$cache/$kver/ready" ]] || rm -rf "$(dirname "$old")"
  done
}

# Picks the kernel (kver, kdir, stamp); true when its build is already cached.
kernel_ready() {
  resolve_kernel
  kdir="$cache/$kver"
  stamp="$kver $kpkgver format=$cache_format modules=${top_modules[*]}"
  [[ -f $kdir/ready && $(<"$kdir/ready") == "$stamp" ]]
}

setup() {
  [[ $(dpkg --print-architecture) == amd64 ]] || die "only amd64 Debian hosts are supported"
  ensure_packages qemu-system-x86 busybox-static kmod cpio xz-utils make
  kernel_ready && return 0
  # A build is due: fresh package lists first, so that the kernel chosen is one the
  # archive still serves (a machine image's lists may predate its last update).
  apt_update
  kernel_ready && return 0

  mkdir -p "$cache"
  # One builder at a time; a waiting one finds the work done.
  exec {lock}>"$cache/.lock"
  flock "$lock"
  if ! [[ -f $kdir/ready && $(<"$kdir/ready") == "$stamp" ]]; then
    ensure_packages "linux-headers-$kver"
    build_kernel_cache
  fi
  exec {lock}>&-
}

# Single-quotes a word for the VM's /bin/sh.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Copies the shared libraries (and the dynamic loader) a host executable needs
# into the VM tree, at the paths ldd reports.
declare -A copied_libs=()
add_libs() {
  local exe=$1 out lib
  out=$(ldd "$exe" 2>&1) || return 0 # static or not an ELF executable
  if grep -q 'not found' <<<"$out"; then
    die "$exe: missing shared libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  fi
  while read -r lib; do
    [[ -n ${copied_libs[$lib]:-} ]] && continue
    copied_libs[$lib]=1
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(grep -o '/[^ ]*' <<<"$out")
}

# Copies host path $1 to absolute path $2 in the VM tree.
add_file() {
  local src=$1 dest=$2
  [[ -e $src ]] || die "no such file: $src"
  [[ $dest == /* ]] || die "destination must be an absolute path: $dest"
  mkdir -p "$root$(dirname "$dest")"
  if [[ -d $src ]]; then
    mkdir -p "$root$dest"
    cp -rL "$src/." "$root$dest/"
    local exe
    while IFS= read -r -d '' exe; do
      add_libs "$exe"
    done < <(find -L "$src" -type f -perm -u+x -print0)
  else
    rm -f "$root$dest" # may be a busybox applet link
    # Executables go in without debug info (a Rust test binary sheds ~90% of its
    # size), which keeps the initramfs small for the guest's memory.
    if [[ -x $src ]] && command -v objcopy >/dev/null &&
      objcopy --strip-debug "$src" "$root$dest" 2>/dev/null; then
      chmod +x "$root$dest"
    else
      cp -L "$src" "$root$dest"
    fi
    [[ ! -x $src ]] || add_libs "$src"
  fi
}

run() {
  local files=() envs=() arg
  while (($#)); do
    case $1 in
      --file)
        (($# >= 2)) || die "--file needs SRC:DEST"
        [[ $2 == ?*:/* ]] || die "--file wants SRC:DEST with an absolute DEST, got '$2'"
        files+=("$2")
        shift 2
        ;;
      --env)
        (($# >= 2)) || die "--env needs NAME=VALUE"
        [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, got '$2'"
        envs+=("$2")
        shift 2
        ;;
      --)
        shift
        break
        ;;
      *) die "unknown argument '$1' (the program comes after --; see the header of $0)" ;;
    esac
  done
  (($#)) || die "no program given; usage: $0 [--file SRC:DEST]... [--env NAME=VALUE]... -- PROGRAM [ARGS...]"

  setup

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/v4l2-vm.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  root="$tmp/root"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules}

  # busybox; /init adds the applet links.
  local busybox
  busybox=$(command -v busybox) || die "busybox not found"
  cp -L "$busybox" "$root/bin/busybox"
  add_libs "$busybox" # none for busybox-static

  # The modules, and the insmod lines in dependency order.
  local mod name opts insmods=""
  cp "$kdir/modules/"*.ko "$root/lib/modules/"
  while read -r mod; do
    name=${mod%.ko}
    opts=""
    [[ $name != vivid ]] || opts=${V4L2_VM_VIVID_OPTS-n_devs=1 node_types=0x1}
    [[ $name != vicodec ]] || opts=${V4L2_VM_VICODEC_OPTS-multiplanar=1}
    insmods+="insmod /lib/modules/$mod $opts || fail 'insmod $name failed'"$'\n'
  done <"$kdir/modules/load-order"

  for arg in "${files[@]}"; do
    add_file "${arg%%:/*}" "/${arg#*:/}"
  done

  # The program: a busybox applet, a file a --file put there, or a host file.
  local prog=$1 vmprog
  shift
  if [[ $prog != */* ]] && "$busybox" --list | grep -qxF -- "$prog"; then
    vmprog=$prog
  elif [[ $prog == /* && -f $root$prog ]]; then
    vmprog=$prog
  else
    if [[ $prog != */* ]]; then
      prog=$(type -P -- "$prog") || die "program not found: $1"
    fi
    vmprog=$(realpath -s -- "$prog")
    add_file "$prog" "$vmprog"
  fi

  # /init, the VM's first and only process.
  local nonce cmd exports=""
  nonce="v4l2-vm-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  cmd=$(shq "$vmprog")
  for arg in "$@"; do cmd+=" $(shq "$arg")"; done
  for arg in "${envs[@]}"; do exports+="export ${arg%%=*}=$(shq "${arg#*=}")"$'\n'; done
  cat >"$root/init" <<EOF
#!/bin/busybox sh
# Generated by scripts/v4l2-vm.sh.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
# A link per applet, except where PROGRAM or a --file already is.
/bin/busybox --install -s 2>/dev/null
fail() {
  echo "v4l2-vm init: \$*"
  echo "$nonce init-failed"
  poweroff -f
}
mount -t sysfs sysfs /sys
# / (so /tmp too) is the initramfs itself: in memory and writable. No tmpfs over
# /tmp, which would hide a PROGRAM or --file copied there.
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
$insmods
# Wait until every video4linux device has its /dev node.
tries=0
while :; do
  ready=1
  set -- /sys/class/video4linux/*
  [ -e "\$1" ] || ready=0
  for dev in "\$@"; do [ -e "/dev/\${dev##*/}" ] || ready=0; done
  [ \$ready = 1 ] && break
  tries=\$((tries + 1))
  [ \$tries -lt 200 ] || fail "no /dev/video* nodes after 10 s"
  sleep 0.05
done
# The program's stdout and stderr: serial ports 2 and 3, unaltered.
stty -F /dev/ttyS1 raw -echo || fail "stty ttyS1"
stty -F /dev/ttyS2 raw -echo || fail "stty ttyS2"
$exports
cd /tmp
$cmd </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo "$nonce exit=\$?"
poweroff -f
EOF
  chmod 755 "$root/init"
  (cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$tmp/initramfs.cpio"

  local accel=(-accel tcg -cpu max)
  case ${V4L2_VM_ACCEL:-auto} in
    kvm) accel=(-accel kvm -cpu host) ;;
    tcg) ;;
    auto)
      if ! [[ -r /dev/kvm && -w /dev/kvm ]]; then
        log "no usable /dev/kvm: emulating the CPU (slower)"
      elif [[ -d /sys/module/kvm_pvm ]]; then
        # PVM (software KVM of some sandboxes) only runs PVM-aware guest
        # kernels: Debian's kernel hangs there.
        log "/dev/kvm is PVM, which cannot run Debian's kernel: emulating the CPU (slower)"
      else
        accel=(-accel kvm -cpu host)
      fi
      ;;
    *) die "V4L2_VM_ACCEL must be auto, kvm or tcg" ;;
  esac

  # Serial ports -> FIFOs -> our stdout/stderr and the console log. We hold the
  # write ends too, so the readers end even if qemu never opens them.
  mkfifo "$tmp/console" "$tmp/stdout" "$tmp/stderr"
  if [[ ${V4L2_VM_VERBOSE:-} == 1 ]]; then
    tee "$tmp/console.log" <"$tmp/console" >&2 &
  else
    cat <"$tmp/console" >"$tmp/console.log" &
  fi
  readers=($!)
  cat <"$tmp/stdout" &
  readers+=($!)
  cat <"$tmp/stderr" >&2 &
  readers+=($!)
  exec 7>"$tmp/console" 8>"$tmp/stdout" 9>"$tmp/stderr"

  local timeout=${V4L2_VM_TIMEOUT:-300} qemu_rc=0
  timeout "$timeout" qemu-system-x86_64 \
    -nodefaults -no-user-config -display none -nic none -no-reboot \
    "${accel[@]}" -m "${V4L2_VM_MEM:-1024}" -smp 2 \
    -kernel "$kdir/kernel" -initrd "$tmp/initramfs.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off cryptomgr.notests ${V4L2_VM_KERNEL_ARGS:-}" \
    -chardev file,id=console,path="$tmp/console" -serial chardev:console \
    -chardev file,id=stdout,path="$tmp/stdout" -serial chardev:stdout \
    -chardev file,id=stderr,path="$tmp/stderr" -serial chardev:stderr \
    </dev/null 7>&- 8>&- 9>&- &
  qemu_pid=$!
  wait "$qemu_pid" || qemu_rc=$?
  qemu_pid=""
  exec 7>&- 8>&- 9>&-
  wait "${readers[@]}" || true
  readers=()

  local rc
  rc=$(sed -n "s/.*$nonce exit=\([0-9]*\).*/\1/p" "$tmp/console.log" | tail -n 1)
  if [[ -n $rc ]]; then
    exit "$rc"
  fi
  if grep -q "$nonce init-failed" "$tmp/console.log"; then
    log "the VM failed to set up the devices; its console:"
  elif ((qemu_rc == 124)); then
    log "the VM timed out after $timeout s (V4L2_VM_TIMEOUT); its console:"
  else
    log "the VM stopped without reporting an exit code (qemu exit status $qemu_rc); its console:"
  fi
  tail -n 40 "$tmp/console.log" | tr -d '\r' | sed 's/^/  | /' >&2
  exit 125
}

tmp=""
qemu_pid=""
readers=()
cleanup() {
  [[ -z $qemu_pid ]] || kill "$qemu_pid" 2>/dev/null || true
  ((${#readers[@]} == 0)) || kill "${readers[@]}" 2>/dev/null || true
  [[ -z $tmp ]] || rm -rf "$tmp"
}

if [[ ${1:-} == --setup ]]; then
  (($# == 1)) || die "--setup takes no other argument"
  setup
else
  run "$@"
fi
