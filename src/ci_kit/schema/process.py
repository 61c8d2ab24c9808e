"""The user's schema code runs in a child process, never in the test process.

Reading a schema (importing models, a seed) and building it (``env.py``,
migrations, DDL hooks, the seed) run the project's code, and that code keeps
state at import: an engine made from ``DATABASE_URL``, settings cached from
``POSTGRES_*``, a table registry that lives in a library (SQLModel's). Run in the
test process, it would be imported a first time for the template and meet its own
state when the conftests import it again for the tests. So it runs in a child
(``python -m ci_kit.schema``), and the project's code first runs there with the
variables naming the database that child works on:

- reading, before any server is known: a database that exists nowhere, so code
  that connects at import fails instead of landing on a real database;
- building: the template being built. When reading ran none of the project's
  code (an Alembic history without a seed: only files are hashed), the reader's
  child builds too, its variables set first; otherwise a new child builds.

A project without a schema or seed has no code to run: no child at all.

The child gets its requests on one pipe and answers on another, so its standard
streams stay the project's (an ``env.py``'s output, a ``breakpoint()``); its
failure comes back as the kit's one-line error, and an interrupt unwinds both.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.engine import URL

from ci_kit import errors
from ci_kit.dburl import redact, url_parts
from ci_kit.errors import CiKitError, Interrupted

if TYPE_CHECKING:
    from ci_kit.config import KitConfig

INTERRUPTED = 130
"""The child's exit code for Ctrl-C, as a shell's."""


@dataclass(frozen=True)
class SchemaRequest:
    """What identifies a project's template: its schema source and its seed."""

    root: str
    schema: str | None
    seed: str | None
    seed_files: tuple[str, ...]
    quiet_alembic: bool
    variables: Mapping[str, str]
    """The project's variables and their templates: an error naming one says its value."""

    @property
    def runs_project_code(self) -> bool:
        """Whether there is anything of the project's to run: a schema or a seed."""
        return bool(self.schema or self.seed)

    @property
    def reading_imports_project_code(self) -> bool:
        """Whether reading imports the project's modules (metadata, a seed), not only files."""
        from ci_kit.schema.template import is_alembic_source

        return bool(self.seed) or bool(self.schema and not is_alembic_source(self.schema))


@dataclass(frozen=True)
class SchemaReading:
    """What reading the schema found: its digest (for any server) and its description."""

    digest: str
    describe: str

    def fingerprint(self, server_major: int) -> str:
        """The template's fingerprint on a server of this major version."""
        from ci_kit.schema.template import template_fingerprint

        return template_fingerprint(self.digest, server_major=server_major)


def request_from(config: KitConfig) -> SchemaRequest:
    """The request for a run's configuration."""
    return SchemaRequest(
        root=str(config.root),
        schema=config.schema,
        seed=config.seed,
        seed_files=tuple(config.seed_files),
        quiet_alembic=config.alembic_logging == "quiet",
        variables=dict(config.env),
    )


@dataclass(frozen=True)
class ChildStart:
    """What a schema child starts from: the test process as it was when the run began;
    and the children started from it, until they end.

    Taken once, by the thread that may: an xdist controller prepares on a thread
    (:mod:`ci_kit.background`) while its main thread imports the conftests, which
    change ``os.environ`` and ``sys.path`` as they go, under pytest's capture of
    the standard streams. ``stdout`` and ``stderr``: the descriptors a child
    writes to (the project's output is the run's, not start-up noise for that
    capture to drop); None inherits this process's. An interrupt reaches that
    thread only through :meth:`end_children`: the child it waits for ends, and its
    wait with it.
    """

    environ: Mapping[str, str]
    sys_path: tuple[str, ...]
    stdout: int | None = None
    stderr: int | None = None
    live: set[subprocess.Popen[bytes]] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def now(cls, *, stdout: int | None = None, stderr: int | None = None) -> ChildStart:
        return cls(dict(os.environ), tuple(sys.path), stdout, stderr)

    def close_descriptors(self) -> None:
        """Close ``stdout`` and ``stderr`` once no child will start: each child has its own."""
        for descriptor in (self.stdout, self.stderr):
            if descriptor is not None:
                os.close(descriptor)

    def end_children(self) -> None:
        """End every child still running (SIGTERM): called from a signal handler."""
        for process in list(self.live):
            if process.poll() is None:
                process.terminate()


class SchemaChild:
    """One ``python -m ci_kit.schema`` process: requests in, one answer per request out.

    Its environment is ``start``'s with ``environment`` over it, and its
    ``sys.path`` ``start``'s, so the project imports as it would in the test process.
    """

    def __init__(
        self, request: SchemaRequest, environment: Mapping[str, str], start: ChildStart
    ) -> None:
        self.request = request
        self._start = start
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        argv = [sys.executable, "-m", "ci_kit.schema", str(request_read), str(answer_write)]
        try:
            self._process = subprocess.Popen(
                argv,
                env={**start.environ, **environment},
                pass_fds=(request_read, answer_write),
                stdout=start.stdout,
                stderr=start.stderr,
            )
        finally:
            os.close(request_read)
            os.close(answer_write)
        start.live.add(self._process)
        self._requests: IO[str] = os.fdopen(request_write, "w", encoding="utf-8")
        self._answers: IO[str] = os.fdopen(answer_read, encoding="utf-8")
        self._pending = False
        self._send({"request": asdict(self.request), "sys_path": list(start.sys_path)})

    def start_reading(self) -> None:
        """Ask for the schema's digest and description; :meth:`reading` waits for them.

        The child reads (imports the project's code, hashes the migrations) while
        the caller does something else: the preparation starts the server.
        """
        self._send({"task": "read"})
        self._pending = True

    def reading(self) -> SchemaReading:
        """The answer to :meth:`start_reading`, read by the project's own code."""
        answer = self._receive(None, step="reading the schema")
        self._pending = False
        return SchemaReading(digest=answer["digest"], describe=answer["describe"])

    def build(self, url: URL, environment: Mapping[str, str]) -> None:
        """Build the schema (and seed) into the database ``url`` names.

        ``environment`` is set in the child before it runs the project's code; a
        child whose reading already imported that code must not be asked.
        """
        message = {"task": "build", "url": url_parts(url), "environment": dict(environment)}
        self._ask(message, url, step=f"building template {url.database}")

    def close(self) -> None:
        """Let the child go (it exits when its requests end), or end it if it will not.

        A child still working on a request the caller gave up on (the preparation
        failed meanwhile) is ended at once: its answer has nobody to go to.
        """
        if self._pending:
            self._process.terminate()
        for pipe in (self._requests, self._answers):
            with contextlib.suppress(OSError):  # a child that died unread: a broken pipe
                pipe.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._start.live.discard(self._process)

    def _send(self, message: Mapping[str, Any]) -> None:
        try:
            self._requests.write(json.dumps(message) + "\n")
            self._requests.flush()
        except BrokenPipeError:
            pass  # the child is gone: its answer, or its absence, says why

    def close_in_background(self) -> None:
        """:meth:`close` without waiting for the child's interpreter to exit (~0.2 s).

        For a child whose work is done and whose databases were used since (a
        session of its still open would have made that use fail): it exits as its
        requests end, and a thread reaps it.
        """
        threading.Thread(target=self.close, name="ci-kit-schema-reaper", daemon=True).start()

    def _ask(self, message: Mapping[str, Any], url: URL | None, *, step: str) -> dict[str, Any]:
        self._send(message)
        return self._receive(url, step=step)

    def _receive(self, url: URL | None, *, step: str) -> dict[str, Any]:
        try:
            raw = self._answers.readline()
        except BaseException:  # Ctrl-C, SIGTERM: the child must not outlive the run
            self._process.terminate()
            raise
        if not raw:
            raise self._died(step)
        answer: dict[str, Any] = json.loads(raw)
        if "error" in answer:
            raise _error(answer["error"], url)
        return answer

    def _died(self, step: str) -> CiKitError | Interrupted:
        code = self._process.wait()
        if code in (INTERRUPTED, -2):
            return Interrupted(f"interrupted while {step}; no test ran")
        return CiKitError(
            f"{step} failed: the schema process (python -m ci_kit.schema) ended with exit "
            f"code {code} and no answer; its output, if any, is above"
        )


@contextmanager
def schema_child(
    request: SchemaRequest, environment: Mapping[str, str], start: ChildStart
) -> Iterator[SchemaChild]:
    """A :class:`SchemaChild` for the block, closed whatever happens."""
    child = SchemaChild(request, environment, start)
    try:
        yield child
    finally:
        child.close()


class ProjectSchema:
    """A project's schema for one run: read once, built at most once, each by the right child."""

    def __init__(
        self, request: SchemaRequest, reader: SchemaChild | None, start: ChildStart
    ) -> None:
        self.request = request
        self._reader = reader
        self._start = start
        self._reading = None if reader is not None else _empty_reading()
        if reader is not None:
            reader.start_reading()

    @property
    def reading(self) -> SchemaReading:
        """The schema's digest and description, waited for on first use."""
        if self._reading is None:
            assert self._reader is not None  # a reading is only missing while one is read
            self._reading = self._reader.reading()
        return self._reading

    def build(self, url: URL, environment: Mapping[str, str]) -> None:
        """Build into ``url``'s database; the project's code sees ``environment`` from its start."""
        if not self.request.runs_project_code:
            return  # an empty template: the database is all there is
        if self._reader is not None and not self.request.reading_imports_project_code:
            _ = self.reading  # its answer comes first on the pipe
            self._reader.build(url, environment)
            return
        with schema_child(self.request, environment, self._start) as builder:
            builder.build(url, environment)


@contextmanager
def project_schema(
    request: SchemaRequest, reading_environment: Mapping[str, str], start: ChildStart | None = None
) -> Iterator[ProjectSchema]:
    """Read the project's schema while the block starts the server; build it later if asked.

    ``reading_environment`` is what the project's code sees while only reading:
    variables naming a database that exists nowhere. The reading child is let go
    without waiting for its exit when the block succeeds (by then the template it
    may have built was sealed and cloned); a failure ends it before going on.
    ``start``: what every child starts from, this process as it is now by default.
    """
    if start is None:
        start = ChildStart.now()
    if not request.runs_project_code:
        yield ProjectSchema(request, None, start)
        return
    reader = SchemaChild(request, reading_environment, start)
    try:
        yield ProjectSchema(request, reader, start)
    except BaseException:
        reader.close()
        raise
    reader.close_in_background()


def _empty_reading() -> SchemaReading:
    """No schema, no seed: nothing of the project's to run, so no child to read it."""
    from ci_kit.schema.empty import EmptySchema
    from ci_kit.schema.template import schema_digest

    return SchemaReading(digest=schema_digest(EmptySchema()), describe=EmptySchema().describe())


def _error(error: Mapping[str, str], url: URL | None) -> CiKitError:
    """The child's error as the kit's own class, so callers tell kinds apart as before."""
    kind = getattr(errors, error["kind"], CiKitError)
    if not (isinstance(kind, type) and issubclass(kind, CiKitError)):
        kind = CiKitError
    message = error["message"]
    return kind(message if url is None else redact(message, url))
