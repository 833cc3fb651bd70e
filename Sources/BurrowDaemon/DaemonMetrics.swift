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
        active = registry.makeGauge(name: "burrow_active_sandboxes", help: "Sandboxes running now.")
        let buckets: [Duration] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        spawn = registry.makeDurationHistogram(name: "burrow_spawn_seconds", buckets: buckets, help: "Time from clone3 to the tool's execve.")
        roundTrip = registry.makeDurationHistogram(
            name: "burrow_invocation_seconds", buckets: buckets + [.seconds(10), .seconds(60)], help: "Invocation time as burrowd saw it, request to result.")
    }

    /// outcome: completed, failed (the tool exited non-zero, was killed or hit a limit), refused (never started).
    func invocation(_ outcome: String) {
        registry.makeCounter(name: "burrow_invocations_total", labels: [("outcome", outcome)], help: "Invocations by outcome.").increment()
    }

    func limit(_ resource: String) {
        registry.makeCounter(name: "burrow_limit_events_total", labels: [("resource", resource)], help: "Resource limits hit, by resource.").increment()
    }

    func violation(_ syscall: String) {
        registry.makeCounter(name: "burrow_security_violations_total", labels: [("syscall", syscall)], help: "Distinct refused system calls per invocation.").increment()
    }

    /// reason: role_required, rate_limited, too_many_concurrent, registration_limit, plan_refused, …
    func denial(_ reason: String) {
        registry.makeCounter(name: "burrow_denials_total", labels: [("reason", reason)], help: "Requests refused (each is a PermissionDenied audit event).").increment()
    }

    /// hit (the request used a sandbox built ahead), unfit (its plan differed:
    /// discarded), cold (none was ready), lost (it died while waiting).
    func warm(_ outcome: String) {
        registry.makeCounter(name: "burrow_warm_sandboxes_total", labels: [("outcome", outcome)], help: "Invocations by what they found built ahead.").increment()
    }

    func text() -> [UInt8] { registry.emitToBuffer() }
}
