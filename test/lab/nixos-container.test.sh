#!/usr/bin/env bash
# Self-test for test/lab/nixos-container (the nixos-container test stand-in)
# and test/lab/nixos-host-stand-in (its systemctl, machinectl, nix-env, nix).
#
# Runs the stand-in only inside a throwaway scratch environment: new network,
# mount and PID namespaces (unshare), a tmpfs over /run, and overlays whose
# upper layer lives on that tmpfs over /etc and /var/lib. Nothing on the
# machine is changed; the scratch network namespace has only `lo`, so no packet
# can leave; processes are killed only by PID inside the scratch PID namespace.
#
# Usage: sudo bash test/lab/nixos-container.test.sh   (prints "N passed, N failed")
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ "${1:-}" != --inside ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "nixos-container.test.sh: needs root (unshare, mount, ip netns)" >&2
    exit 2
  fi
  exec unshare --net --mount --pid --fork --mount-proc --propagation private \
    bash "$here/nixos-container.test.sh" --inside
fi

for tool in ip jq unshare flock perl; do
  command -v "$tool" >/dev/null || { echo "nixos-container.test.sh: needs $tool" >&2; exit 2; }
done

# ---------------------------------------------------------------- scratch ----
# NETWORK SAFETY: refuse to go on unless this is a fresh network namespace.
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
if [[ "$links" != "lo " ]]; then
  echo "refusing to run: not in a fresh network namespace (links: $links)" >&2
  exit 2
fi

mount -t tmpfs nixos-container-test /run
mkdir -p /run/scratch/etc/u /run/scratch/etc/w /run/scratch/varlib/u /run/scratch/varlib/w /run/scratch/bin
mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/scratch/etc/u,workdir=/run/scratch/etc/w /etc
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=/run/scratch/varlib/u,workdir=/run/scratch/varlib/w /var/lib
for m in /etc /var/lib; do
  if [[ $(findmnt -n -o FSTYPE --mountpoint "$m" | tail -1) != overlay ]]; then
    echo "refusing to run: $m is not the scratch overlay" >&2
    exit 2
  fi
done
# Only whiteouts in the scratch upper layer: start from an empty layout even
# on a machine that has containers of its own.
rm -rf /etc/nixos-containers /var/lib/nixos-containers /etc/containers /var/lib/containers /etc/nixos-container-legacy
rm -rf /etc/nixos-container-stand-in /var/lib/nix-stand-in
install -m 0755 "$here/nixos-container" /run/scratch/bin/nixos-container
install -m 0755 "$here/nixos-host-stand-in" /run/scratch/bin/nixos-host-stand-in
for tool in systemctl machinectl nix-env nix nix-instantiate; do
  ln -s nixos-host-stand-in "/run/scratch/bin/$tool"
done
# A channel, so that <nixpkgs/nixos> resolves through Nix's default nix-path.
CHANNEL=/var/lib/nix-stand-in/var/nix/profiles/per-user/root/channels/nixpkgs
mkdir -p "$CHANNEL/nixos"
export PATH=/run/scratch/bin:$PATH HOME=/root
unset NIX_PATH
mkdir -p /run/scratch/cwd && cd /run/scratch/cwd
ip link set lo up

# ---------------------------------------------------------------- helpers ----
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
nok() { failed=$((failed + 1)); echo "not ok - $1"; [[ -z "${2:-}" ]] || printf '    %s\n' "$2"; }

# nc ARGS...: run the stand-in, capture stdout/stderr/exit in OUT/ERR/RC.
nc() {
  set +e
  OUT=$(nixos-container "$@" 2>/run/scratch/stderr)
  RC=$?
  set -e
  ERR=$(cat /run/scratch/stderr)
}

# check DESC CMD...: CMD succeeds.
check() {
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else nok "$desc" "command: $*"; fi
}

# expect_ok DESC ARGS...: stand-in exits 0.
expect_ok() {
  local desc=$1
  shift
  nc "$@"
  if [[ $RC == 0 ]]; then ok "$desc"; else nok "$desc" "exit $RC, stderr: $ERR"; fi
}

# expect_err DESC CODE|nonzero WORDING ARGS...: stand-in fails with that code and stderr wording.
expect_err() {
  local desc=$1 code=$2 wording=$3
  shift 3
  nc "$@"
  if [[ $RC == 0 ]]; then
    nok "$desc" "exited 0, stdout: $OUT"
  elif [[ $code != nonzero && $RC != "$code" ]]; then
    nok "$desc" "exit $RC, wanted $code; stderr: $ERR"
  elif [[ "$ERR" != *"$wording"* ]]; then
    nok "$desc" "stderr lacks '$wording': $ERR"
  else
    ok "$desc"
  fi
}

# same DESC FILE EXPECTED: file content byte for byte.
same() {
  local desc=$1 file=$2 expected=$3
  if [[ -f "$file" ]] && cmp -s "$file" <(printf '%s' "$expected"); then
    ok "$desc"
  else
    nok "$desc" "$(diff <(printf '%s' "$expected") "$file" 2>&1 | head -20 | tr '\n' '|')"
  fi
}

# leader NAME: the PID machinectl knows for the container (fails when none).
leader() { machinectl show "$1" -p Leader --value 2>/dev/null; }
running() { [[ -n "$(leader "$1")" ]]; }
# cip NAME ARGS...: `ip ARGS...` in the container's (anonymous) network namespace.
cip() { local l; l=$(leader "$1") || return 1; shift; nsenter -t "$l" -n ip "$@"; }
unit_state() { systemctl show -p ActiveState --value "container@$1"; }
state_is() { [[ "$(unit_state "$1")" == "$2" ]]; }
unit_sub() { systemctl show -p SubState --value "container@$1"; }
knob() { mkdir -p "$(dirname "/etc/nixos-container-stand-in/$1")"; printf '%s' "$2" >"/etc/nixos-container-stand-in/$1"; }
noknob() { rm -f "/etc/nixos-container-stand-in/$1"; }
# until_true SECONDS CMD...: CMD succeeds within SECONDS.
until_true() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < end)) || return 1; sleep 0.05; done
}

# has_addr [CONTAINER] IFACE ADDR PREFIXLEN: `ip -j addr` lists it.
has_addr() {
  local run=(ip)
  if [[ $# == 4 ]]; then run=(cip "$1"); shift; fi
  "${run[@]}" -j addr show dev "$1" 2>/dev/null |
    jq -e --arg a "$2" --argjson p "$3" \
      'any(.[].addr_info[]; .local == $a and .prefixlen == $p)' >/dev/null
}

# route_is DST DEV [GATEWAY] (host); route_in NETNS DST DEV [GATEWAY]
route_is() { route_in "" "$@"; }
route_in() {
  local run=(ip)
  if [[ -n "$1" ]]; then run=(cip "$1"); fi
  local dst=$2 dev=$3 gw=${4:-}
  "${run[@]}" -j route show 2>/dev/null |
    jq -e --arg d "$dst" --arg dev "$dev" --arg gw "$gw" \
      'any(.[]; .dst == $d and .dev == $dev and ($gw == "" or .gateway == $gw))' >/dev/null
}

# ip, not /sys/class/net: /sys here is still the machine's sysfs.
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
link_up() { ip -j link show dev "$1" 2>/dev/null | jq -e '.[0].flags | index("UP") != null' >/dev/null; }
not() { ! "$@"; }

# Ping from inside the container. Debian lab hosts have ping; this machine may
# not, then perl's Net::Ping (ICMP, root) stands in for it.
if command -v ping >/dev/null; then
  PING=(ping -c1 -W1)
else
  PING=(perl -MNet::Ping -e 'exit(Net::Ping->new("icmp", 1)->ping($ARGV[0]) ? 0 : 1)')
fi

CONFDIR=/etc/nixos-containers
STATEDIR=/var/lib/nixos-containers

# ------------------------------------------------------------ create/list ----
expect_ok "create foo (automatic addresses)" create foo --config 'services.openssh.enable = true;'
check "create prints the addresses on stderr" test "$ERR" = "host IP is 10.233.1.1, container IP is 10.233.1.2"
check "create prints nothing on stdout" test -z "$OUT"
same "foo.conf byte for byte" $CONFDIR/foo.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n'
same "foo configuration.nix as create writes it" $STATEDIR/foo/etc/nixos/configuration.nix \
  $'{ config, lib, pkgs, ... }:\n\n{ boot.isContainer = true;\n  networking.hostName = lib.mkDefault "foo";\n  networking.useDHCP = false;\n  services.openssh.enable = true;\n}\n'
check "create does not start" not running foo
check "create makes no ve- link" not link_exists ve-foo

expect_ok "create bar: second automatic allocation, flake, auto-start" create bar --auto-start --flake 'github:acme/infra#web'
check "bar gets 10.233.2.x" test "$ERR" = "host IP is 10.233.2.1, container IP is 10.233.2.2"
same "bar.conf: AUTO_START=1 and FLAKE without #attr" $CONFDIR/bar.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.2.1\nLOCAL_ADDRESS=10.233.2.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=1\nFLAKE=github:acme/infra\n'
check "a flake create makes no root dir (the unit's start does)" test ! -e $STATEDIR/bar
check "a flake build leaves no .tmp link in the working directory when it succeeds" test ! -e .tmp
check "bar has a system profile" test -e /var/lib/nix-stand-in/var/nix/profiles/per-container/bar/system/init

: > $CONFDIR/empty.conf
expect_err "an empty conf kills every create (read_file ... or die, like the real one)" nonzero "Died" create e1
rm -f $CONFDIR/empty.conf
expect_ok "a configFile in a missing directory still builds (like the real one)" create cf1 --config-file /nonexistent/dir/x.nix
check "... with imports = [ ] and no error" grep -qE 'imports = \[ *\];' $STATEDIR/cf1/etc/nixos/configuration.nix
expect_ok "destroy cf1" destroy cf1

knob fail-flake-builds ""
expect_err "a failed flake build fails the create (like the real one)" nonzero "failed to build container from flake" create flk --flake 'github:acme/infra#web'
check "a failed flake build leaves its conf, as the real one does" test -f $CONFDIR/flk.conf
check "... and its profile directory" test -d /var/lib/nix-stand-in/var/nix/profiles/per-container/flk
noknob fail-flake-builds
knob fail-builds ""
expect_err "a failed nix-env build fails the create" nonzero "failed to build initial container configuration" create nb1
check "... and clears the container's state (conf, root, profile)" test ! -e $CONFDIR/nb1.conf -a ! -e $STATEDIR/nb1 -a ! -e /var/lib/nix-stand-in/var/nix/profiles/per-container/nb1
noknob fail-builds
NIX_PATH='' nc create np1
check "with an empty NIX_PATH <nixpkgs/nixos> does not resolve: create fails naming the search path" \
  test "$RC" != 0 -a -n "$(grep -F "file 'nixpkgs/nixos' was not found in the Nix search path" <<<"$ERR")"
check "... and leaves no conf" test ! -e $CONFDIR/np1.conf
NIX_PATH="nixpkgs=$CHANNEL" nc create np2
check "with NIX_PATH=nixpkgs=DIR it resolves" test "$RC" = 0
expect_ok "destroy np2" destroy np2
knob build-seconds 1
start_s=$SECONDS
expect_ok "a build takes build-seconds" create slow1
check "... (at least 1 s)" test $((SECONDS - start_s)) -ge 1
noknob build-seconds
expect_ok "destroy slow1" destroy slow1
expect_ok "destroy removes the failed create's conf" destroy flk
check "no conf after destroy" test ! -e $CONFDIR/flk.conf

expect_ok "options anywhere on the line, explicit addresses" --host-address 10.250.0.1 create baz --port tcp:8080:80 --local-address 10.250.0.2
same "baz.conf byte for byte" $CONFDIR/baz.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.250.0.1\nLOCAL_ADDRESS=10.250.0.2\nHOST_BRIDGE=\nHOST_PORT=tcp:8080:80\nAUTO_START=0\n'

expect_ok "create qux with prefixed addresses" create qux --host-address 10.233.3.1/24 --local-address 10.233.3.2/24
expect_ok "show-ip strips the prefix" show-ip qux
check "show-ip qux = 10.233.3.2" test "$OUT" = "10.233.3.2"
expect_ok "create auto: prefixed addresses are not seen as used (like the real one)" create auto3
check "auto3 gets 10.233.3.x" test "$ERR" = "host IP is 10.233.3.1, container IP is 10.233.3.2"
expect_ok "destroy auto3" destroy auto3
expect_ok "destroy qux" destroy qux

expect_ok "list" list
check "list prints one name per conf" test "$OUT" = $'bar\nbaz\nfoo'

expect_ok "status foo" status foo
check "status of a created container is down" test "$OUT" = down
expect_ok "show-ip foo" show-ip foo
check "show-ip foo = 10.233.1.2" test "$OUT" = 10.233.1.2

# ------------------------------------------------------------- start/stop ----
expect_ok "start foo" start foo
expect_ok "status foo after start" status foo
check "status is up" test "$OUT" = up
check "the container has a leader" running foo
check "its network namespace is anonymous (no /run/netns/foo)" test ! -e /run/netns/foo
check "unit is active/running" test "$(unit_state foo)/$(unit_sub foo)" = active/running
check "host side ve-foo has 10.233.1.1/32" has_addr ve-foo 10.233.1.1 32
check "container side eth0 has 10.233.1.2/32" has_addr foo eth0 10.233.1.2 32
check "no host0 left inside" not cip foo link show host0 2>/dev/null
check "ve-foo is up" test "$(ip -j link show dev ve-foo | jq -r '.[0].flags | index("UP") != null')" = true
check "host route to 10.233.1.2 via ve-foo" route_is 10.233.1.2 ve-foo
check "container route to 10.233.1.1 via eth0" route_in foo 10.233.1.1 eth0
check "container default route via 10.233.1.1" route_in foo default eth0 10.233.1.1
check "lo is up in the container" test "$(cip foo -j link show dev lo | jq -r '.[0].flags | index("UP") != null')" = true
expect_ok "run foo -- ping the host address" run foo -- "${PING[@]}" 10.233.1.1
check "host pings the container address" "${PING[@]}" 10.233.1.2
nc run foo -- sh -c 'exit 3'
check "run passes the command's exit code" test "$RC" = 3
nc run foo -- sh -c 'ip -o addr show dev eth0'
check "run runs inside the container's network namespace" grep -q 10.233.1.2 <<<"$OUT"
expect_ok "start of a running container is a no-op" start foo
check "still one address on ve-foo" test "$(ip -j addr show dev ve-foo | jq '[.[].addr_info[] | select(.family == "inet")] | length')" = 1

expect_ok "stop foo" stop foo
expect_ok "status foo after stop" status foo
check "status is down" test "$OUT" = down
check "no leader" not running foo
check "unit is inactive" test "$(unit_state foo)" = inactive
check "no ve-foo" not link_exists ve-foo
expect_ok "stop of a stopped container succeeds" stop foo
expect_err "terminate of a stopped container fails" nonzero "unable to get container's main PID" terminate foo
expect_err "run in a stopped container fails" nonzero "unable to get container's main PID" run foo -- true

expect_ok "restart foo (from stopped)" restart foo
check "up after restart" test "$(nixos-container status foo)" = up
nixos-container run foo -- sleep 300 &
sleep_pid=$!
sleep 0.3
expect_ok "stop foo with a process inside" stop foo
sleep 0.3
check "the container's process was killed" not kill -0 "$sleep_pid" 2>/dev/null
wait "$sleep_pid" 2>/dev/null || true
check "no ve-foo after stopping with a process inside" not link_exists ve-foo
expect_ok "start foo again" start foo
expect_ok "terminate a running container" terminate foo
check "down after terminate" test "$(nixos-container status foo)" = down

# stale ve-NAME is removed before start (preStart)
ip link add ve-foo type veth peer name stale0
expect_ok "start with a stale ve-foo" start foo
check "the stale pair is gone (its peer stale0 too)" not link_exists stale0
check "ve-foo's peer is in the container" test "$(ip -j link show dev ve-foo | jq -r '.[0].link_netnsid != null')" = true
check "ve-foo has the host address" has_addr ve-foo 10.233.1.1 32

# ---------------------------------------------------------------- destroy ----
expect_ok "destroy a running container" destroy foo
check "no leader after destroy" not running foo
check "no ve-foo after destroy" not link_exists ve-foo
check "no conf after destroy" not test -e $CONFDIR/foo.conf
check "no root dir after destroy" not test -e $STATEDIR/foo
nc status foo
check "status of a destroyed container prints gone" test "$OUT" = gone
check "status of a destroyed container exits non-zero (2)" test "$RC" = 2
expect_ok "destroy again exits 0" destroy foo
expect_ok "create after destroy reuses the first free addresses" create foo2
check "foo2 gets 10.233.1.x" test "$ERR" = "host IP is 10.233.1.1, container IP is 10.233.1.2"

# A declarative conf links into the store, which is mounted read-only.
mkdir -p /run/scratch/store && mount -t tmpfs store /run/scratch/store
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.240.0.1\nLOCAL_ADDRESS=10.240.0.2\n' >/run/scratch/store/decl.conf
mount -o remount,ro /run/scratch/store
ln -s /run/scratch/store/decl.conf $CONFDIR/decl.conf
expect_err "destroy refuses a declarative conf (not writable: a link into the read-only store)" nonzero "cannot destroy declarative container" destroy decl
check "declarative conf left alone" test -L $CONFDIR/decl.conf
rm $CONFDIR/decl.conf
umount /run/scratch/store

# ----------------------------------------------------------------- errors ----
expect_err "--config with --config-file" nonzero "--config and --config-file are mutually incompatible. Please define one or the other, but not both" create x --config a --config-file /dev/null
expect_err "--host-address without --local-address" nonzero "With --host-address set, --local-address is required as well!" create x --host-address 10.1.1.1
expect_err "--local-address without --host-address" nonzero "With --host-address set, --local-address is required as well!" create x --local-address 10.1.1.2
expect_err "invalid name" nonzero "invalid container name" create 'bad!name'
expect_err "invalid name on start too" nonzero "invalid container name" start 'a.b'
expect_err "name too long (12)" nonzero "container name ‘abcdefghijkl’ is too long" create abcdefghijkl
expect_ok "name of 11 characters is fine" create abcdefghijk
expect_ok "destroy it" destroy abcdefghijk
expect_err "existing container" nonzero "container ‘bar’ already exists" create bar
for a in start stop show-ip restart terminate update run; do
  expect_err "$a of an unknown container: does not exist, exit 2" 2 "container ‘nope’ does not exist" $a nope
done
expect_err "unknown action" nonzero "unknown action ‘frob’" frob bar
expect_err "unknown action on unknown container reports the container" 2 "container ‘nope’ does not exist" frob nope
expect_err "unknown option exits 1" 1 "Unknown option" create x --frobnicate
expect_err "no action" nonzero "no action specified"
expect_err "no container name" nonzero "no container name specified" start
check "nothing was created by the failing commands" test "$(nixos-container list | tr '\n' ' ')" = "bar baz foo2 "

# ----------------------------------------------------------------- update ----
cp $CONFDIR/bar.conf /run/scratch/bar.conf.before
expect_err "update --config of a container made from a flake fails: etc/nixos was never made (like the real one)" nonzero "cannot write" update bar --config 'services.nginx.enable = true;'
mkdir -p $STATEDIR/bar/etc/nixos
expect_ok "update accepts --config" update bar --config 'services.nginx.enable = true;' --host-address 10.9.9.1 --local-address 10.9.9.2
check "update writes configuration.nix" grep -q 'services.nginx.enable = true;' $STATEDIR/bar/etc/nixos/configuration.nix
check "update leaves the conf alone (like the real one)" cmp -s $CONFDIR/bar.conf /run/scratch/bar.conf.before
expect_ok "update without options" update bar

# ----------------------------------------------------------- unique names ----
expect_ok "--ensure-unique-name" create bar --ensure-unique-name
check "prints the chosen name" test "$OUT" = bar-0
check "bar-0.conf written" test -f $CONFDIR/bar-0.conf
expect_ok "destroy bar-0" destroy bar-0

# ----------------------------------------------------------------- bridge ----
expect_ok "create with --bridge" create brc --bridge br0 --host-address 10.252.0.1 --local-address 10.252.0.2
same "brc.conf byte for byte" $CONFDIR/brc.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.252.0.1\nLOCAL_ADDRESS=10.252.0.2\nHOST_BRIDGE=br0\nHOST_PORT=\nAUTO_START=0\n'
expect_err "start with a missing bridge fails" nonzero "failed to start container" start brc
check "failed start leaves no leader" not running brc
check "a failed start restarts (Restart=on-failure) or ends failed" test "$(unit_state brc)" != active
# Restart=on-failure tries again (each try makes vb-brc and removes it on failing): wait for the start limit.
check "the restarts end failed (start limit)" until_true 20 state_is brc failed
check "failed start leaves no vb-brc" not link_exists vb-brc
ip link add br0 type bridge
ip link set br0 up
ip addr add 10.252.0.1/24 dev br0
systemctl stop container@brc
systemctl reset-failed container@brc
expect_ok "start brc with br0" start brc
check "vb-brc is enslaved to br0" test "$(ip -j link show vb-brc | jq -r '.[0].master')" = br0
check "no ve-brc with a bridge" not link_exists ve-brc
check "no host address on vb-brc" not has_addr vb-brc 10.252.0.1 32
check "container eth0 has 10.252.0.2/32" has_addr brc eth0 10.252.0.2 32
sleep 1 # bridge port forwarding delay is 0 for a new port? give it a moment
expect_ok "run brc -- ping the bridge address" run brc -- "${PING[@]}" 10.252.0.1
expect_ok "destroy brc" destroy brc
check "no vb-brc after destroy" not link_exists vb-brc
# Empty addresses, as the provider passes them for a bridged container without hostAddress: Getopt takes
# '' as a value, so nothing is allocated and the conf holds them empty (nixos-container.pl: `unless
# (defined $hostAddress)`).
expect_ok "create --bridge with empty addresses" create brn --bridge br0 --host-address '' --local-address ''
same "brn.conf: empty addresses, none allocated" $CONFDIR/brn.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=\nLOCAL_ADDRESS=\nHOST_BRIDGE=br0\nHOST_PORT=\nAUTO_START=0\n'
expect_ok "start brn (no address: --network-bridge implies --network-veth)" start brn
check "vb-brn is up (nspawn's join_bridge sets IFF_UP with the master)" link_up vb-brn
check "vb-brn has master br0" test "$(ip -j link show vb-brn | jq -r '.[0].master')" = br0
check "brn has eth0 (host0 renamed: HOST_BRIDGE is set) without IPv4 address" \
  test "$(cip brn -j addr show dev eth0 | jq '[.[0].addr_info[] | select(.family == "inet")] | length')" = 0
check "brn has no default route (no HOST_ADDRESS)" not route_in brn default eth0
# LOCAL_ADDRESS with a prefix goes onto eth0 verbatim (container-init: ip addr add $LOCAL_ADDRESS dev eth0).
expect_ok "create --bridge with a prefixed local address only" create brp --bridge br0 --host-address '' --local-address 10.252.0.5/24
expect_ok "start brp" start brp
check "brp eth0 has 10.252.0.5/24" has_addr brp eth0 10.252.0.5 24
check "no host address on vb-brp (postStart skips a bridged container)" \
  test "$(ip -j addr show dev vb-brp | jq '[.[0].addr_info[] | select(.family == "inet")] | length')" = 0
expect_ok "run brp -- ping the bridge address over the /24" run brp -- "${PING[@]}" 10.252.0.1
# A gateway: HOST_ADDRESS with a bridge is the route and default route inside, never a host address.
expect_ok "create --bridge with a gateway" create brg --bridge br0 --host-address 10.252.0.1 --local-address 10.252.0.6/24
expect_ok "start brg" start brg
check "brg: default route via HOST_ADDRESS" route_in brg default eth0 10.252.0.1
check "brg: vb-brg carries no address" \
  test "$(ip -j addr show dev vb-brg | jq '[.[0].addr_info[] | select(.family == "inet")] | length')" = 0
for c in brn brp brg; do nixos-container destroy "$c"; done
check "no vb- links left after destroying brn, brp, brg" test -z "$(ip -o link show | grep -E ': vb-' || true)"
check "destroy leaves the bridge" link_exists br0
# Not a bridge: systemd-nspawn's setup_bridge fails ("Failed to add interface vb-NAME to bridge BR") and
# nspawn exits, taking the veth with its namespace (src/nspawn/nspawn-network.c: join_bridge).
ip link add nb0 type veth peer name nb1
expect_ok "create brx --bridge nb0 (a veth, not a bridge)" create brx --bridge nb0 --host-address '' --local-address ''
expect_err "start with a non-bridge as bridge fails" nonzero "failed to start container" start brx
check "... the restarts end failed (start limit)" until_true 20 state_is brx failed
check "... leaves no leader" not running brx
check "... leaves no vb-brx" not link_exists vb-brx
systemctl stop container@brx
expect_ok "destroy brx" destroy brx
ip link del nb0
ip link del br0

# ------------------------------------------------------------- concurrency ----
for i in 1 2 3 4 5; do nixos-container create "par$i" 2>/dev/null & done
wait
check "5 parallel creates get 5 distinct host addresses" \
  test "$(grep -h '^HOST_ADDRESS=' $CONFDIR/par*.conf | sort -u | wc -l)" = 5
for i in 1 2 3 4 5; do nixos-container destroy "par$i"; done

# -------------------------------------------------------- out of addresses ----
for n in $(seq 1 254); do
  printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.%d.1\nLOCAL_ADDRESS=10.233.%d.2\n' "$n" "$n" >$CONFDIR/full$n.conf
done
expect_err "out of IP addresses" nonzero "out of IP addresses" create last
check "no conf written when out of addresses" not test -e $CONFDIR/last.conf
rm -f $CONFDIR/full*.conf

# ----------------------------------------------------------------- legacy ----
touch /etc/nixos-container-legacy
expect_ok "legacy layout: create" create leg
check "legacy conf in /etc/containers" test -f /etc/containers/leg.conf
check "legacy root in /var/lib/containers" test -d /var/lib/containers/leg
check "legacy list shows only the legacy dir" test "$(nixos-container list)" = leg
check "legacy allocation scans only its own dir" test "$ERR" = "host IP is 10.233.1.1, container IP is 10.233.1.2"
expect_ok "legacy start" start leg
check "legacy start makes ve-leg" has_addr ve-leg 10.233.1.1 32
expect_ok "legacy destroy" destroy leg
check "legacy destroy removes everything" not test -e /etc/containers/leg.conf -o -e /var/lib/containers/leg
check "legacy destroy removes ve-leg" not link_exists ve-leg
rm /etc/nixos-container-legacy

# ------------------------------------------------- container@.service ----
expect_ok "create u1" create u1 --host-address 10.241.0.1 --local-address 10.241.0.2
mkdir -p /etc/nixos-container-stand-in/u1 && printf 2 >/etc/nixos-container-stand-in/u1/boot-seconds
nixos-container start u1 2>/dev/null &
start_pid=$!
check "a booting unit is activating" until_true 2 state_is u1 activating
check "... and status prints down (only ActiveState=active is up)" test "$(nixos-container status u1)" = down
check "... its eth0 is addressed at the start of the boot (container-init)" until_true 2 has_addr u1 eth0 10.241.0.2 32
check "... the host end has no address before READY (postStart)" not has_addr ve-u1 10.241.0.1 32
wait "$start_pid"
check "systemctl start waits for READY" test "$(unit_state u1)" = active
check "the host end is addressed after READY" has_addr ve-u1 10.241.0.1 32

# destroy while activating: the real one terminates only an active unit
expect_ok "stop u1" stop u1
nixos-container start u1 2>/dev/null &
start_pid=$!
until_true 2 has_addr u1 eth0 10.241.0.2 32
sleep 0.3 # past the start of stage 2 (the boot takes 2 s)
expect_ok "destroy of an activating container succeeds" destroy u1
check "... removes the conf" test ! -e $CONFDIR/u1.conf
check "... but the container keeps booting (orphan)" running u1
wait "$start_pid" || true
check "... and comes up holding its address" has_addr ve-u1 10.241.0.1 32
systemctl stop container@u1
check "systemctl stop ends the orphan" not running u1
rm -rf $STATEDIR/u1 /etc/nixos-container-stand-in/u1

# TimeoutStartSec and Restart=on-failure
expect_ok "create u2" create u2 --host-address 10.241.1.1 --local-address 10.241.1.2
knob u2/boot-seconds 3
knob u2/timeout-start-sec 1
knob u2/restart-sec 2
expect_err "a boot longer than TimeoutStartSec fails the start" nonzero "failed to start container" start u2
check "... systemctl says a timeout was exceeded" grep -q "a timeout was exceeded" <<<"$ERR"
check "... the unit waits to restart (activating/auto-restart)" test "$(unit_state u2)/$(unit_sub u2)" = activating/auto-restart
check "... its Result is timeout" test "$(systemctl show -p Result --value container@u2)" = timeout
check "... and restarts by itself, with a new leader" until_true 3 running u2
check "... whose directories are made again by the start script" test -d $STATEDIR/u2/etc
systemctl stop container@u2
check "a stop during a restarted start ends inactive (a new start resets Result)" test "$(unit_state u2)" = inactive
knob u2/restart-sec 5
expect_err "the start fails again" nonzero "failed to start container" start u2
systemctl stop container@u2
check "a stop while waiting to restart leaves the unit failed" test "$(unit_state u2)" = failed
check "... no leader, no ve-u2" test -z "$(leader u2)" -a -z "$(ip -o link show dev ve-u2 2>/dev/null)"
systemctl reset-failed container@u2
check "reset-failed makes it inactive" test "$(unit_state u2)" = inactive
rm -rf /etc/nixos-container-stand-in/u2
expect_ok "start u2 after reset-failed" start u2

# update of a running container: rebuild, then reload (ReloadingState)
knob u2/reload-seconds 1
nixos-container update u2 --config 'services.nginx.enable = true;' 2>/dev/null &
upd_pid=$!
check "a reload shows as ActiveState=reloading" until_true 3 state_is u2 reloading
check "... and status prints down meanwhile" test "$(nixos-container status u2)" = down
wait "$upd_pid"
check "back to active after the reload" test "$(unit_state u2)" = active
knob u2/fail-reloads ""
expect_err "a failed reload fails the update" nonzero "failed to reload container" update u2 --config 'x = 1;'
check "... the unit stays active" test "$(unit_state u2)" = active
rm -rf /etc/nixos-container-stand-in/u2

# stop while stopping, and the stop time
knob u2/stop-seconds 1
systemctl stop container@u2 &
stop_pid=$!
check "a stopping unit is deactivating" until_true 2 state_is u2 deactivating
check "... and is not active for destroy either" test "$(nixos-container status u2)" = down
wait "$stop_pid"
check "stop waits until the container is down" test "$(unit_state u2)" = inactive
rm -rf /etc/nixos-container-stand-in/u2
expect_ok "destroy u2" destroy u2

# a FLAKE conf without a profile: the unit's start script builds it first
expect_ok "create fk1 from a flake" create fk1 --flake 'github:acme/infra#fk1' --host-address 10.241.2.1 --local-address 10.241.2.2
rm -rf /var/lib/nix-stand-in/var/nix/profiles/per-container/fk1
expect_ok "start fk1 without a profile" start fk1
check "... the start ran nixos-container update (profile built)" test -e /var/lib/nix-stand-in/var/nix/profiles/per-container/fk1/system/init
check "... the rebuilt flake attribute is the default, not fk1 (the conf keeps no #attr)" \
  grep -q 'nixosConfigurations."container"' /var/lib/nix-stand-in/var/nix/profiles/per-container/fk1/system/what
expect_ok "destroy fk1" destroy fk1

# other units: there is no systemd
set +e
systemctl restart sshd 2>/run/scratch/stderr
rc=$?
set -e
check "systemctl of another unit fails as without systemd" test "$rc" = 1 -a -n "$(grep -F 'not been booted with systemd' /run/scratch/stderr)"

# ------------------------------------------------------------------- IPv6 ----
# nixos-container.pl has no IPv6 options: `create` writes no *_ADDRESS6 key; a conf gets
# HOST_ADDRESS6/LOCAL_ADDRESS6 from the declarative module (or whoever edits it). The unit then does
# (nixos-containers.nix): container-init `ip -6 addr add $LOCAL_ADDRESS6 dev eth0`, `ip -6 route add
# $HOST_ADDRESS6 dev eth0`, `ip -6 route add default via $HOST_ADDRESS6`; postStart `ip -6 addr add
# "$HOST_ADDRESS6" dev ve-NAME`, `ip -6 route add "$LOCAL_ADDRESS6" dev ve-NAME`.
# route6_in [CONTAINER] DST DEV [GATEWAY]: `ip -6 -j route` lists it (host when CONTAINER is "").
route6_in() {
  local run=(ip)
  if [[ -n "$1" ]]; then run=(cip "$1"); fi
  local dst=$2 dev=$3 gw=${4:-}
  "${run[@]}" -6 -j route show 2>/dev/null |
    jq -e --arg d "$dst" --arg dev "$dev" --arg gw "$gw" \
      'any(.[]; .dst == $d and .dev == $dev and ($gw == "" or .gateway == $gw))' >/dev/null
}
# no_tentative [CONTAINER]: no IPv6 address is still doing duplicate address detection.
no_tentative() {
  local run=(ip)
  if [[ -n "${1:-}" ]]; then run=(cip "$1"); fi
  [[ "$("${run[@]}" -6 -j addr show tentative | jq '[.[].addr_info[]] | length')" == 0 ]]
}
inet_count() { ip -j addr show dev "$1" | jq --arg f "$2" '[.[].addr_info[] | select(.family == $f and .scope == "global")] | length'; }

expect_err "create has no --host-address6 (unknown option, exit 1, like the real one)" 1 "Unknown option: host-address6" create v6x --host-address6 fc00::1 --local-address6 fc00::2
expect_err "... nor --local-address6" 1 "Unknown option: local-address6" create v6x --local-address6 fc00::2
check "... and made nothing" test ! -e $CONFDIR/v6x.conf

# dual stack: IPv4 from create, IPv6 keys appended to the conf (the declarative module writes them after
# HOST_ADDRESS / LOCAL_ADDRESS; systemd's EnvironmentFile does not care about the order)
expect_ok "create v6a (IPv4 from create)" create v6a --host-address 10.243.0.1 --local-address 10.243.0.2
same "create writes no IPv6 key" $CONFDIR/v6a.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.243.0.1\nLOCAL_ADDRESS=10.243.0.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n'
printf 'HOST_ADDRESS6=fc00:243::1\nLOCAL_ADDRESS6=fc00:243::2\n' >>$CONFDIR/v6a.conf
expect_ok "start v6a with HOST_ADDRESS6/LOCAL_ADDRESS6" start v6a
check "container eth0 has LOCAL_ADDRESS6 as /128 (ip -6 addr add without a length)" has_addr v6a eth0 fc00:243::2 128
check "... and still LOCAL_ADDRESS" has_addr v6a eth0 10.243.0.2 32
check "container route to HOST_ADDRESS6 on eth0" route6_in v6a fc00:243::1 eth0
check "container IPv6 default route via HOST_ADDRESS6" route6_in v6a default eth0 fc00:243::1
check "container IPv4 default route unchanged" route_in v6a default eth0 10.243.0.1
check "host end ve-v6a has HOST_ADDRESS6 as /128 (postStart)" has_addr ve-v6a fc00:243::1 128
check "... and HOST_ADDRESS" has_addr ve-v6a 10.243.0.1 32
check "host route to LOCAL_ADDRESS6 on ve-v6a (postStart)" route6_in "" fc00:243::2 ve-v6a
check "addresses go through DAD as on a real host (no nodad): settled within 5 s" until_true 5 no_tentative v6a
until_true 5 no_tentative || true
check "host pings the container over IPv6" until_true 3 "${PING[@]}" fc00:243::2
expect_ok "run v6a -- ping HOST_ADDRESS6" run v6a -- "${PING[@]}" fc00:243::1
expect_ok "show-ip prefers LOCAL_ADDRESS (like the real one)" show-ip v6a
check "show-ip v6a = 10.243.0.2" test "$OUT" = 10.243.0.2
expect_ok "stop v6a" stop v6a
check "stop removes ve-v6a and with it the IPv6 route" test -z "$(ip -6 route show fc00:243::2)" -a -z "$(ip -o link show dev ve-v6a 2>/dev/null)"

# IPv6 only (the declarative module leaves HOST_ADDRESS/LOCAL_ADDRESS out when unset): still a veth
expect_ok "create v6b" create v6b --host-address 10.243.1.1 --local-address 10.243.1.2
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS6=fc00:243:1::1\nLOCAL_ADDRESS6=fc00:243:1::2\nAUTO_START=0\n' >$CONFDIR/v6b.conf
expect_ok "start v6b (IPv6 only)" start v6b
check "v6b: the host end is ve-v6b with only an IPv6 global address" test "$(inet_count ve-v6b inet)/$(inet_count ve-v6b inet6)" = 0/1
check "v6b: eth0 has LOCAL_ADDRESS6" has_addr v6b eth0 fc00:243:1::2 128
check "v6b: no IPv4 default route inside" test -z "$(cip v6b -4 route show default)"
check "v6b: IPv6 default route via HOST_ADDRESS6" route6_in v6b default eth0 fc00:243:1::1
expect_ok "show-ip of an IPv6-only conf prints LOCAL_ADDRESS6" show-ip v6b
check "show-ip v6b = fc00:243:1::2" test "$OUT" = fc00:243:1::2
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS6=FC00:243:1::1\nLOCAL_ADDRESS6=FC00:243:1::2/64\n' >$CONFDIR/v6b.conf
expect_err "show-ip matches only lower-case hex (like the real one's [0-9a-f:]+)" nonzero "cannot get IP address" show-ip v6b
expect_ok "stop v6b" stop v6b

# a prefix length: LOCAL_ADDRESS6 may carry one (eth0 gets the /64 and its on-link route); HOST_ADDRESS6 may
# not: container-init's `ip -6 route add default via ADDR/LEN` is an error, and the container does not start
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS6=fc00:243:2::1\nLOCAL_ADDRESS6=fc00:243:2::2/64\n' >$CONFDIR/v6b.conf
expect_ok "start v6b with LOCAL_ADDRESS6=.../64" start v6b
check "eth0 has fc00:243:2::2/64" has_addr v6b eth0 fc00:243:2::2 64
check "... the host routes the whole /64 to ve-v6b (ip -6 route add \"\$LOCAL_ADDRESS6\")" route6_in "" fc00:243:2::/64 ve-v6b
expect_ok "stop v6b" stop v6b
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS6=fc00:243:3::1/64\nLOCAL_ADDRESS6=fc00:243:3::2/64\n' >$CONFDIR/v6b.conf
knob v6b/restart-sec 5
expect_err "HOST_ADDRESS6 with a prefix length fails the start (default via ADDR/LEN)" nonzero "failed to start container" start v6b
check "... and leaves no leader" until_true 2 not running v6b
systemctl stop container@v6b
noknob v6b/restart-sec
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS6=fc00:243:4::1\nLOCAL_ADDRESS6=fc00:243:4::2\nLOCAL_MAC_ADDRESS=de:b7:73:01:10:90\n' >$CONFDIR/v6b.conf
expect_ok "start v6b with LOCAL_MAC_ADDRESS" start v6b
check "container-init sets eth0's MAC address" test "$(cip v6b -j link show dev eth0 | jq -r '.[0].address')" = de:b7:73:01:10:90
check "... and its IPv6 address" has_addr v6b eth0 fc00:243:4::2 128
expect_ok "destroy v6b" destroy v6b
expect_ok "destroy v6a" destroy v6a

# a bridge: postStart gives the host end no address at all (only for HOST_BRIDGE empty); inside the same
ip link add br6 type bridge
ip link set br6 up
expect_ok "create v6c --bridge br6" create v6c --bridge br6 --host-address 10.243.5.1 --local-address 10.243.5.2/24
printf 'HOST_ADDRESS6=fc00:243:5::1\nLOCAL_ADDRESS6=fc00:243:5::2/64\n' >>$CONFDIR/v6c.conf
ip addr add 10.243.5.1/24 dev br6
ip -6 addr add fc00:243:5::1/64 dev br6 nodad
expect_ok "start v6c in br6" start v6c
check "vb-v6c has no global IPv6 address" test "$(inet_count vb-v6c inet6)" = 0
check "no host route to LOCAL_ADDRESS6 via vb-v6c" not route6_in "" fc00:243:5::2/64 vb-v6c
check "eth0 has fc00:243:5::2/64" has_addr v6c eth0 fc00:243:5::2 64
check "IPv6 default route via HOST_ADDRESS6 inside" route6_in v6c default eth0 fc00:243:5::1
check "the bridge pings the container over IPv6" until_true 5 "${PING[@]}" fc00:243:5::2
expect_ok "destroy v6c" destroy v6c
ip link del br6

# ---------------------------------------------------------------- cleanup ----
for c in $(nixos-container list); do nixos-container destroy "$c"; done
check "everything destroyed: no confs" test -z "$(ls -A $CONFDIR)"
check "everything destroyed: no machines" test -z "$(machinectl list)"
check "everything destroyed: no ve-/vb- links" test -z "$(ip -o link show | grep -E ': v[eb]-' || true)"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
