"""How `sentiment up` starts its tiers: the environment each process gets.

(The running stack over HTTP: tests/test_local_stack.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sentiment.local_stack import (
    API_EMULATOR_GLIBC_TUNABLES,
    StackSettings,
    tiers,
    with_glibc_tunables,
)


def _dynamic_loader() -> str | None:
    """The glibc dynamic loader this interpreter runs under, if any."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        path = line.split()[-1]
        if "/ld-linux" in path:
            return path
    return None


def test_only_the_api_emulator_is_started_with_its_own_malloc_settings() -> None:
    by_module = {tier.arguments[0]: tier for tier in tiers(StackSettings(Path("model.tar.gz")))}

    # No per-thread cache, and buffers of a megabyte or more given back when freed.
    assert by_module["sentiment.api_emulator"].glibc_tunables == (
        "glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=1048576"
    )
    assert by_module["sentiment.endpoint_emulator"].glibc_tunables == ""
    assert by_module["sentiment.site_server"].glibc_tunables == ""


def test_the_tunables_are_added_to_the_inherited_environment() -> None:
    environment = with_glibc_tunables({"PATH": "/usr/bin"}, "glibc.malloc.tcache_count=0")

    assert environment == {"PATH": "/usr/bin", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}


def test_tunables_the_user_set_come_last_so_they_win() -> None:
    inherited = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=3"}

    environment = with_glibc_tunables(inherited, "glibc.malloc.tcache_count=0")

    assert environment["GLIBC_TUNABLES"] == (
        "glibc.malloc.tcache_count=0:glibc.malloc.tcache_count=3"
    )
    assert inherited == {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=3"}


def test_no_tunables_leave_the_environment_as_it_is() -> None:
    inherited = {"PATH": "/usr/bin", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}

    assert with_glibc_tunables(inherited, "") == inherited
    assert with_glibc_tunables({"PATH": "/usr/bin"}, "") == {"PATH": "/usr/bin"}


def test_glibc_knows_the_api_emulators_tunables() -> None:
    # glibc ignores a misspelled tunable without a word: the loader lists those it has.
    loader = _dynamic_loader()
    if loader is None:
        pytest.skip("not running under glibc's dynamic loader")
    listing = subprocess.run(
        [loader, "--list-tunables"], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        pytest.skip(f"{loader} cannot list tunables (glibc older than 2.33)")
    known = {line.split(":")[0] for line in listing.stdout.splitlines()}

    for tunable in API_EMULATOR_GLIBC_TUNABLES.split(":"):
        assert tunable.split("=")[0] in known
