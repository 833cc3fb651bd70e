import BurrowFleet
import Prometheus

/// What `GET /metrics` exposes, in the Prometheus text format.
final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Live sandboxes.
    let active: Gauge
    /// clone3 to execve of each sandbox.
    let spawn: DurationHistogram
    /// Request to result of each non-streamed invocation.
    let roundTrip: DurationHistogram

    init() {
        active = registry.makeGauge(descriptor: Self.metric("active_sandboxes", "", "Sandboxes running now."))
        let buckets: [Duration] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        spawn = registry.makeDurationHistogram(descriptor: Self.metric("spawn", "seconds", "Time from clone3 to the tool's execve."), buckets: buckets)
        roundTrip = registry.makeDurationHistogram(
            descriptor: Self.metric("invocation", "seconds", "Invocation time as burrowd saw it, request to result."), buckets: buckets + [.seconds(10), .seconds(60)])
    }

    /// The central audit copy: how far behind it is, in events and in seconds, and whether shipping is connected.
    func shipping(_ state: AuditShipper.State) {
        registry.makeGauge(descriptor: Self.metric("audit_shipping_lag_events", "", "Events of the local audit log not yet in the central copy."))
            .set(Double(max(0, state.head - state.shipped)))
        registry.makeGauge(descriptor: Self.metric("audit_shipping_lag", "seconds", "Age of the oldest event not yet in the central copy (0: none waiting)."))
            .set(Double(state.lagMicroseconds) / 1_000_000)
        registry.makeGauge(descriptor: Self.metric("audit_shipping_connected", "", "1 while connected to the central copy."))
            .set(state.connected ? 1.0 : 0.0)
        registry.makeGauge(descriptor: Self.metric("audit_shipping_stopped", "", "1 once shipping stopped on a divergence (AnomalousActivity central_divergence)."))
            .set(state.stopped == nil ? 0.0 : 1.0)
    }

    /// One sync of the fleet's rate counters done (`[rate_limits] scope = "fleet"`).
    func fleetSynced() {
        registry.makeCounter(descriptor: Self.metric("fleet_counter_syncs", "total", "Syncs of the fleet's rate counters that read the other nodes' counts.")).increment()
    }

    /// The replica of the fleet's registry (`[registry] url`).
    func replica(_ state: (connected: Bool, revision: Int64)) {
        registry.makeGauge(descriptor: Self.metric("registry_replica_connected", "", "1 while following the fleet's registry (0: serving the registrations last taken)."))
            .set(state.connected ? 1.0 : 0.0)
        registry.makeGauge(descriptor: Self.metric("registry_replica_revision", "", "The fleet registry's revision this node's replica holds."))
            .set(Double(state.revision))
    }

    /// outcome: completed, failed (the tool exited non-zero, was killed or hit a limit), refused (never started).
    func invocation(_ outcome: String) {
        registry.makeCounter(descriptor: Self.metric("invocations", "total", "Invocations by outcome."), labels: [("outcome", outcome)]).increment()
    }

    func limit(_ resource: String) {
        registry.makeCounter(descriptor: Self.metric("limit_events", "total", "Resource limits hit, by resource."), labels: [("resource", resource)]).increment()
    }

    func violation(_ syscall: String) {
        registry.makeCounter(descriptor: Self.metric("security_violations", "total", "Distinct refused system calls per invocation."), labels: [("syscall", syscall)]).increment()
    }

    /// Refusals a profile named in `permissions.quiet_refusals`: counted, never violations.
    func quietRefusal(_ syscall: String, count: Int) {
        registry.makeCounter(descriptor: Self.metric("quiet_refusals", "total", "Refused system calls a profile expects (permissions.quiet_refusals)."), labels: [("syscall", syscall)])
            .increment(by: Int64(count))
    }

    /// reason: role_required, rate_limited, too_many_concurrent, registration_limit, plan_refused, …
    func denial(_ reason: String) {
        registry.makeCounter(descriptor: Self.metric("denials", "total", "Requests refused (recorded as PermissionDenied; one caller's repeats aggregated)."), labels: [("reason", reason)]).increment()
    }

    /// hit (the request used a sandbox built ahead), unfit (its plan differed:
    /// discarded), cold (none was ready), lost (it died while waiting).
    func warm(_ outcome: String) {
        registry.makeCounter(descriptor: Self.metric("warm_sandboxes", "total", "Invocations by what they found built ahead."), labels: [("outcome", outcome)]).increment()
    }

    /// outcome: healthy, failed, skipped (every slot of the tool was taken).
    func healthCheck(_ tool: String, _ outcome: String) {
        registry.makeCounter(descriptor: Self.metric("health_checks", "total", "Health checks by tool and outcome."), labels: [("tool", tool), ("outcome", outcome)])
            .increment()
    }

    /// A checked tool's health: 0 active (or not checked yet), 1 degraded, 2 unavailable; nil: no longer checked.
    func health(_ tool: String, _ value: Double?) {
        let gauge = registry.makeGauge(descriptor: Self.metric("tool_health", "", "Health of each checked tool: 0 active, 1 degraded, 2 unavailable."), labels: [("tool", tool)])
        if let value { gauge.set(value) } else { registry.unregisterGauge(gauge) }
    }

    func text() -> [UInt8] { registry.emitToBuffer() }

    /// `burrow_<name>_<unit>`.
    private static func metric(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "burrow", metricName: name, unitName: unit, helpText: help)
    }
}
