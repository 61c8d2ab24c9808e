"""The local target's own PostgreSQL: durable, on disk, outside any clone, left running.

Real servers, no mocks: each test that starts one stops it at teardown.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from sqlalchemy.engine import URL

from ci.deploy.config import DeployConfig, load_deploy_config
from ci.deploy.database import cluster_dir, resolve
from ci.deploy.errors import DeployConfigError, DeployError
from ci.deploy.mounts import RAM_FILESYSTEMS, filesystem_type
from ci_kit.dburl import render
from ci_kit.errors import PostgresNotFound
from ci_kit.postgres import find_binaries, stop_persistent
from ci_kit.postgres.processes import SHM, postmaster
from tests.automation.deploy_helpers import REPO

MOUNTS = [  # (mount point, type) in mount order, as the mount table lists them
    ("/", "ext4"),
    ("/dev/shm", "tmpfs"),
    ("/srv/data", "xfs"),
    ("/srv/data/cache", "tmpfs"),
    ("/mnt/my disk", "ext4"),
    ("/run", "tmpfs"),
    ("/run", "ramfs"),
]


def deploy_config(state_root: Path) -> DeployConfig:
    settings: dict[str, Any] = {
        "state_root": str(state_root),
        "environments": {"staging": {"port": 9999}},
    }
    return load_deploy_config(settings, {}, REPO)


def show(url: URL, setting: str) -> str:
    with psycopg.connect(render(url.set(drivername="postgresql")), autocommit=True) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()  # a constant name, not input
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def system_postgres() -> None:
    try:
        find_binaries(allow_wheel=False)
    except PostgresNotFound:
        pytest.skip("no system PostgreSQL installed")


@pytest.fixture
def state_root(system_postgres: None) -> Iterator[Path]:
    """On disk, and as root reachable by the postgres user (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="ci-kit-deploy-db-"))
    base.chmod(0o755)
    if filesystem_type(base) in RAM_FILESYSTEMS:
        shutil.rmtree(base)
        pytest.skip(f"the temp dir {base.parent} is in memory; the deploy cluster needs a disk")
    yield base / "state"
    stop_persistent(cluster_dir(deploy_config(base / "state")))
    shutil.rmtree(base)


def test_the_filesystem_of_a_path_is_its_longest_mount_points() -> None:
    assert filesystem_type(Path("/srv/data/db/pg"), mounts=MOUNTS) == "xfs"
    assert filesystem_type(Path("/srv/data/cache/pg"), mounts=MOUNTS) == "tmpfs"
    assert filesystem_type(Path("/srv/database"), mounts=MOUNTS) == "ext4"  # not /srv/data
    assert filesystem_type(Path("/dev/shm/x/y"), mounts=MOUNTS) == "tmpfs"
    assert filesystem_type(Path("/mnt/my disk/pg"), mounts=MOUNTS) == "ext4"
    assert filesystem_type(Path("/run/pg"), mounts=MOUNTS) == "ramfs"  # mounted last, on top
    assert filesystem_type(Path("/anything"), mounts=[]) is None


def test_the_machines_own_mount_table_is_read_and_a_missing_one_is_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert filesystem_type(Path("/")) is not None
    assert filesystem_type(SHM) == "tmpfs" or not SHM.is_dir()

    def no_proc(*_: object, **__: object) -> None:
        raise FileNotFoundError("/proc/self/mounts")

    monkeypatch.setattr(psutil, "disk_partitions", no_proc)
    assert filesystem_type(Path("/")) is None


def test_resolve_starts_a_durable_cluster_on_disk_and_reuses_it(state_root: Path) -> None:
    config = deploy_config(state_root)
    env = config.environment("staging")
    lines: list[str] = []

    url = resolve(config, env, lines.append)

    assert url.database == "finance_report_staging"
    for setting in ("fsync", "synchronous_commit", "full_page_writes", "data_checksums"):
        assert show(url, setting) == "on", setting
    data_directory = Path(show(url, "data_directory"))
    assert data_directory == state_root / config.name / "postgres"
    assert data_directory.is_relative_to(state_root)
    assert not data_directory.is_relative_to(SHM)
    assert filesystem_type(data_directory) not in RAM_FILESYSTEMS
    with psycopg.connect(render(url.set(drivername="postgresql"))) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (env.database,)
        conn.execute("CREATE TABLE kept (id int)")
    assert "created database finance_report_staging" in lines
    stop_hint = f"python -m ci_kit.postgres stop {data_directory}"
    assert any(stop_hint in line for line in lines), lines
    pid = postmaster(data_directory)
    assert pid is not None

    lines.clear()
    again = resolve(config, env, lines.append)

    assert again == url
    assert postmaster(data_directory) == pid  # the same server, not a restart
    assert any(line.startswith("reusing the PostgreSQL server") for line in lines), lines
    assert not any("created database" in line or "initdb -D" in line for line in lines), lines
    with psycopg.connect(render(again.set(drivername="postgresql"))) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_a_state_root_in_memory_is_refused_in_one_line() -> None:
    if filesystem_type(SHM) != "tmpfs":
        pytest.skip(f"{SHM} is not a tmpfs here")
    state_root = SHM / f"ci-kit-deploy-test-{os.getpid()}"
    config = deploy_config(state_root)

    with pytest.raises(DeployConfigError) as refused:
        resolve(config, config.environment("staging"), lambda _: None)

    message = str(refused.value)
    assert "\n" not in message
    assert "on tmpfs" in message
    assert "set deploy.state_root to a directory on disk" in message
    assert str(cluster_dir(config)) in message
    assert not state_root.exists()  # refused before anything was made


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: the server runs as postgres")
def test_a_data_directory_the_server_user_cannot_reach_is_refused_in_one_line(
    tmp_path: Path, system_postgres: None
) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / "state").mkdir(mode=0o700)
    config = deploy_config(tmp_path / "state")
    blocked = next(p for p in (*reversed(tmp_path.parents), tmp_path) if not p.stat().st_mode & 1)
    lines: list[str] = []

    with pytest.raises(DeployError) as refused:
        resolve(config, config.environment("staging"), lines.append)

    message = str(refused.value)
    assert "\n" not in message
    assert (
        f"the postgres user, who runs the server for root, cannot enter {blocked} (mode" in message
    )
    assert f"chmod o+x {blocked}" in message
    assert not cluster_dir(config).exists()
    # The kit's own directories were opened to it (search only); the ones above were not.
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o701
    assert config.machine_dir.stat().st_mode & 0o001
    assert tmp_path.stat().st_mode & 0o777 == 0o700
