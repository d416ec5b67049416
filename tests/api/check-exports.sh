#!/bin/sh
# Usage: check-exports.sh LIBVBUS.so LIBBUS.SYM
# The dynamic symbols libvbus.so defines must be exactly the global names of the version script.
set -eu
lib=$1
sym=$2
actual=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' |
        sed 's/@.*//' | sort -u)
expected=$(sed -n '/global:/,/local:/p' "$sym" | grep -v 'global:\|local:' | tr -d ' \t;' | grep . | sort -u)
if [ "$actual" != "$expected" ]; then
        echo "exported symbols differ from $sym:"
        echo "--- expected"
        echo "$expected"
        echo "--- actual"
        echo "$actual"
        exit 1
fi
echo "libvbus exports exactly the $(echo "$expected" | wc -l) symbols of $(basename "$sym")"
