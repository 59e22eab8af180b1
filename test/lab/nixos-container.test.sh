#!/usr/bin/env bash
# Self-test for test/lab/nixos-container (the nixos-container test stand-in).
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
cp "$here/nixos-container" /run/scratch/bin/nixos-container
chmod 0755 /run/scratch/bin/nixos-container
export PATH=/run/scratch/bin:$PATH
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

# has_addr [NETNS] IFACE ADDR PREFIXLEN: `ip -j addr` lists it.
has_addr() {
  local nsargs=()
  if [[ $# == 4 ]]; then nsargs=(-n "$1"); shift; fi
  ip "${nsargs[@]}" -j addr show dev "$1" 2>/dev/null |
    jq -e --arg a "$2" --argjson p "$3" \
      'any(.[].addr_info[]; .local == $a and .prefixlen == $p)' >/dev/null
}

# route_is DST DEV [GATEWAY] (host); route_in NETNS DST DEV [GATEWAY]
route_is() { route_in "" "$@"; }
route_in() {
  local nsargs=()
  if [[ -n "$1" ]]; then nsargs=(-n "$1"); fi
  local dst=$2 dev=$3 gw=${4:-}
  ip "${nsargs[@]}" -j route show 2>/dev/null |
    jq -e --arg d "$dst" --arg dev "$dev" --arg gw "$gw" \
      'any(.[]; .dst == $d and .dev == $dev and ($gw == "" or .gateway == $gw))' >/dev/null
}

# ip, not /sys/class/net: /sys here is still the machine's sysfs.
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
netns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
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
check "create does not start" not netns_exists foo
check "create makes no ve- link" not link_exists ve-foo

expect_ok "create bar: second automatic allocation, flake, auto-start" create bar --auto-start --flake 'github:acme/infra#web'
check "bar gets 10.233.2.x" test "$ERR" = "host IP is 10.233.2.1, container IP is 10.233.2.2"
same "bar.conf: AUTO_START=1 and FLAKE without #attr" $CONFDIR/bar.conf $'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.2.1\nLOCAL_ADDRESS=10.233.2.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=1\nFLAKE=github:acme/infra\n'
check "bar root dir exists" test -d $STATEDIR/bar

: > $CONFDIR/empty.conf
expect_err "an empty conf kills every create (read_file ... or die, like the real one)" nonzero "Died" create e1
rm -f $CONFDIR/empty.conf
expect_ok "a configFile in a missing directory still builds (like the real one)" create cf1 --config-file /nonexistent/dir/x.nix
check "... with imports = [ ] and no error" grep -qE 'imports = \[ *\];' $STATEDIR/cf1/etc/nixos/configuration.nix
expect_ok "destroy cf1" destroy cf1

mkdir -p /etc/nixos-container-stand-in && touch /etc/nixos-container-stand-in/fail-flake-builds
expect_err "a failed flake build fails the create (like the real one)" nonzero "failed to build container from flake" create flk --flake 'github:acme/infra#web'
check "a failed flake build leaves its conf, as the real one does" test -f $CONFDIR/flk.conf
rm -f /etc/nixos-container-stand-in/fail-flake-builds
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
check "netns foo exists" netns_exists foo
check "host side ve-foo has 10.233.1.1/32" has_addr ve-foo 10.233.1.1 32
check "container side eth0 has 10.233.1.2/32" has_addr foo eth0 10.233.1.2 32
check "no host0 left inside" not ip -n foo link show host0 2>/dev/null
check "ve-foo is up" test "$(ip -j link show dev ve-foo | jq -r '.[0].flags | index("UP") != null')" = true
check "host route to 10.233.1.2 via ve-foo" route_is 10.233.1.2 ve-foo
check "container route to 10.233.1.1 via eth0" route_in foo 10.233.1.1 eth0
check "container default route via 10.233.1.1" route_in foo default eth0 10.233.1.1
check "lo is up in the container" test "$(ip -n foo -j link show dev lo | jq -r '.[0].flags | index("UP") != null')" = true
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
check "no netns foo" not netns_exists foo
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
check "no netns after destroy" not netns_exists foo
check "no ve-foo after destroy" not link_exists ve-foo
check "no conf after destroy" not test -e $CONFDIR/foo.conf
check "no root dir after destroy" not test -e $STATEDIR/foo
nc status foo
check "status of a destroyed container prints gone" test "$OUT" = gone
check "status of a destroyed container exits non-zero (2)" test "$RC" = 2
expect_ok "destroy again exits 0" destroy foo
expect_ok "create after destroy reuses the first free addresses" create foo2
check "foo2 gets 10.233.1.x" test "$ERR" = "host IP is 10.233.1.1, container IP is 10.233.1.2"

ln -s /run/scratch/decl.conf $CONFDIR/decl.conf
printf 'PRIVATE_NETWORK=1\nHOST_ADDRESS=10.240.0.1\nLOCAL_ADDRESS=10.240.0.2\n' >/run/scratch/decl.conf
expect_err "destroy refuses a declarative (symlinked) conf" nonzero "cannot destroy declarative container" destroy decl
check "declarative conf left alone" test -L $CONFDIR/decl.conf
rm $CONFDIR/decl.conf

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
check "failed start leaves no netns" not netns_exists brc
check "failed start leaves no vb-brc" not link_exists vb-brc
ip link add br0 type bridge
ip link set br0 up
ip addr add 10.252.0.1/24 dev br0
expect_ok "start brc with br0" start brc
check "vb-brc is enslaved to br0" test "$(ip -j link show vb-brc | jq -r '.[0].master')" = br0
check "no ve-brc with a bridge" not link_exists ve-brc
check "no host address on vb-brc" not has_addr vb-brc 10.252.0.1 32
check "container eth0 has 10.252.0.2/32" has_addr brc eth0 10.252.0.2 32
sleep 1 # bridge port forwarding delay is 0 for a new port? give it a moment
expect_ok "run brc -- ping the bridge address" run brc -- "${PING[@]}" 10.252.0.1
expect_ok "destroy brc" destroy brc
check "no vb-brc after destroy" not link_exists vb-brc
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

# ---------------------------------------------------------------- cleanup ----
for c in $(nixos-container list); do nixos-container destroy "$c"; done
check "everything destroyed: no confs" test -z "$(ls -A $CONFDIR)"
check "everything destroyed: no netns" test -z "$(ip netns list)"
check "everything destroyed: no ve-/vb- links" test -z "$(ip -o link show | grep -E ': v[eb]-' || true)"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
