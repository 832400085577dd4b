#!/bin/bash
# usage: rot.sh EVENTS ROUNDS tree1 tree2 ...
ev=$1; n=$2; shift 2
for i in $(seq $n); do for t in "$@"; do
  d=$(mktemp -d)
  PYTHONPATH=$t/src PAYGUARD_RULESET=$t/rules/default.yaml PAYGUARD_DATA_DIR=$d /usr/bin/time -o $d/time -f '%U %S' /work/main/.venv/bin/python -m payguard.cli replay $ev -o $d/out.jsonl >/dev/null 2>&1
  echo "$t $(cat $d/time)" | awk '{print $1, $2+$3}'; rm -rf $d
done; done
