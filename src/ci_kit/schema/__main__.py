"""``python -m ci_kit.schema REQUEST_FD ANSWER_FD``: a template's steps, in their own process.

Started by :mod:`ci_kit.schema.process`, never by a person. It reads JSON lines:
first the project's request, then tasks (read the schema's digest, build it into
a template), answering each with one JSON line, the result or the kit's one-line
error, until its requests end. Its standard streams are the project's: what an
``env.py`` prints reaches the terminal as from ``alembic upgrade head``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ci_kit.errors import CiKitError
from ci_kit.schema.process import INTERRUPTED

if TYPE_CHECKING:
    from ci_kit.schema import SchemaSource, Seed


def main(argv: list[str]) -> int:
    request_fd, answer_fd = (int(value) for value in argv)
    with (
        os.fdopen(request_fd, encoding="utf-8") as requests,
        os.fdopen(answer_fd, "w", encoding="utf-8") as answers,
    ):
        try:
            _serve(requests, answers)
        except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent says it
            return INTERRUPTED
        except BrokenPipeError:  # the parent went away: nobody to answer
            return 1
    return 0


def _serve(requests: IO[str], answers: IO[str]) -> None:
    first = json.loads(requests.readline())
    sys.path[:] = first["sys_path"]  # the project imports as in the test process
    project = _Project(first["request"])
    for line in requests:
        message = json.loads(line)
        try:
            answer = _TASKS[message["task"]](project, message)
        except CiKitError as error:
            said = str(error) + _values_named(error, project.variables)
            answer = {"error": {"kind": type(error).__name__, "message": said}}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


class _Project:
    """The request's schema and seed, parsed once, when first needed."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.request = request
        self.variables: Mapping[str, str] = request["variables"]
        self._parsed: tuple[SchemaSource, Seed | None] | None = None

    def parsed(self) -> tuple[SchemaSource, Seed | None]:
        if self._parsed is None:
            from ci_kit.schema import parse_schema_source, parse_seed

            root = Path(self.request["root"])
            quiet = self.request["quiet_alembic"]
            source = parse_schema_source(self.request["schema"], root, quiet_alembic=quiet)
            seed = parse_seed(self.request["seed"], self.request["seed_files"], root)
            self._parsed = source, seed
        return self._parsed


def _read(project: _Project, _message: Mapping[str, Any]) -> dict[str, Any]:
    from ci_kit.schema.template import schema_digest

    source, seed = project.parsed()
    return {"digest": schema_digest(source, seed), "describe": source.describe()}


def _build(project: _Project, message: Mapping[str, Any]) -> dict[str, Any]:
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    from ci_kit.dburl import url_from_parts
    from ci_kit.schema import build_schema
    from ci_kit.sessions import configure_session

    os.environ.update(message["environment"])  # before the project's code runs here
    source, seed = project.parsed()
    # NullPool: no pooled connection may outlive the build, or cloning would wait
    # for it and then fail ("source database is being accessed by other users").
    engine = create_engine(url_from_parts(message["url"]), poolclass=NullPool)
    # The build is the kit's session too: no role's timeout or read-only default cuts it.
    event.listen(engine, "connect", lambda connection, _record: configure_session(connection))
    try:
        with engine.connect() as connection:
            build_schema(source, connection, seed=seed)
    finally:
        engine.dispose()
    return {"built": True}


def _values_named(error: CiKitError, variables: Mapping[str, str]) -> str:
    """The kit's variables the project's error names, with the values the kit gave them.

    A settings class that rejects a value (pydantic's ``ValidationError`` on
    ``POSTGRES_PORT``) names the field, not where its value came from: this says
    the kit set it, and to what, password masked.
    """
    from ci_kit.variables import masked_value

    cause = error.__cause__
    text = str(cause).lower() if cause is not None else ""
    named = [
        f"{name}={masked_value(template, os.environ.get(name, ''))}"
        for name, template in variables.items()
        if name.lower() in text
    ]
    return f" (the kit set {', '.join(named)})" if named else ""


_TASKS = {"read": _read, "build": _build}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
