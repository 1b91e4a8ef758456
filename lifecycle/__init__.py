"""pybuild: a Cloud Native Buildpacks lifecycle and platform."""

__version__ = "0.1.0"
