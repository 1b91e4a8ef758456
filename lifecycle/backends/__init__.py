"""Image backends: local store, OCI layout, registry, daemon, memory."""
