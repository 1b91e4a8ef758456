"""The lifecycle phases: each takes typed inputs and injected collaborators and returns a typed result."""
