"""A run's plan and report: values only, no I/O.

The plan is the one channel from the controller to its workers, so it is plain
data that crosses a process boundary intact; the report is what a person reads at
the top and end of a run. Neither does anything: a worker reads its plan without
importing the code that prepared it, and both can be built and checked in a test
without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import URL

from ci_kit.dburl import DRIVERNAME, url_from_parts, url_parts


@dataclass(frozen=True)
class RunPlan:
    """What every worker needs from the controller, as plain values execnet can carry.

    The server URL travels as its parts, not as a rendered string, so a password
    with ``%`` or ``@`` in it arrives exactly as it left.
    """

    server: Mapping[str, Any]
    run_id: str
    base_name: str
    template: str
    isolation: str
    settings: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    """The variables pointed at each process's database, with their templates."""
    url_driver: str = DRIVERNAME
    """The scheme and driver ``{url}`` is rendered in: the configured URL's."""
    disposable: bool = False
    """The server goes with the run (an ephemeral embedded cluster): whatever is left
    on it at the end is deleted with it, so nobody spends the run's last seconds
    dropping databases one by one."""

    @property
    def server_url(self) -> URL:
        return url_from_parts(self.server)

    def variables_for(self, url: URL) -> dict[str, str]:
        """The values of :attr:`env` for the database ``url`` names."""
        from ci_kit.variables import rendered

        return rendered(self.env, url, self.url_driver)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self) | {
            "server": dict(self.server),
            "settings": dict(self.settings),
            "env": dict(self.env),
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RunPlan:
        return cls(**wire)

    @classmethod
    def for_server(cls, url: URL, **fields: Any) -> RunPlan:
        return cls(server=url_parts(url), **fields)


@dataclass(frozen=True)
class RunReport:
    """The facts a person wants at the top of a run."""

    server: str
    version: str
    base_name: str
    template: str
    schema: str
    template_built: bool
    template_seconds: float
    swept: tuple[str, ...]
    server_seconds: float = 0.0
    """Finding or starting the server: an embedded one's ``initdb`` and start."""
    seed: str | None = None
    """The seed function the template's rows come from, when the project has one."""
    stop_command: str | None = None
    """How to stop the server the run leaves running (a kept one), where the run started."""

    def summary(self) -> str:
        """One line for the end of a run."""
        action = "built" if self.template_built else "reused"
        seeded = " (seeded)" if self.seed else ""
        server = self.server.split(",")[0]
        if self.stop_command:
            server += f", kept running: {self.stop_command} stops it"
        return (
            f"PostgreSQL {self.version} ({server}); "
            f"template {action}{seeded} in {self.template_seconds:.2f} s"
        )

    def lines(self) -> list[str]:
        action = "built" if self.template_built else "reused"
        seeded = f", seeded by {self.seed}" if self.seed else ""
        lines = [
            f"PostgreSQL {self.version} ({self.server})",
            f"template {self.template} {action} in {self.template_seconds:.2f} s "
            f"from {self.schema}{seeded}; test databases {self.base_name}[_gwN]",
        ]
        if self.swept:
            lines.append(f"dropped {len(self.swept)} leftover database(s): {', '.join(self.swept)}")
        return lines
