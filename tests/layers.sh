#!/usr/bin/env bash
# Checks that each module of the core uses only the modules listed before
# it (the order of src/lib.rs's "Where things live"), so there is no import
# circle: a service never sees the server that runs it.
#
#   bash tests/layers.sh
set -euo pipefail
cd "$(dirname "$0")/../src"

layers=(config stats service connection server status phy addressing)
failed=0
for i in "${!layers[@]}"; do
    module=${layers[$i]}
    files=$( [ -d "$module" ] && echo "$module" || echo "$module.rs" )
    # Code lines only (doc comments may link anywhere).
    used=$(grep -rhE 'crate::[a-z_]+' "$files" | grep -vE '^\s*//' \
        | grep -oE 'crate::[a-z_]+' | sed 's/crate:://' | sort -u || true)
    for other in $used; do
        for j in "${!layers[@]}"; do
            if [ "${layers[$j]}" = "$other" ] && [ "$j" -ge "$i" ] && [ "$other" != "$module" ]; then
                echo "src/$files uses crate::$other, which comes after it" >&2
                failed=1
            fi
        done
    done
done
[ "$failed" = 0 ] && echo "layers: each module uses only those before it (${layers[*]})"
exit "$failed"
