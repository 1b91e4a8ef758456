"""Reading launch layers from a layers dir on the host, at export time.

Owns turning `<layers>/<buildpack>/<layer>/` into `LaunchLayer` values: which layers are
launch layers (`[types] launch = true`, BLD-3), their `bin`/`lib` dirs (LCH-5), their env
files read verbatim with the BLD-7 suffix and `.delim` rules from `env/`, `env.launch/`
and `env.launch/<type>/`, and their exec.d (LCH-6) and profile.d (LCH-7) files. Paths in
the result are where the layer will sit in the image.

The layers dir is read on the host, where a symbolic link a buildpack left would resolve
against the host's filesystem: no link is followed here (`lifecycle.fsutil`). A linked
layer dir, env dir or env file, or a linked `<layer>.toml`, is a `LaunchPlanError`; a link
among `exec.d`/`profile.d` scripts is listed as a script, resolved in the image at launch.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

from lifecycle.env import MAX_ENV_FILE
from lifecycle.fsutil import UnsafePath, is_plain_dir, read_plain
from lifecycle.launcher.plan import EnvAction, EnvOp, LaunchLayer, LaunchPlan, LaunchPlanError, LayerScript

__all__ = ["scan_layers"]

_NOT_LAYERS = frozenset({"launch.toml", "build.toml", "store.toml"})  # BLD-5
_MAX_LAYER_TOML = 8 << 20
_SUFFIX_ACTIONS: dict[str, EnvAction] = {
    "": "override",
    "override": "override",
    "default": "default",
    "prepend": "prepend",
    "append": "append",
}


def scan_layers(
    layers_dir: Path,
    buildpack_order: Sequence[str],
    in_image_layers_dir: str = "/layers",
    *,
    previous: LaunchPlan | None = None,
) -> list[LaunchLayer]:
    """The launch layers under `layers_dir`, in buildpack order, then layer name (LCH-5).

    A launch layer with no dir is reused from the previous image (EXP-3), so its files are
    not here: it is taken from `previous`, that image's plan (see `parse_plan`). Without
    it such a layer raises `LaunchPlanError`, as do unreadable `<layer>.toml` files.
    """
    layers: list[LaunchLayer] = []
    for buildpack_id in buildpack_order:
        escaped = buildpack_id.replace("/", "_")  # GEN-3
        image_dir = posixpath.join(in_image_layers_dir, escaped)
        for name in _launch_layer_names(layers_dir / escaped):
            host_dir = layers_dir / escaped / name
            if _plain_dir(host_dir):
                layers.append(_scan_layer(host_dir, buildpack_id, name, posixpath.join(image_dir, name)))
            else:
                layers.append(_previous_layer(previous, buildpack_id, name))
    return layers


def _launch_layer_names(buildpack_dir: Path) -> list[str]:
    names = []
    for toml_path in _sorted_entries(buildpack_dir):
        if toml_path.suffix != ".toml" or toml_path.name in _NOT_LAYERS or _is_dir(toml_path):
            continue
        try:
            layer_toml = tomllib.loads(read_plain(toml_path, _MAX_LAYER_TOML).decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise LaunchPlanError(f"read layer metadata {toml_path}", err) from err
        types = layer_toml.get("types")
        if isinstance(types, dict) and types.get("launch") is True:
            names.append(toml_path.stem)
    return names


def _previous_layer(previous: LaunchPlan | None, buildpack_id: str, name: str) -> LaunchLayer:
    for layer in previous.layers if previous else ():
        if (layer.buildpack_id, layer.name) == (buildpack_id, name):
            return layer
    raise LaunchPlanError(
        "write launch plan",
        f"launch layer {buildpack_id}/{name} has no contents here and the previous image's launch plan "
        "does not describe it",
    )


def _scan_layer(host_dir: Path, buildpack_id: str, name: str, image_path: str) -> LaunchLayer:
    env = [*_env_dir(host_dir / "env", None), *_env_dir(host_dir / "env.launch", None)]
    for type_dir in _subdirs(host_dir / "env.launch"):
        env.extend(_env_dir(type_dir, type_dir.name))
    return LaunchLayer(
        buildpack_id=buildpack_id,
        name=name,
        path=image_path,
        has_bin=_dir_or_link(host_dir / "bin"),
        has_lib=_dir_or_link(host_dir / "lib"),
        env=tuple(env),
        exec_d=tuple(_scripts(host_dir, "exec.d", image_path)),
        profile_d=tuple(_scripts(host_dir, "profile.d", image_path)),
    )


def _env_dir(env_dir: Path, process_type: str | None) -> Iterator[EnvOp]:
    """BLD-7: one op per file in name order; `.delim` files only configure their name."""
    files = [p for p in _sorted_entries(env_dir) if not _is_dir(p)]
    split = [(path, *_name_and_suffix(path)) for path in files]
    delims = {name: _read(path) for path, name, suffix in split if suffix == "delim"}
    for path, name, suffix in split:
        action = _SUFFIX_ACTIONS.get(suffix)
        if action is not None:
            value = _read(path)
            yield EnvOp(
                name=name, action=action, value=value, delim=delims.get(name, ""), process_type=process_type
            )


def _name_and_suffix(path: Path) -> tuple[str, str]:
    """BLD-7: the variable name is the file name up to the first '.'."""
    name, _, suffix = path.name.partition(".")
    return name, suffix


def _scripts(host_dir: Path, kind: str, image_path: str) -> Iterator[LayerScript]:
    """`<kind>/*` then `<kind>/<type>/*`, each in name order; subdirs of a type dir are skipped."""
    for path in _sorted_entries(host_dir / kind):
        if not _is_dir(path):
            yield LayerScript(path=posixpath.join(image_path, kind, path.name))
    for type_dir in _subdirs(host_dir / kind):
        for path in _sorted_entries(type_dir):
            if not _is_dir(path):
                in_image = posixpath.join(image_path, kind, type_dir.name, path.name)
                yield LayerScript(path=in_image, process_type=type_dir.name)


def _subdirs(directory: Path) -> list[Path]:
    return [p for p in _sorted_entries(directory) if _is_dir(p)]


def _sorted_entries(directory: Path) -> list[Path]:
    """Entries in byte order of their names, as the reference lifecycle lists them."""
    if not _plain_dir(directory):
        return []
    return sorted(directory.iterdir(), key=lambda p: os.fsencode(p.name))


def _plain_dir(path: Path) -> bool:
    """A real dir: False for nothing or a file there, `LaunchPlanError` for a symbolic link."""
    try:
        return is_plain_dir(path)
    except OSError as err:
        raise LaunchPlanError("scan launch layers", err) from err


def _is_dir(path: Path) -> bool:
    """A real dir, the link itself never followed (a link to a dir is not one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _dir_or_link(path: Path) -> bool:
    """A dir, or a link that will be resolved in the image (never on the host)."""
    return _is_dir(path) or path.is_symlink()


def _read(path: Path) -> str:
    try:
        return read_plain(path, MAX_ENV_FILE).decode("utf-8", "surrogateescape")
    except UnsafePath as err:
        raise LaunchPlanError("read env file", err) from err
    except OSError as err:
        raise LaunchPlanError(f"read env file {path}", err) from err
