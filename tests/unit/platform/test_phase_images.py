"""The platform spec's mapping of an image reference to a path under the layout dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.platform.phase_images import layout_path

ROOT = Path("/layout-repo")
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("app", "index.docker.io/library/app/latest"),
        ("team/app:v1", "index.docker.io/team/app/v1"),
        ("registry.test/team/app:v1", "registry.test/team/app/v1"),
        ("localhost:5000/app", "localhost:5000/app/latest"),
        (f"registry.test/app@{DIGEST}", f"registry.test/app/sha256/{'ab' * 32}"),
        (f"/layout-repo/registry.test/app/v1@{DIGEST}", "registry.test/app/v1"),  # already a path
    ],
)
def test_reference_maps_to_registry_repo_and_tag_or_digest(ref: str, path: str) -> None:
    assert layout_path(ROOT, ref) == ROOT / path
