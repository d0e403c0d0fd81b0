#!/bin/sh
# journald.sh: a tiny migration-aware service for the lpmlab hooks example.
# It appends a numbered line to its journal every 0.2 s while /run/journal/state is
# "running", and holds still while it is "paused" (the pre hook pauses it for the move).
# Each line carries the registration generation, so a test can see the post hook ran.
mkdir -p /var/lib/journal /run/journal
echo $$ > /run/journal/pid
echo running > /run/journal/state
[ -f /run/journal/registered ] || echo 1 > /run/journal/registered
n=$(wc -l < /var/lib/journal/journal 2>/dev/null || echo 0)
while :; do
    if [ "$(cat /run/journal/state)" = running ]; then
        n=$((n + 1))
        echo "$n gen=$(cat /run/journal/registered)" >> /var/lib/journal/journal
    fi
    sleep 0.2
done
