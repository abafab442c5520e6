#!/bin/sh
# Live capture on OpenZFS 2.3.2 in the test VM (vm/openzfs-vm.sh), in the
# block format of ../README.md: what resumable sends say when their state
# went stale, raw sends of encrypted datasets, and missing pools. Run as
# root in a fresh guest:
#   vm/openzfs-vm.sh ssh --run-dir DIR sh -s <resume-capture.sh >resume-capture.txt
# Pool "tank" lives on a file in the guest's RAM; the key is a fixed test
# passphrase fed on stdin.
set -u
P=tank
run() { echo "=====BEGIN $*"; "$@" 2>&1; echo "=====END rc=$?"; }
pipe() { echo "=====BEGIN $1"; sh -c "$1" 2>&1; echo "=====END rc=$?"; }
fill() { dd if=/dev/urandom of="$1" bs=1M count=8 2>/dev/null; }
cut3m() { zfs send "$@" | head -c 3000000 | zfs recv -s "$last" 2>/dev/null; }
token() { zfs get -H -o value receive_resume_token "$1"; }

truncate -s 512M /tmp/zc-capture
zpool create -f $P /tmp/zc-capture
zfs create $P/src
for s in a b c; do fill /$P/src/$s; zfs snapshot $P/src@$s; done
run zfs version

# 1. The token's snapshot destroyed on the source, then one of the same name.
last=$P/dst1; cut3m $P/src@a
T1=$(token $P/dst1)
run zfs destroy $P/src@a
pipe "zfs send -t $T1 >/dev/null"
zfs snapshot $P/src@a
pipe "zfs send -t $T1 >/dev/null"
run zfs destroy $P/src@a

# 2. The partial state destroyed on the target (zfs receive -A), full stream.
last=$P/dst2; cut3m $P/src@b
T2=$(token $P/dst2)
run zfs receive -A $P/dst2
pipe "zfs send -t $T2 | zfs receive -s $P/dst2"
run zfs receive -A $P/dst2

# 3. The same for an incremental: the target keeps @b, the partial b..c goes.
zfs send $P/src@b | zfs recv $P/dst3
last=$P/dst3; cut3m -i @b $P/src@c
T3=$(token $P/dst3)
run zfs receive -A $P/dst3
pipe "zfs send -t $T3 | zfs receive -s $P/dst3"
run zfs receive -A $P/dst3

# 4. A token that is not one; a non-resuming stream into partial state.
pipe "zfs send -t 1-0000-garbage >/dev/null"
last=$P/dst4; cut3m $P/src@b
pipe "zfs send $P/src@b | zfs receive -s $P/dst4"

# 5. Missing pools and datasets.
run zfs list -H -o name nopool/x
run zfs get -H -o value receive_resume_token nopool/x
pipe "zfs send nopool/x@s >/dev/null"
pipe "zfs send $P/src@nope >/dev/null"
run zpool import nopool
run zpool status nopool

# 6. Native encryption: raw and non-raw sends.
echo 'capture-passphrase' | zfs create -o encryption=aes-256-gcm -o keyformat=passphrase -o keylocation=prompt $P/enc
fill /$P/enc/f; zfs snapshot $P/enc@s1
fill /$P/enc/g; zfs snapshot $P/enc@s2
run zfs get -H -p -o name,property,value encryption,keystatus,encryptionroot,keyformat $P/enc $P/src
pipe "zfs send -w $P/enc@s1 | zfs receive $P/rawdst"
run zfs get -H -p -o name,property,value encryption,keystatus,encryptionroot,keylocation $P/rawdst
pipe "zfs send -i @s1 $P/enc@s2 | zfs receive $P/rawdst"
pipe "zfs send -w -i @s1 $P/enc@s2 | zfs receive $P/rawdst"
pipe "zfs send $P/enc@s1 | zfs receive $P/plaindst"
run zfs get -H -p -o name,property,value encryption,keystatus $P/plaindst
run zfs unload-key $P/enc
pipe "zfs send $P/enc@s2 >/dev/null"
pipe "zfs send -w $P/src@a >/dev/null"

zpool destroy $P
rm -f /tmp/zc-capture
