"""A small web app for pybuild demos.

GET / answers with the Python version and the run image's release, read from
/etc/pybuild-release on every request, so a rebase onto a patched run image
shows up without a rebuild.
"""

import os
import platform

import bottle

RELEASE_FILE = "/etc/pybuild-release"

app = bottle.Bottle()


def base_release() -> str:
    """The run image's release file, indented under its name (it has KEY=value lines)."""
    try:
        with open(RELEASE_FILE, encoding="utf-8") as release:
            lines = release.read().splitlines()
    except OSError:
        return f"{RELEASE_FILE}: not found\n"
    return f"{RELEASE_FILE}:\n" + "".join(f"  {line}\n" for line in lines if line.strip())


@app.get("/")
def index() -> str:
    bottle.response.content_type = "text/plain; charset=utf-8"
    return (
        "Hello from pybuild!\n"
        f"python: {platform.python_version()}\n"
        f"bottle: {bottle.__version__}\n"
        f"{base_release()}"
    )


if __name__ == "__main__":
    bottle.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
