"""The Python skeleton of ``pybuild buildpack new``: the same buildpack as the bash one, in Python 3.

``{{name}}`` placeholders are filled by ``authoring.render``. Every script starts with
``#!/usr/bin/env python3``, so the build image and the run image need python3 (bookworm has
it, tiny does not); the standard library is enough (DET-4, DET-5, BLD-1, BLD-3, BLD-10).
"""

from __future__ import annotations

__all__ = ["BUILD", "DETECT", "HELLO", "HELLO_WEB"]

DETECT = '''\
#!/usr/bin/env python3
"""bin/detect for {{id}}: does this buildpack apply to the app in the current dir?

Exit 0 to pass, 100 to step aside (not for this app); any other code is an error.
Arguments: <platform> <plan> (CNB_PLATFORM_DIR and CNB_BUILD_PLAN_PATH name the same).
"""

import os
import sys
from pathlib import Path

# The build plan: provide "hello" and require it, so bin/build gets a "hello" entry.
# (A real buildpack may require what an earlier one provides, such as "python".)
PLAN = """\\
[[provides]]
name = "hello"

[[requires]]
name = "hello"
"""


def main() -> int:
    plan = Path(os.environ.get("CNB_BUILD_PLAN_PATH") or sys.argv[2])
    # This skeleton passes for every app. To pass only for some, look for their files, e.g.:
    #   if not Path("hello.txt").is_file():
    #       return 100
    with plan.open("a") as out:
        out.write(PLAN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

BUILD = '''\
#!/usr/bin/env python3
"""bin/build for {{id}}: runs when detect passed, in the app dir.

Arguments: <layers> <platform> <plan> (CNB_LAYERS_DIR, CNB_PLATFORM_DIR, CNB_BP_PLAN_PATH).
Makes one launch layer, "hello", from the files under layer/, and declares two processes
in launch.toml: web (the default) and hello.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

# launch = true puts the layer in the app image, where its bin/ is on PATH;
# [metadata] is the buildpack's own record of the layer, kept with it.
LAYER_TOML = """\\
[types]
launch = true
build = false
cache = false

[metadata]
content-hash = "{content_hash}"
version = "{{version}}"
"""

# The app's processes: found on PATH in the hello layer's bin/.
LAUNCH_TOML = """\\
[[processes]]
type = "web"
command = ["hello-web"]
default = true

[[processes]]
type = "hello"
command = ["hello"]
"""


def content_hash(files: Path, greeting: str) -> str:
    """What the layer is made from: the files under layer/ and the greeting."""
    digest = hashlib.sha256()
    for path in sorted(p for p in files.rglob("*") if p.is_file()):
        digest.update(path.relative_to(files).as_posix().encode() + b"\\0" + path.read_bytes())
    digest.update(f"greeting={greeting}".encode())
    return digest.hexdigest()


def make_layer(layer: Path, files: Path, greeting: str) -> None:
    shutil.rmtree(layer, ignore_errors=True)
    shutil.copytree(files, layer)
    # env.launch/: variables the app's processes get (.default: only if not set already).
    (layer / "env.launch").mkdir()
    (layer / "env.launch" / "HELLO_GREETING.default").write_text(greeting)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # each line shows as it is printed
    layers = Path(os.environ.get("CNB_LAYERS_DIR") or sys.argv[1])
    bp_dir = Path(os.environ.get("CNB_BUILDPACK_DIR") or Path(__file__).resolve().parents[1])
    greeting = os.environ.get("BP_GREETING", "Hello")  # pybuild build --env BP_GREETING=Howdy
    layer, layer_toml = layers / "hello", layers / "hello.toml"
    print("---> {{id}} {{version}}")
    wanted = content_hash(bp_dir / "layer", greeting)
    recorded = layer_toml.read_text().splitlines() if layer_toml.is_file() else []
    if f'content-hash = "{wanted}"' in recorded:
        # A layer whose hello.toml records the same hash is kept as it is.
        print(f"     Reusing layer hello (content hash {wanted[:12]} unchanged)")
    else:
        print(f"     Making layer hello (content hash {wanted[:12]})")
        make_layer(layer, bp_dir / "layer", greeting)
    layer_toml.write_text(LAYER_TOML.format(content_hash=wanted))
    (layers / "launch.toml").write_text(LAUNCH_TOML)
    print("     Processes: web (default) serves a page on $PORT, hello prints a greeting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

HELLO = '''\
#!/usr/bin/env python3
"""The "hello" process: prints a greeting (HELLO_GREETING comes from the layer's env.launch/)."""

import os
import platform

greeting = os.environ.get("HELLO_GREETING") or "Hello"
print(f"{greeting} from {{id}} {{version}} on {platform.machine()}, running as uid {os.getuid()}")
'''

HELLO_WEB = '''\
#!/usr/bin/env python3
"""The "web" process: serves this layer's www/ on $PORT (default 8080)."""

import functools
import http.server
import os
from pathlib import Path

root = Path(__file__).resolve().parents[1] / "www"
port = int(os.environ.get("PORT", "8080"))
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
print(f"hello-web: serving {root} on port {port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), handler).serve_forever()
'''
