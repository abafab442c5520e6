#!/bin/sh
# Live capture on zfs-fuse 0.7.0 (this machine), same block format as ../shared/fixtures.
# Pool name "tank" in the blocks is substituted for the random pool name used.
set -u
P=$1; D=$2
run() { echo "=====BEGIN $*"; "$@" 2>&1; echo "=====END rc=$?"; }
truncate -s 256M $D/a $D/b
zpool create -f $P $D/a >/dev/null 2>&1
zfs create $P/ds; echo hi > /$P/ds/f
zfs snapshot $P/ds@s1; zfs snapshot $P/ds@s2
run zfs version
run zfs snapshot $P/ds@m1 $P/ds@m2
run zfs snapshot $P/ds@s1
run zfs create $P/ds
zfs send $P/ds@s1 | zfs recv $P/r1
echo "=====BEGIN zfs send $P/ds@s1 | zfs recv $P/r1"; zfs send $P/ds@s1 | zfs recv $P/r1 2>&1; echo "=====END rc=$?"
zfs snapshot $P/r1@local
echo "=====BEGIN zfs send -i $P/ds@s1 $P/ds@s2 | zfs recv $P/r1"; zfs send -i $P/ds@s1 $P/ds@s2 | zfs recv $P/r1 2>&1; echo "=====END rc=$?"
echo "=====BEGIN zfs send -i $P/ds@s1 $P/ds@s2 | zfs recv $P/r4"; zfs send -i $P/ds@s1 $P/ds@s2 | zfs recv $P/r4 2>&1; echo "=====END rc=$?"
echo "=====BEGIN zfs recv $P/r2 < /dev/null"; zfs recv $P/r2 </dev/null 2>&1; echo "=====END rc=$?"
run zfs hold t1 $P/ds@s1
run zfs hold t1 $P/ds@s1
run zfs destroy $P/ds@s1
run zfs release t1 $P/ds@s1
run zfs release t1 $P/ds@s1
run zfs get -Hp -o name,property,value receive_resume_token $P/ds
run zfs get -Hp -d 1 -o name,property,value guid,createtxg,creation,used $P/ds
run zfs list -H -o name $P/ds@nope
run zpool status nopool
run zpool status $P
dd if=/dev/urandom of=/$P/ds/big bs=1M count=180 2>/dev/null
sync
run zpool scrub $P
run zpool status $P
run zpool scrub -s $P
run zpool status $P
zpool destroy $P
