"""What processing one webhook event did: counts, problems, after-commit work."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """What processing one event did (counts) and what a person should look at (problems)."""

    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    after_commit: list[Any] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)
        self.counts["problems"] += 1

    def outcome(self) -> dict[str, int]:
        """The counts worth keeping on the event (zeros dropped)."""
        return {key: count for key, count in self.counts.items() if count}
