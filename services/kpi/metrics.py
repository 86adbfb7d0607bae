"""Live SLA metrics for Prometheus/Grafana, read from the last computed report."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.kpi.core import SlaFigures, SlaReport

FIRST_RESPONSE_SECONDS = Histogram(
    "scs_kpi_first_response_seconds",
    "Time from a case opening to the brand's first answer, observed as answers arrive",
    ["tenant", "channel", "priority"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800),
)

# name, help, value of one slice
_GAUGES: tuple[tuple[str, str, Callable[[SlaFigures], float | int | None]], ...] = (
    ("scs_kpi_cases", "Cases opened in the window", lambda f: f.cases),
    (
        "scs_kpi_backlog_cases",
        "Cases in the window still waiting for a first answer",
        lambda f: f.backlog,
    ),
    (
        "scs_kpi_breached_open_cases",
        "Unanswered cases past their first-response deadline",
        lambda f: f.breached_open,
    ),
    (
        "scs_kpi_first_response_sla_attainment_ratio",
        "Answered within deadline / (answered + unanswered past deadline)",
        lambda f: f.attainment,
    ),
    ("scs_kpi_response_rate_ratio", "Cases answered / cases opened", lambda f: f.response_rate),
    (
        "scs_kpi_first_response_average_seconds",
        "Average time to first answer",
        lambda f: f.average_first_response_seconds,
    ),
    (
        "scs_kpi_handoff_rate_ratio",
        "Cases handed off out of the social channel / cases opened",
        lambda f: f.handoff_rate,
    ),
    (
        "scs_kpi_social_resolution_rate_ratio",
        "Cases resolved in the social channel / cases opened",
        lambda f: f.social_resolution_rate,
    ),
)


class SlaCollector(Collector):
    """Exposes the reports computed by the KPI service's refresher at scrape time, one set of
    series per tenant label (the listed tenants and "other": a closed set)."""

    def __init__(self, current: Callable[[], dict[str, SlaReport] | None]) -> None:
        self._current = current

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reports = self._current()
        if reports is None:
            return
        for name, help_text, value_of in _GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["tenant", "dimension", "value"])
            for tenant, report in reports.items():
                slices: list[tuple[str, str, SlaFigures]] = [("all", "all", report.overall)]
                slices += [("priority", p.value, f) for p, f in report.by_priority.items()]
                slices += [("channel", c.value, f) for c, f in report.by_channel.items()]
                for dimension, label, figures in slices:
                    value = value_of(figures)
                    if value is not None:
                        family.add_metric([tenant, dimension, label], float(value))
            yield family


def register_sla_collector(current: Callable[[], dict[str, SlaReport] | None]) -> SlaCollector:
    collector = SlaCollector(current)
    REGISTRY.register(collector)
    return collector
