"""Access-log lines a destination (the file, syslog) could not take: counted in the worker's
counter row and logged at most once per `report_interval` with the count and the error, plus
once when lines go through again (see LossTally)."""

from __future__ import annotations

from collections.abc import Callable

from registry.shm.counters import Stat
from runtime import logs
from runtime.log_rates import LossReport, LossTally

log = logs.EventLog("vcap.gorouter.access-log")


class LineLosses:
    """One destination's losses. `event` names its log lines (`<event>-failed`,
    `<event>-resumed`); `where` are the fields that say which destination it is."""

    def __init__(
        self,
        event: str,
        where: dict[str, str],
        report_interval: float,
        stats: memoryview | None,
        clock: Callable[[], float],
        count_failures: bool,
    ) -> None:
        self.event = event
        self.where = where
        self.report_interval = report_interval
        self._stats = stats
        self._clock = clock
        self._count_failures = count_failures  # each failed call in access_log_write_errors
        self._tally = LossTally(report_interval)

    def __repr__(self) -> str:
        return f"LineLosses({self.event}, {self._tally!r})"

    @property
    def has_held_back(self) -> bool:
        """Lines were lost since the last report, which `report_due` will log in time."""
        return self._tally.lost > 0

    def lose(self, lines: int, error: str) -> None:
        """Count lines that will never be written; log when a report is due."""
        report = self._tally.lose(lines, error, self._clock())
        if self._stats is not None:
            if self._count_failures:
                self._stats[Stat.access_log_write_errors] += 1
            self._stats[Stat.access_log_dropped_lines] += lines
        self._log(report)

    def went_through(self) -> None:
        """Lines were written: after failures, says so once."""
        if self._tally.is_failing:
            self._log(self._tally.written(self._clock()))

    def report_due(self) -> None:
        """Log the losses held back since the last report, if its interval is over."""
        self._log(self._tally.due(self._clock()))

    def report_now(self) -> None:
        """Log whatever is held back (the destination is closing: nobody will later)."""
        self._log(self._tally.due(self._clock() + self.report_interval))

    def _log(self, report: LossReport | None) -> None:
        if report is None:
            return
        if report.resumed:
            log.info(
                f"{self.event}-resumed",
                **self.where,
                lost_lines=report.lost,
                total_lost_lines=report.total,
                last_error=report.error,
            )
        else:
            log.error(
                f"{self.event}-failed",
                **self.where,
                lost_lines=report.lost,
                total_lost_lines=report.total,
                error=report.error,
                report_interval=self.report_interval,
            )


__all__ = ["LineLosses"]
