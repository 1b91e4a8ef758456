#!/usr/bin/env bash
# make demo: build samples/python-http with the default builder into the local store,
# run it, fetch a page from it, and print the image digest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBUILD=${PYBUILD:-.venv/bin/pybuild}
PORT=${PORT:-8080}

need=()
for tool in bwrap:bubblewrap mmdebstrap:mmdebstrap busybox:busybox-static; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -x /bin/bash-static ] || need+=(bash-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "demo needs: ${need[*]} (sudo apt-get install ${need[*]})" >&2; exit 1
  fi
fi

echo "==> pybuild build demo-app --path samples/python-http"
digest=$("$PYBUILD" build demo-app --path samples/python-http | tee /dev/stderr | tail -n 1)

# serve: run the image, print its first page, stop it.
serve() {
  "$PYBUILD" run demo-app -e PORT="$PORT" &
  app=$!
  trap 'kill $app 2>/dev/null || true' EXIT
  page=
  for _ in $(seq 1 150); do
    if page=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1).read().decode())" 2>/dev/null); then
      break
    fi
    sleep 0.2
  done
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  echo "${page:?the app did not answer on port $PORT}"
}

echo "==> pybuild run demo-app (port $PORT)"
serve

echo "==> image digest"
echo "$digest"

echo "==> pybuild rebase demo-app --run-image pybuild/run:bookworm-2 (the patched base)"
"$PYBUILD" rebase demo-app --run-image pybuild/run:bookworm-2

echo "==> pybuild run demo-app, now on the patched base"
serve
