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
    try:
        with open(RELEASE_FILE, encoding="utf-8") as release:
            return release.read().strip()
    except OSError:
        return f"unknown ({RELEASE_FILE} not found)"


@app.get("/")
def index() -> str:
    bottle.response.content_type = "text/plain; charset=utf-8"
    return (
        "Hello from pybuild!\n"
        f"python: {platform.python_version()}\n"
        f"bottle: {bottle.__version__}\n"
        f"base image release: {base_release()}\n"
    )


if __name__ == "__main__":
    bottle.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
