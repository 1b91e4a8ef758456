"""The registry backend: OCI distribution API over httpx (DESIGN.md "where images live").

Modules: ``reference`` (names), ``credentials`` (CNB_REGISTRY_AUTH, docker config), ``auth``
(Basic and Bearer token flow), ``client`` (TLS, retries, errors), ``manifests``, ``blobs`` (lazy
layer reads), ``push`` (HEAD / mount / upload), ``store`` (the ``ImageStore``).
"""

from lifecycle.backends.registry.client import CNB_INSECURE_REGISTRIES, RegistryError, RetryPolicy
from lifecycle.backends.registry.credentials import CNB_REGISTRY_AUTH, Credentials, find_credentials
from lifecycle.backends.registry.push import Progress, RegistryLocation, RegistryStats
from lifecycle.backends.registry.reference import Reference, parse_reference
from lifecycle.backends.registry.store import DEFAULT_PLATFORM, RegistryStore

__all__ = [
    "CNB_INSECURE_REGISTRIES",
    "CNB_REGISTRY_AUTH",
    "DEFAULT_PLATFORM",
    "Credentials",
    "Progress",
    "Reference",
    "RegistryError",
    "RegistryLocation",
    "RegistryStats",
    "RegistryStore",
    "RetryPolicy",
    "find_credentials",
    "parse_reference",
]
