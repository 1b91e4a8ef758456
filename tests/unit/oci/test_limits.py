"""The caps on what one layer or archive unpacks to (``lifecycle.oci.limits``)."""

from __future__ import annotations

import io
import tarfile

import pytest

from lifecycle.errors import ConfigError, ImageError
from lifecycle.oci.limits import (
    DEFAULT_MAX_LAYER_BYTES,
    DEFAULT_MAX_LAYER_ENTRIES,
    MAX_LAYER_BYTES_ENV,
    MAX_LAYER_ENTRIES_ENV,
    LayerBudget,
    LayerLimits,
)


def test_the_defaults_are_64_gib_and_five_million_entries() -> None:
    assert LayerLimits.from_env({}) == LayerLimits(64 << 30, 5_000_000)
    assert (DEFAULT_MAX_LAYER_BYTES, DEFAULT_MAX_LAYER_ENTRIES) == (64 << 30, 5_000_000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1048576", 1 << 20), ("1M", 1 << 20), ("64G", 64 << 30), ("2t", 2 << 40), ("512KiB", 512 << 10)],
)
def test_the_byte_cap_takes_a_count_or_a_binary_suffix(value: str, expected: int) -> None:
    assert LayerLimits.from_env({MAX_LAYER_BYTES_ENV: value}).max_bytes == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (MAX_LAYER_BYTES_ENV, "lots"),
        (MAX_LAYER_BYTES_ENV, "0"),
        (MAX_LAYER_BYTES_ENV, "-1"),
        (MAX_LAYER_BYTES_ENV, "1.5G"),
        (MAX_LAYER_ENTRIES_ENV, "10k"),
        (MAX_LAYER_ENTRIES_ENV, "0"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^failed to read {name}: '{value}' is not a positive"):
        LayerLimits.from_env({name: value})


def _member(name: str, size: int, offset: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.offset, info.offset_data = size, offset, offset + tarfile.BLOCKSIZE
    return info


def test_an_entry_ending_past_the_cap_is_refused_from_its_header() -> None:
    budget = LayerBudget("the layer", "read layer", ImageError, LayerLimits(10_000, 100))
    budget.entry(_member("fits", 10_000 - tarfile.BLOCKSIZE, 0))
    with pytest.raises(
        ImageError, match=rf"'big' \(1 bytes\) takes the layer past 10000 bytes.*{MAX_LAYER_BYTES_ENV}"
    ):
        budget.entry(_member("big", 1, 10_000))


def test_the_stream_is_refused_once_it_passes_the_cap_and_never_read_whole() -> None:
    budget = LayerBudget("the layer", "read layer", ImageError, LayerLimits(3 << 20, 100))
    stream = budget.stream(io.BytesIO(bytes(8 << 20)))
    assert len(stream.read(3 << 20)) == 3 << 20
    with pytest.raises(ImageError, match=f"unpacks to more than {3 << 20} bytes"):
        stream.read(1)
    budget = LayerBudget("the layer", "read layer", ImageError, LayerLimits(3 << 20, 100))
    with pytest.raises(ImageError, match="unpacks to more than"):
        budget.stream(io.BytesIO(bytes(8 << 20))).read()
    assert budget.bytes_read <= 4 << 20  # read(-1) stops a MiB past the cap


def test_entries_past_the_cap_are_refused() -> None:
    budget = LayerBudget("the archive", "read archive", ImageError, LayerLimits(1 << 30, 3))
    for n in range(3):
        budget.entry(_member(f"e{n}", 0, n * tarfile.BLOCKSIZE))
    with pytest.raises(ImageError, match=rf"the archive has more than 3 entries.*{MAX_LAYER_ENTRIES_ENV}"):
        budget.entry(_member("e3", 0, 3 * tarfile.BLOCKSIZE))
