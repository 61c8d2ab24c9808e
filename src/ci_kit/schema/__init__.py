"""What shapes a template: its schema source and an optional seed, named by a hash.

- :mod:`ci_kit.schema.source`: :class:`SchemaSource`, what every kind of schema
  offers (describe, fingerprint parts, build, verify);
- :mod:`ci_kit.schema.alembic`, :mod:`~ci_kit.schema.metadata`,
  :mod:`~ci_kit.schema.empty`: one module per kind;
- :mod:`ci_kit.schema.seed`: the project's function that loads reference data;
- :mod:`ci_kit.schema.template`: choosing the kind, the template's fingerprint and
  its build, for any kind;
- :mod:`ci_kit.schema.targets`: importing ``package.module:attribute`` from the project.

The names re-exported here are the API; the modules' other names without a leading
underscore are shared between them, internal to the package.
"""

from __future__ import annotations

from ci_kit.schema.seed import Seed, parse_seed
from ci_kit.schema.source import SchemaSource
from ci_kit.schema.template import (
    FINGERPRINT_VERSION,
    build_schema,
    fingerprint,
    parse_schema_source,
)

__all__ = [
    "FINGERPRINT_VERSION",
    "SchemaSource",
    "Seed",
    "build_schema",
    "fingerprint",
    "parse_schema_source",
    "parse_seed",
]
