"""The registry backend: OCI distribution API over httpx (DESIGN.md "where images live").

Modules: ``reference`` (names), ``credentials`` (CNB_REGISTRY_AUTH, docker config), ``auth``
(Basic and Bearer token flow), ``client`` (TLS, retries, errors), ``manifests``, ``blobs`` (lazy
layer reads), ``push`` (HEAD / mount / upload), ``store`` (the ``ImageStore``).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.backends.registry.client import CNB_INSECURE_REGISTRIES, RegistryError, RetryPolicy
    from lifecycle.backends.registry.credentials import CNB_REGISTRY_AUTH, Credentials, find_credentials
    from lifecycle.backends.registry.push import Progress, RegistryLocation, RegistryStats
    from lifecycle.backends.registry.reference import Reference, parse_reference
    from lifecycle.backends.registry.store import DEFAULT_PLATFORM, RegistryStore

# Names load on first use, so parsing a reference does not import the HTTP client.
_HOMES = {
    "CNB_INSECURE_REGISTRIES": "client",
    "RegistryError": "client",
    "RetryPolicy": "client",
    "CNB_REGISTRY_AUTH": "credentials",
    "Credentials": "credentials",
    "find_credentials": "credentials",
    "Progress": "push",
    "RegistryLocation": "push",
    "RegistryStats": "push",
    "Reference": "reference",
    "parse_reference": "reference",
    "DEFAULT_PLATFORM": "store",
    "RegistryStore": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(import_module(f"lifecycle.backends.registry.{_HOMES[name]}"), name)


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
