"""Per-kernel (OpenCL) or per-op (NumPy) timing of a compiled function."""

from __future__ import annotations

from collections import defaultdict


class Profile:
    """Accumulated time per kernel or op; ``summary()`` formats it as a table."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.calls = 0
        self._totals: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def record(self, label: str, seconds: float) -> None:
        self._totals[label] += seconds
        self._counts[label] += 1

    def rows(self) -> list[tuple[str, int, float, float, float]]:
        """``(label, calls, total s, mean s, share)`` sorted by total time, largest first."""
        grand = sum(self._totals.values()) or 1.0
        rows = [(label, self._counts[label], total, total / self._counts[label], total / grand)
                for label, total in self._totals.items()]
        return sorted(rows, key=lambda row: -row[2])

    def summary(self, file=None) -> str:
        """Print and return the table: kernel, calls, total and mean time, share."""
        width = max([len(r[0]) for r in self.rows()] + [6])
        lines = [f"profile of function {self.name!r}: {self.calls} calls",
                 f"{'kernel':<{width}}  {'calls':>8}  {'total ms':>10}  {'mean us':>10}  "
                 f"{'share':>6}"]
        for label, calls, total, mean, share in self.rows():
            lines.append(f"{label:<{width}}  {calls:>8}  {total * 1e3:>10.3f}  "
                         f"{mean * 1e6:>10.1f}  {share:>6.1%}")
        text = "\n".join(lines)
        print(text, file=file)
        return text
