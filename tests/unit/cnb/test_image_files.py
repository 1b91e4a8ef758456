"""run.toml (ANA-3), analyzed.toml (ANA-2), report.toml (EXP-13)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from lifecycle.cnb import (
    AnalyzedRunImage,
    AnalyzedToml,
    Distro,
    ImageIdentifier,
    ImageReport,
    LifecycleMetadata,
    ReportToml,
    RunImageForRebase,
    RunImageRef,
    TargetMetadata,
    load_analyzed_toml,
    load_report_toml,
    load_run_toml,
    write_toml,
)


def test_ana3_run_toml_images_with_mirrors(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[[images]]\nimage = "reg.test/run:1"\nmirrors = ["m.test/run:1"]\n[[images]]\nimage = "other/run"\n'
    )
    assert load_run_toml(path).images == (
        RunImageRef(image="reg.test/run:1", mirrors=("m.test/run:1",)),
        RunImageRef(image="other/run"),
    )


def test_ana2_analyzed_toml_round_trips_with_target_and_metadata(tmp_path: Path) -> None:
    analyzed = AnalyzedToml(
        image=ImageIdentifier(reference="reg.test/app@sha256:01"),
        metadata=LifecycleMetadata(
            run_image=RunImageForRebase(top_layer="sha256:aa", reference="run@sha256:bb")
        ),
        run_image=AnalyzedRunImage(
            reference="reg.test/run@sha256:02",
            image="reg.test/run:1",
            target=TargetMetadata(
                os="linux", arch="arm64", arch_variant="v8", distro=Distro(name="debian", version="12")
            ),
        ),
    )
    path = tmp_path / "analyzed.toml"
    write_toml(path, analyzed)
    raw = tomllib.loads(path.read_text())
    assert raw["run-image"]["target"] == {
        "os": "linux",
        "arch": "arm64",
        "arch-variant": "v8",
        "distro": {"name": "debian", "version": "12"},
    }
    assert load_analyzed_toml(path) == analyzed


def test_ana2_analyzed_toml_reads_the_lifecycle_toml_spellings(tmp_path: Path) -> None:
    path = tmp_path / "analyzed.toml"
    path.write_text(
        '[metadata]\n[metadata.run-image]\ntop-layer = "sha256:aa"\nreference = "r"\n'
        '[run-image]\nreference = "r"\n[run-image.target]\nos = "linux"\narch = "amd64"\nvariant = "v2"\n'
    )
    analyzed = load_analyzed_toml(path)
    assert analyzed.metadata.run_image.top_layer == "sha256:aa"
    assert analyzed.run_image is not None and analyzed.run_image.target is not None
    assert analyzed.run_image.target.arch_variant == "v2"
    assert analyzed.image is None


def test_exp13_report_toml(tmp_path: Path) -> None:
    report = ReportToml(
        image=ImageReport(tags=("app:1", "app:latest"), digest="sha256:01", manifest_size=512)
    )
    path = tmp_path / "report.toml"
    write_toml(path, report)
    assert tomllib.loads(path.read_text()) == {
        "image": {"tags": ["app:1", "app:latest"], "digest": "sha256:01", "manifest-size": 512}
    }
    assert load_report_toml(path) == report
