"""Data-quality checks run on every pipeline run.

A check returns a :class:`CheckResult`; its ``policy`` decides what a failure does:
``fail`` stops the run (after committing what is valid), ``warn`` logs and records it,
``ignore`` only records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Policy = Literal["fail", "warn", "ignore"]
Status = Literal["passed", "failed", "warned", "ignored", "skipped"]


@dataclass
class CheckResult:
    """The outcome of one quality check in one run."""

    name: str
    status: Status
    policy: Policy = "fail"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(name: str, passed: bool, policy: Policy, **details: Any) -> CheckResult:
    """A result named ``name`` that failed (or warned, per ``policy``) unless ``passed``."""
    if passed:
        status: Status = "passed"
    else:
        status = "failed" if policy == "fail" else "warned" if policy == "warn" else "ignored"
    return CheckResult(name, status, policy, details)


def reconciliation(read: int, written: int, quarantined: int, filtered: int, policy: Policy = "fail") -> CheckResult:
    """Every row read was written, quarantined or deliberately filtered: nothing lost."""
    return judge(
        "reconciliation", read == written + quarantined + filtered, policy,
        rows_read=read, rows_written=written, rows_quarantined=quarantined, rows_filtered=filtered,
    )


__all__ = ["CheckResult", "Policy", "judge", "reconciliation"]
