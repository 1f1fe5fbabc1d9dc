"""The worker's delivery metrics, for Prometheus (prometheus_client; COMPLAINTS_METRICS_PORT serves them).

Counters count what this worker did; the gauges are read from the outbox by
the stall monitor (delivery/monitor.py), so every worker reports the same
backlog.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

QUEUED = Counter("complaints_notifications_queued", "Notifications queued by escalations", registry=REGISTRY)
DELIVERED = Counter("complaints_notifications_delivered", "Successful delivery attempts", ["channel"], registry=REGISTRY)
RETRIED = Counter("complaints_notifications_retried", "Failed delivery attempts that will be tried again", ["channel"], registry=REGISTRY)
DEAD = Counter("complaints_notifications_dead", "Notifications every channel gave up on", registry=REGISTRY)
CASE_EVENTS_DEAD = Counter(
    "complaints_case_events_dead", "Case events a subscription never took: their case's feed stops there", registry=REGISTRY
)
PENDING = Gauge("complaints_notifications_pending", "Notifications not yet delivered, by status", ["status"], registry=REGISTRY)
OLDEST_PENDING = Gauge(
    "complaints_notifications_oldest_pending_seconds", "Age of the oldest queued, sending or retrying notification", registry=REGISTRY
)
STALLED = Gauge(
    "complaints_delivery_stalled", "Notifications pending longer than DELIVERY_STALLED_SECONDS", registry=REGISTRY
)


def serve_metrics(port: int, address: str = "127.0.0.1") -> Callable[[], None]:
    """Serve /metrics on `port` from a daemon thread (prometheus_client's own server); returns what stops it.
    OSError when the port is taken."""
    server, thread = start_http_server(port, addr=address, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
