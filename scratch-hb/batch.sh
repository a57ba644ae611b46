#!/bin/bash
cd /work/main
for i in 1 2 3; do
  for k in events hb meta; do
    TAG=base timeout 200 node_modules/.bin/tsx scratch-hb/follow-run.ts $k survivor > scratch-hb/b-base-$k-$i.log 2>&1
    grep SUMMARY scratch-hb/b-base-$k-$i.log || echo "NO SUMMARY base $k $i"
    TAG=fast FOLLOW=./follow-fast.ts timeout 200 node_modules/.bin/tsx scratch-hb/follow-run.ts $k survivor > scratch-hb/b-fast-$k-$i.log 2>&1
    grep SUMMARY scratch-hb/b-fast-$k-$i.log || echo "NO SUMMARY fast $k $i"
  done
done
