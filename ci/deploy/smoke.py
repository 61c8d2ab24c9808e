"""``invoke e2e``: the sample's ``e2e`` smoke tests against a live URL.

They run from a virtual environment of the release being deployed, so the tests
are the deployed commit's own. Success needs pytest to exit 0 *and* at least one
test to pass with none skipped: the smoke tests skip themselves without a URL or
an admin token, and a run where nothing ran proves nothing.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ci.deploy.errors import SmokeTestsFailed
from ci.deploy.shell import Shell, tail

SMOKE_MODULE = "backend_sample/tests/test_e2e_smoke.py"


@dataclass(frozen=True)
class SmokeResult:
    tests: int
    failed: int
    skipped: int
    exit_code: int

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.skipped

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.passed > 0 and self.failed == 0 and self.skipped == 0

    def summary(self) -> str:
        return (
            f"{self.passed} passed, {self.failed} failed or errored, {self.skipped} skipped "
            f"(pytest exit {self.exit_code})"
        )


def smoke_tests_path(venv: Path) -> Path:
    """The smoke test module installed in a release's virtual environment."""
    found = sorted(venv.glob(f"lib/python*/site-packages/{SMOKE_MODULE}"))
    if not found:
        raise SmokeTestsFailed(f"no {SMOKE_MODULE} in {venv}; was the wheel built from the sample?")
    return found[0]


def run_smoke_tests(shell: Shell, venv: Path, base_url: str, admin_token: str) -> SmokeResult:
    """Run the smoke tests of ``venv``'s release against ``base_url``; raise unless they pass."""
    module = smoke_tests_path(venv)
    with tempfile.TemporaryDirectory(prefix="ci-kit-e2e-") as work:
        report = Path(work) / "junit.xml"
        argv: list[str | Path] = [
            venv / "bin" / "python", "-m", "pytest", module, "-m", "e2e",
            "--e2e-base-url", base_url,
            "-p", "no:ci_kit", "-p", "no:randomly", "-p", "no:cacheprovider",
            "-q", "-rfEs", f"--junitxml={report}", f"--rootdir={work}",
        ]  # fmt: skip
        # The admin token reaches the tests through the environment, as the server reads it.
        output = shell.run(argv, env={"ADMIN_TOKEN": admin_token}, cwd=Path(work), check=False)
        result = _parse(report, output.exited)
    shell.log(f"smoke tests: {result.summary()}")
    if not result.ok:
        detail = [
            line
            for line in output.stdout.splitlines()
            if line.startswith(("FAILED", "ERROR", "SKIPPED"))
        ]
        # No test lines: pytest stopped before any test (a conftest that fails to
        # import, an unknown option); its last lines are then the only account.
        shown = "; ".join(detail[:5]) or tail(output.stdout + output.stderr, 3)
        raise SmokeTestsFailed(f"smoke tests against {base_url}: {result.summary()}: {shown}")
    return result


def _parse(report: Path, exit_code: int) -> SmokeResult:
    if not report.is_file():
        return SmokeResult(0, 0, 0, exit_code or 1)
    suite = ET.parse(report).getroot()  # noqa: S314 (pytest wrote it, just now)
    if suite.tag == "testsuites":
        suite = suite[0]
    count = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return SmokeResult(count, failed, int(suite.get("skipped", 0)), exit_code)
