"""The Docker daemon backend: images in dockerd through the ``docker`` SDK (DESIGN.md "where images live").

``DaemonStore`` reads an image from ``inspect`` without moving layer bytes,
saves an image only when a layer is read, and loads only the layers the daemon
lacks. See ``store.py`` for the identity of daemon images (the image ID).
"""

from lifecycle.backends.daemon.connect import DEFAULT_HOST, docker_params, is_local_host
from lifecycle.backends.daemon.saved import DaemonStats
from lifecycle.backends.daemon.store import DaemonStore

__all__ = ["DEFAULT_HOST", "DaemonStats", "DaemonStore", "docker_params", "is_local_host"]
