"""The bash skeleton of ``pybuild buildpack new``: bin/detect, bin/build and the layer's programs.

``{{name}}`` placeholders are filled by ``authoring.render``. The scripts need only bash and
busybox, so they run in the tiny build image, the bookworm one and on the host; the layer's
programs are POSIX sh, so they run on every run image (DET-4, DET-5, BLD-1, BLD-3, BLD-10).
"""

from __future__ import annotations

__all__ = ["BUILD", "DETECT", "HELLO", "HELLO_WEB"]

DETECT = """\
#!/usr/bin/env bash
# bin/detect for {{id}}: does this buildpack apply to the app in the current dir?
# Exit 0 to pass, 100 to step aside (not for this app); any other code is an error.
# Arguments: <platform> <plan> (CNB_PLATFORM_DIR and CNB_BUILD_PLAN_PATH name the same).
set -euo pipefail

plan=${CNB_BUILD_PLAN_PATH:-${2:?usage: detect <platform> <plan>}}

# This skeleton passes for every app. To pass only for some, look for their files, e.g.:
#   [[ -f hello.txt ]] || exit 100

# The build plan: provide "hello" and require it, so bin/build gets a "hello" entry.
# (A real buildpack may require what an earlier one provides, such as "python".)
cat >>"$plan" <<'TOML'
[[provides]]
name = "hello"

[[requires]]
name = "hello"
TOML
"""

BUILD = """\
#!/usr/bin/env bash
# bin/build for {{id}}: runs when detect passed, in the app dir.
# Arguments: <layers> <platform> <plan> (CNB_LAYERS_DIR, CNB_PLATFORM_DIR, CNB_BP_PLAN_PATH).
# Makes one launch layer, "hello", from the files under layer/, and declares two
# processes in launch.toml: web (the default) and hello.
set -euo pipefail

layers_dir=${CNB_LAYERS_DIR:-${1:?usage: build <layers> <platform> <plan>}}
bp_dir=${CNB_BUILDPACK_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
layer=$layers_dir/hello
greeting=${BP_GREETING:-Hello} # pybuild build --env BP_GREETING=Howdy ...

echo "---> {{id}} {{version}}"

# What the layer is made from: the files under layer/ and the greeting. A layer whose
# hello.toml records the same hash is kept as it is instead of being made again.
content_hash=$(
  {
    cd "$bp_dir/layer" && find . -type f | LC_ALL=C sort | xargs sha256sum
    printf 'greeting=%s\\n' "$greeting"
  } | sha256sum | cut -d' ' -f1
)

if [[ -f $layer.toml ]] && grep -qx "content-hash = \\"$content_hash\\"" "$layer.toml"; then
  echo "     Reusing layer hello (content hash ${content_hash:0:12} unchanged)"
else
  echo "     Making layer hello (content hash ${content_hash:0:12})"
  rm -rf "$layer"
  mkdir -p "$layer/env.launch"
  cp -R "$bp_dir/layer/." "$layer/"
  chmod -R u+w,a+rX "$layer"
  # env.launch/: variables the app's processes get (.default: only if not set already).
  printf '%s' "$greeting" >"$layer/env.launch/HELLO_GREETING.default"
fi

# launch = true puts the layer in the app image, where its bin/ is on PATH;
# [metadata] is the buildpack's own record of the layer, kept with it.
cat >"$layer.toml" <<TOML
[types]
launch = true
build = false
cache = false

[metadata]
content-hash = "$content_hash"
version = "{{version}}"
TOML

# The app's processes: found on PATH in the hello layer's bin/.
cat >"$layers_dir/launch.toml" <<'TOML'
[[processes]]
type = "web"
command = ["hello-web"]
default = true

[[processes]]
type = "hello"
command = ["hello"]
TOML
echo "     Processes: web (default) serves a page on \\$PORT, hello prints a greeting"
"""

HELLO = """\
#!/bin/sh
# The "hello" process: prints a greeting (HELLO_GREETING comes from the layer's env.launch/).
echo "${HELLO_GREETING:-Hello} from {{id}} {{version}} on $(uname -m), running as uid $(id -u)"
"""

HELLO_WEB = """\
#!/bin/sh
# The "web" process: serves this layer's www/ on $PORT (default 8080) with the first
# server the run image has: busybox httpd (pybuild/run:tiny) or python3 (bookworm).
set -eu
root=$(cd "$(dirname "$0")/../www" && pwd)
port=${PORT:-8080}
echo "hello-web: serving $root on port $port"
if command -v busybox >/dev/null 2>&1 && busybox --list | grep -qx httpd; then
  exec busybox httpd -f -p "0.0.0.0:$port" -h "$root"
fi
if command -v python3 >/dev/null 2>&1; then
  exec python3 -m http.server "$port" --bind 0.0.0.0 --directory "$root"
fi
echo "hello-web: this run image has neither busybox httpd nor python3" >&2
exit 1
"""
