#!/usr/bin/env bash
# Two builds of the shop, each in its own virtualenv and gunicorn on a unix socket, and the
# router in front on port 8000. Run from the repository root: bash examples/two_builds/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="${RUN_DIR:-/tmp/shop-two-builds}"
mkdir -p "$run"
export COHORTROUTE_STORE="sqlite:///$run/routing.db"

# The builds run as daemons: stop them when the router stops (Ctrl-C), and stop any an earlier
# run left behind before starting new ones on the same sockets.
stop_builds() {
  for release in 2026.11 2026.12; do
    pidfile="$run/shop-$release.pid"
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}
stop_builds
trap stop_builds EXIT

for release in 2026.11 2026.12; do
  venv="$run/venv-$release"
  if [ ! -x "$venv/bin/gunicorn" ]; then
    python3 -m venv "$venv"
    # Each build installs its own dependencies; cohortroute only for the Signals middleware.
    "$venv/bin/pip" install -q gunicorn "cohortroute @ file://$here/../.."
  fi
  "$venv/bin/gunicorn" --chdir "$here/releases/$release" --bind "unix:$run/shop-$release.sock" \
    --workers 2 --pid "$run/shop-$release.pid" --daemon shop.app:application
done

export SHOP_2026_11="unix:$run/shop-2026.11.sock" SHOP_2026_12="unix:$run/shop-2026.12.sock"
echo "router on http://127.0.0.1:8000 (try: curl -H 'Host: acme.shop.test' 127.0.0.1:8000/)"
echo "pin a tenant: cohortroute --store $COHORTROUTE_STORE pin acme 2026.12"
echo "Ctrl-C stops the router and both builds"
gunicorn --chdir "$here" --bind 127.0.0.1:8000 --workers 2 router:app
