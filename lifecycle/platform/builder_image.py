"""A builder as an OCI image: the build image plus one layer per buildpack, order and run images.

Labels follow pack's (``io.buildpacks.builder.metadata``, ``io.buildpacks.buildpack.order``,
``io.buildpacks.buildpack.layers``), and ``/cnb/order.toml``, ``/cnb/run.toml``,
``/cnb/system.toml`` and the operator env ``/cnb/build-config/env/<name>[.<suffix>]`` (BLD-8) are
in the image, so pack and a platform driving the lifecycle phase by phase can read it. When the
build image can run it, pybuild itself is under ``/cnb/lifecycle`` (``lifecycle_layer``). The
``io.pybuild.builder.config`` label repeats the operator env and system buildpacks, so a build
that uses the image as its builder needs no file of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import tomli_w

from lifecycle import __version__
from lifecycle.cnb._files import dump_toml
from lifecycle.cnb.builder import BuilderEnv
from lifecycle.cnb.images import RunImageRef
from lifecycle.cnb.order import OrderGroup, SystemOrder, SystemToml
from lifecycle.oci import mutate
from lifecycle.oci.compress import write_layer
from lifecycle.oci.image import Image
from lifecycle.oci.layer import Layer
from lifecycle.oci.tarball import LayerTar
from lifecycle.platform.builders import BuildpackSource
from lifecycle.platform.buildpackage import buildpack_layer
from lifecycle.platform.buildpackage_labels import BuildpackLayerInfo, layer_info, layers_json

__all__ = ["BUILDER_CONFIG", "BUILDER_METADATA", "BUILDPACK_LAYERS", "BUILDPACK_ORDER", "builder_image"]

BUILDER_METADATA = "io.buildpacks.builder.metadata"
BUILDPACK_ORDER = "io.buildpacks.buildpack.order"
BUILDPACK_LAYERS = "io.buildpacks.buildpack.layers"
BUILDER_CONFIG = "io.pybuild.builder.config"


def _order_json(order: Sequence[OrderGroup]) -> str:
    groups = [
        {
            "group": [
                {"id": e.id, "version": e.version, **({"optional": True} if e.optional else {})}
                for e in g.group
            ]
        }
        for g in order
    ]
    return json.dumps(groups, separators=(",", ":"))


def _files_layer(
    scratch: Path,
    order: Sequence[OrderGroup],
    run_images: Sequence[RunImageRef],
    env: Sequence[BuilderEnv],
    system: SystemOrder,
) -> Layer:
    order_toml = tomli_w.dumps(
        {"order": [{"group": [e.model_dump(exclude_defaults=True) for e in g.group]} for g in order]}
    ).encode()
    run_toml = tomli_w.dumps(
        {
            "images": [
                {"image": r.image, **({"mirrors": list(r.mirrors)} if r.mirrors else {})} for r in run_images
            ]
        }
    ).encode()

    system_toml = dump_toml(SystemToml(system=system)).encode()
    env_files = {f"{e.name}.{e.suffix}" if e.suffix else e.name: e.value.encode() for e in env}

    def fill(tar: LayerTar) -> None:
        tar.add_parents("/cnb/order.toml")
        if env_files:
            tar.add_dir("/cnb/build-config")
            tar.add_dir("/cnb/build-config/env")
            for name, value in sorted(env_files.items()):
                tar.add_file(f"/cnb/build-config/env/{name}", value)
        tar.add_file("/cnb/order.toml", order_toml)
        tar.add_file("/cnb/run.toml", run_toml)
        if system.pre.buildpacks or system.post.buildpacks:
            tar.add_file("/cnb/system.toml", system_toml)

    return write_layer(scratch, fill)


def builder_image(
    build_image: Image,
    buildpacks: Sequence[BuildpackSource],
    order: Sequence[OrderGroup],
    run_images: Sequence[RunImageRef],
    scratch: Path,
    description: str = "",
    *,
    env: Sequence[BuilderEnv] = (),
    system: SystemOrder | None = None,
    lifecycle: Layer | None = None,
) -> Image:
    """The builder image over ``build_image``: reproducible, ``lifecycle`` (pybuild under
    ``/cnb/lifecycle``) if given, one layer per buildpack, then the files layer."""
    system = system or SystemOrder()
    layers: dict[str, Layer] = {} if lifecycle is None else {lifecycle.diff_id: lifecycle}
    infos: dict[str, dict[str, BuildpackLayerInfo]] = {}
    for source in sorted(buildpacks, key=lambda s: s.descriptor.ref):
        layer = buildpack_layer(source, scratch)
        layers.setdefault(layer.diff_id, layer)
        info = source.descriptor.buildpack
        infos.setdefault(info.id, {})[info.version] = layer_info(source.descriptor, layer.diff_id)
    files = _files_layer(scratch, order, run_images, env, system)
    image = mutate.append_layers(build_image, [*layers.values(), files], created_by=())
    metadata = {
        "description": description,
        "buildpacks": [
            {"id": s.descriptor.buildpack.id, "version": s.descriptor.buildpack.version}
            for s in sorted(buildpacks, key=lambda s: s.descriptor.ref)
        ],
        "stack": {"runImage": {"image": run_images[0].image, "mirrors": list(run_images[0].mirrors)}},
        "images": [{"image": r.image, "mirrors": list(r.mirrors)} for r in run_images],
        "lifecycle": {
            "version": __version__,
            "apis": {"buildpack": {"supported": ["0.7", "0.12"]}, "platform": {"supported": ["0.7", "0.15"]}},
        },
        "createdBy": {"name": "pybuild", "version": __version__},
    }
    labels = {
        BUILDER_METADATA: json.dumps(metadata, separators=(",", ":")),
        BUILDPACK_ORDER: _order_json(order),
        BUILDPACK_LAYERS: layers_json(infos),
        BUILDER_CONFIG: json.dumps(
            {
                "env": [e.model_dump() for e in env],
                "system": system.model_dump(),
                "lifecycle": lifecycle is not None,
            },
            separators=(",", ":"),
            sort_keys=True,
        ),
    }
    return mutate.set_labels(image, labels)
