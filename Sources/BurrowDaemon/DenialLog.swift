import BurrowAudit
import BurrowHost
import BurrowSystem
import Synchronization

/// Every refusal of the API is a PermissionDenied audit event (and a
/// metric), but a caller cannot make the audit log grow as fast as it can
/// send requests: refusals of one caller (uid) for one reason within a
/// window ([audit] denial_window, 10 s) are aggregated.
///
/// - The first refusal in a window is written at once, durable before the
///   caller gets its answer, as every refusal was before.
/// - Later ones are counted. Their count is written as one PermissionDenied
///   (`repeated`, the window, the tools they named) when the window ends,
///   and once earlier, as soon as the count passes the anomaly threshold,
///   so AnomalousActivity (which counts `repeated`) fires on the burst.
/// - Strings the caller chose (a path, a message naming its input) are cut
///   to `maxStringBytes` in the details.
///
/// So one caller adds at most three rows per reason and window, whatever
/// its request rate; the reasons are a fixed set.
final class DenialLog: Sendable {
    static let maxStringBytes = 512
    /// Tools named in one aggregate.
    static let maxTools = 16

    private struct Key: Hashable {
        var caller: CallerIdentity.Key
        var reason: String
    }

    private struct Window {
        var started: UInt64
        var repeated = 0
        var tools: Set<String> = []
        var distinctTools = 0
        var message = ""
        var caller: CallerIdentity
        var flushedEarly = false
    }

    private let audit: AuditStore
    private let metrics: DaemonMetrics?
    private let window: UInt64
    private let threshold: Int?
    private let state = Mutex<[Key: Window]>([:])
    private let clock: @Sendable () -> UInt64

    /// - Parameters:
    ///   - windowNanoseconds: 0 writes every refusal (no aggregation).
    ///   - threshold: the audit log's anomaly threshold (nil: none).
    init(
        audit: AuditStore, metrics: DaemonMetrics?, windowNanoseconds: UInt64, threshold: Int?,
        clock: @escaping @Sendable () -> UInt64 = { Kernel.monotonicNanoseconds() }
    ) {
        self.audit = audit
        self.metrics = metrics
        self.window = windowNanoseconds
        self.threshold = threshold
        self.clock = clock
    }

    /// Records one refusal of `caller`'s request naming `tool`; the caller's
    /// process and group (or address) are added here, and strings it chose are cut.
    func record(caller: CallerIdentity, tool: String, _ refusal: RefusalDetails) async {
        let (reason, message) = (refusal.reason, refusal.message)
        metrics?.denial(reason)
        let key = Key(caller: caller.key, reason: reason)
        let now = clock()
        var events: [AuditEvent] = []
        state.withLock { s in
            if var w = s[key], now - w.started < window {
                w.repeated += 1
                w.distinctTools += w.tools.contains(tool) ? 0 : 1
                if w.tools.count < Self.maxTools { w.tools.insert(tool) }
                w.message = message
                w.caller = caller
                if let threshold, !w.flushedEarly, w.repeated > threshold {
                    events.append(aggregate(key, w, now: now))
                    w.repeated = 0
                    w.tools = []
                    w.distinctTools = 0
                    w.flushedEarly = true
                }
                s[key] = w
                return
            }
            if let previous = s[key], previous.repeated > 0 { events.append(aggregate(key, previous, now: now)) }
            if window > 0 { s[key] = Window(started: now, caller: caller) }
            events.append(first(caller: caller, tool: tool, refusal))
        }
        guard !events.isEmpty else { return }
        let (audit, written) = (audit, events)
        // The refusal stands whether or not it could be recorded.
        _ = try? await BlockingIO.run { try audit.append(written) }
    }

    /// Writes the counts of windows that have ended; burrowd calls it every
    /// second or so, and with `all` at shutdown.
    func flush(all: Bool = false) async {
        let now = clock()
        let events: [AuditEvent] = state.withLock { s in
            var out: [AuditEvent] = []
            for (key, w) in s where all || now - w.started >= window {
                if w.repeated > 0 { out.append(aggregate(key, w, now: now)) }
                s[key] = nil
            }
            return out
        }
        guard !events.isEmpty else { return }
        let audit = audit
        _ = try? await BlockingIO.run { try audit.append(events) }
    }

    private func context(_ caller: CallerIdentity) -> SecurityContext {
        let c = caller.caller
        return SecurityContext(principal: c.principal, uid: c.uid, host: UserDatabase.hostName)
    }

    private func first(caller: CallerIdentity, tool: String, _ refusal: RefusalDetails) -> AuditEvent {
        var d = refusal
        d.message = Self.cut(d.message)
        d.path = d.path.map(Self.cut)
        d.profile = d.profile.map(Self.cut)
        d.argv = d.argv.map { $0.prefix(32).map(Self.cut) }
        d.pid = caller.local?.pid
        d.gid = caller.local?.gid
        d.address = caller.remote?.address
        d.authentication = caller.remote?.method?.rawValue
        return AuditEvent(tool: tool, context: context(caller), details: d)
    }

    private func aggregate(_ key: Key, _ w: Window, now: UInt64) -> AuditEvent {
        let seconds = Double(now - w.started) / 1e9
        let details = RepeatedRefusalDetails(
            reason: key.reason, message: Self.cut("\(w.repeated) more refusals of this caller (\(key.reason)) in \((seconds * 10).rounded() / 10) s; the last: \(w.message)"),
            repeated: w.repeated, windowSeconds: seconds, tools: w.tools.sorted(), distinctTools: w.distinctTools, pid: w.caller.local?.pid,
            gid: w.caller.local?.gid, address: w.caller.remote?.address)
        // One tool: its trail carries the count (and its anomaly rule sees it); several: burrowd's.
        return AuditEvent(tool: w.tools.count == 1 ? w.tools.first ?? "burrowd" : "burrowd", context: context(w.caller), details: details)
    }

    static func cut(_ s: String) -> String {
        guard s.utf8.count > maxStringBytes else { return s }
        var out = ""
        for c in s {
            if out.utf8.count + c.utf8.count > maxStringBytes - 3 { break }
            out.append(c)
        }
        return out + "…"
    }
}
