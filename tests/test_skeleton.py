"""The cache of initialised clusters, against real PostgreSQL servers: no mocks.

Each test points the cache at its own directory (``CI_KIT_CACHE_DIR``) and counts the
``initdb`` runs by wrapping the one method every server command goes through; log
records are not asserted on, as another test may have turned a logger off.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL

from ci_kit.dburl import render
from ci_kit.postgres import EmbeddedPostgres, PgBinaries
from ci_kit.postgres.binaries import server_user
from ci_kit.postgres.cluster import PASSWORD_FILE
from ci_kit.postgres.skeleton import CACHE_ENV, Skeleton, cache_dir
from tests.helpers.clusters import MakeServer


@dataclass
class InitdbRuns:
    """The options of every ``initdb`` the servers ran, in order."""

    options: list[list[str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.options)

    @property
    def last(self) -> list[str]:
        return self.options[-1]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own cache directory, not made yet."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(directory))
    return directory


@pytest.fixture
def initdb_runs(monkeypatch: pytest.MonkeyPatch) -> InitdbRuns:
    runs = InitdbRuns()
    original = EmbeddedPostgres._exec

    def counting(self: EmbeddedPostgres, step: str, argv: Sequence[str | Path]) -> Any:
        if step == "initdb":
            runs.options.append([str(arg) for arg in argv[3:]])  # after initdb -D <data>
        return original(self, step, argv)

    monkeypatch.setattr(EmbeddedPostgres, "_exec", counting)
    return runs


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "initdb").iterdir())


def select_one(url: URL) -> int:
    with psycopg.connect(render(url.set(drivername="postgresql")), autocommit=True) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def rejects(url: URL, password: str | None) -> bool:
    try:
        select_one(url.set(password=password))
    except psycopg.OperationalError as error:
        return "password authentication failed" in str(error)
    return False


def started_from_a_warm_cache(
    system: PgBinaries, make_server: MakeServer, cache: Path, initdb_runs: InitdbRuns
) -> Path:
    """The cache's one entry, made by a first server (stopped since)."""
    first = make_server(system)
    first.start()
    first.stop()
    (entry,) = entries(cache)
    assert initdb_runs.count == 1
    return entry


def test_the_first_cluster_is_cached_and_the_next_ones_are_copies_with_their_own_password(
    system: PgBinaries, make_server: MakeServer, cache: Path, initdb_runs: InitdbRuns
) -> None:
    first = make_server(system)
    first_url = first.start()
    (entry,) = entries(cache)
    assert initdb_runs.count == 1
    assert "--auth-host=trust" in initdb_runs.last, "a skeleton is made without a password"
    assert not (entry / "data" / PASSWORD_FILE).exists()
    inode = entry.stat().st_ino

    second = make_server(system)
    second_url = second.start()
    assert initdb_runs.count == 1, "the second cluster was copied"
    assert entries(cache) == [entry]
    assert entry.stat().st_ino == inode
    assert second.directory is not None
    data = second.directory / "data"
    assert (data / "PG_VERSION").read_text() == (entry / "data" / "PG_VERSION").read_text()
    status = data.stat()
    assert status.st_mode & 0o777 == 0o700
    user = server_user()
    assert status.st_uid == (os.geteuid() if user is None else user.pw_uid)
    host_lines = (data / "pg_hba.conf").read_text().splitlines()
    assert not [line for line in host_lines if line.startswith("host") and "trust" in line]

    assert select_one(first_url) == select_one(second_url) == 1
    assert first_url.password != second_url.password
    assert rejects(first_url, second_url.password)
    assert rejects(second_url, first_url.password)


def symlinked_entry(entry: Path, tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    entry.rename(planted)
    entry.symlink_to(planted)


def group_writable_cache(entry: Path, tmp_path: Path) -> None:
    entry.parent.parent.chmod(0o775)


def others_entry(entry: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    os.chown(entry, 65534, 65534)


def no_pg_version(entry: Path, tmp_path: Path) -> None:
    (entry / "data" / "PG_VERSION").unlink()


def another_major(entry: Path, tmp_path: Path) -> None:
    (entry / "data" / "PG_VERSION").write_text("9\n")


def empty_entry(entry: Path, tmp_path: Path) -> None:
    shutil.rmtree(entry / "data")


@pytest.mark.parametrize(
    "spoil", [symlinked_entry, group_writable_cache, others_entry], ids=lambda f: f.__name__
)
def test_an_entry_someone_else_could_have_planted_is_left_alone_and_initdb_runs(
    system: PgBinaries,
    make_server: MakeServer,
    cache: Path,
    initdb_runs: InitdbRuns,
    tmp_path: Path,
    spoil: Callable[[Path, Path], None],
) -> None:
    entry = started_from_a_warm_cache(system, make_server, cache, initdb_runs)
    spoil(entry, tmp_path)
    before = sorted((path.name, path.lstat().st_mode) for path in (cache / "initdb").iterdir())
    url = make_server(system).start()
    assert initdb_runs.count == 2
    assert "--auth-host=scram-sha-256" in initdb_runs.last, "plain initdb, nothing cached"
    assert select_one(url) == 1
    after = sorted((path.name, path.lstat().st_mode) for path in (cache / "initdb").iterdir())
    assert after == before


@pytest.mark.parametrize(
    "spoil", [no_pg_version, another_major, empty_entry], ids=lambda f: f.__name__
)
def test_an_entry_not_whole_is_never_copied_but_rebuilt(
    system: PgBinaries,
    make_server: MakeServer,
    cache: Path,
    initdb_runs: InitdbRuns,
    tmp_path: Path,
    spoil: Callable[[Path, Path], None],
) -> None:
    entry = started_from_a_warm_cache(system, make_server, cache, initdb_runs)
    spoil(entry, tmp_path)
    url = make_server(system).start()
    assert initdb_runs.count == 2
    assert select_one(url) == 1
    assert entries(cache) == [entry], "rebuilt in place, nothing left aside"
    assert (entry / "data" / "PG_VERSION").read_text().strip() == str(system.major)
    make_server(system).start()
    assert initdb_runs.count == 2, "the rebuilt entry is copied"


@pytest.mark.parametrize("setting", ["off", "OFF", "{tmp}/a-file/cache"], ids=str)
def test_a_cache_off_or_impossible_to_make_leaves_initdb_to_run(
    system: PgBinaries,
    make_server: MakeServer,
    initdb_runs: InitdbRuns,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    """A directory under a file cannot be made, even by root (which chmod would not stop)."""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(CACHE_ENV, setting.format(tmp=tmp_path))
    for _ in range(2):
        assert select_one(make_server(system).start()) == 1
    assert initdb_runs.count == 2
    assert all("--auth-host=scram-sha-256" in options for options in initdb_runs.options)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "kept"])
def test_a_durable_cluster_never_comes_from_the_cache(
    system: PgBinaries,
    make_server: MakeServer,
    cache: Path,
    initdb_runs: InitdbRuns,
    persistent_dir: Path,
    durable: bool,
) -> None:
    started_from_a_warm_cache(system, make_server, cache, initdb_runs)
    url = make_server(system, data_dir=persistent_dir, durable=durable).start()
    assert select_one(url) == 1
    assert initdb_runs.count == (2 if durable else 1)
    if durable:
        assert "--data-checksums" in initdb_runs.last
    assert (persistent_dir / PASSWORD_FILE).is_file(), "the next run reusing it needs it"


def test_two_runs_building_the_cache_at_once_both_start_and_leave_one_entry(
    system: PgBinaries,
    make_server: MakeServer,
    cache: Path,
    initdb_runs: InitdbRuns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both_built = threading.Barrier(2, timeout=60)
    store = Skeleton.store

    def store_once_both_built(self: Skeleton, data: Path) -> None:
        both_built.wait()
        store(self, data)

    monkeypatch.setattr(Skeleton, "store", store_once_both_built)
    servers = [make_server(system), make_server(system)]
    urls: list[URL] = []
    threads = [threading.Thread(target=lambda s=s: urls.append(s.start())) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert initdb_runs.count == 2, "both missed"
    assert [select_one(url) for url in urls] == [1, 1]
    (entry,) = entries(cache)
    assert (entry / "data" / "PG_VERSION").read_text().strip() == str(system.major)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({CACHE_ENV: "/somewhere/else"}, Path("/somewhere/else")),
        ({CACHE_ENV: "off"}, None),
        ({CACHE_ENV: "OFF"}, None),
        ({CACHE_ENV: ""}, Path(f"/dev/shm/ci-kit-initdb-{os.geteuid()}")),
        ({}, Path(f"/dev/shm/ci-kit-initdb-{os.geteuid()}")),
    ],
)
def test_where_the_cache_lives(environ: dict[str, str], expected: Path | None) -> None:
    """Beside the clusters by default, so that filling it is a copy within RAM."""
    assert cache_dir(Path("/dev/shm"), environ) == expected
