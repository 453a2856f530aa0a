"""Fixtures of the fault tests: private Redis and PostgreSQL servers they may kill.

The PostgreSQL cluster is made once per session (initdb takes about a second) and copied for
each server. Missing binaries skip the tests that need them, saying which.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestrator.faults.services import (
    PostgresServer,
    RedisServer,
    init_template,
    postgres_binaries,
    postgres_dir,
    redis_binary,
)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[Path, Path]]:
    bindir = postgres_binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL's initdb and postgres binaries are not installed (looked on PATH and "
            "in /usr/lib/postgresql/*/bin): install PostgreSQL (Debian: postgresql-15) to run "
            "the fault tests that kill it"
        )
    root = postgres_dir("shield-pg-template-")
    try:
        yield bindir, init_template(bindir, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _private_redis(root: Path) -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        pytest.skip(
            "redis-server is not on PATH: install Redis (Debian: redis-server) to run the "
            "fault tests that kill it"
        )
    server = RedisServer(root, binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _private_postgres(root: Path, template: tuple[Path, Path]) -> Iterator[PostgresServer]:
    bindir, data = template
    server = PostgresServer(root, bindir, data)
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _private_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="module")
def private_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_template: tuple[Path, Path]
) -> Iterator[PostgresServer]:
    yield from _private_postgres(tmp_path_factory.mktemp("postgres"), postgres_template)
