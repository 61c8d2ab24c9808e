"""The child that runs the project's schema code: what reaches the run when it dies."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from ci_kit.dburl import render
from tests.helpers.server import database_names

# A module that ends its own process: a C extension's crash, an os._exit in a
# library, the OOM killer, as the kit sees them.
DYING_AT_IMPORT = "import os\nos._exit(3)\n"

DYING_AT_BUILD = """
import os
from sqlalchemy import Column, Integer, MetaData, Table, event

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True))

@event.listens_for(items, "after_create")
def die(target, connection, **kw):
    if "_tpl_" in os.environ["DB_NAME"]:  # building, not reading (which renders the DDL too)
        os._exit(5)
"""


@pytest.mark.parametrize(
    ("models", "step", "code"),
    [
        (DYING_AT_IMPORT, "reading the schema failed", 3),
        (DYING_AT_BUILD, "building template {base}_tpl_", 5),
    ],
    ids=["reading", "building"],
)
def test_a_child_that_dies_is_one_line_and_leaves_nothing(
    pytester: pytest.Pytester,
    server_url: URL,
    base_name: str,
    models: str,
    step: str,
    code: int,
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=(
            f'[tool.ci-kit]\nbase-name = "{base_name}"\nschema = "models:metadata"\n'
            '[tool.ci-kit.env]\nDB_NAME = "{database}"\n'
        ),
    )
    pytester.makepyfile(models=models, test_one="def test_one(db_url):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--ci-kit-url", render(server_url.set(database=base_name))
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    (line,) = [line for line in result.stderr.lines if line.strip()]
    assert line.startswith(f"ERROR: ci-kit: {step.format(base=base_name)}")
    assert line.endswith(
        f"the schema process (python -m ci_kit.schema) ended with exit code {code} and no "
        "answer; its output, if any, is above"
    )
    assert database_names(server_url, base_name) == set(), "the half-built template dropped"
