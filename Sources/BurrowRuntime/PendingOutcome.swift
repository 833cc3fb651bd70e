import BurrowAudit
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A run's last events (limits, thresholds, its terminal event) that the
/// audit log could not take when the run ended (a full disk), kept in
/// `/run/burrow/outcomes/<invocation>.json` (root only, on tmpfs, not on the
/// audit log's disk) until the log takes them. The sweep that closes
/// invocations left open then appends these, marked `recordedLate`, instead
/// of `supervisor_lost`: a run whose outcome is known is never relabelled.
/// Only a reboot in between loses them, and then the sweep's
/// `supervisor_lost` is the truth.
enum PendingOutcome {
    static func path(_ invocation: String) throws(RunError) -> String {
        // Invocation ids are burrow's own UUIDs: no '/' can reach the path.
        guard !invocation.isEmpty, !invocation.contains("/"), !invocation.hasPrefix(".") else { throw .preparation("not an invocation id: \(invocation)") }
        return try Lease.directory("outcomes") + "/" + invocation + ".json"
    }

    /// Keeps `events` (already redacted) for a later append; returns why it could not, or nil.
    static func save(_ events: [AuditEvent], invocation: String) -> String? {
        do {
            let file = try path(invocation)
            let data = try JSONEncoder().encode(events)
            let fd = open(file + ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { return "cannot keep the outcome in \(file): \(errnoName(errno))" }
            defer { close(fd) }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == data.count, fsync(fd) == 0, rename(file + ".tmp", file) == 0 else {
                unlink(file + ".tmp")
                return "cannot keep the outcome in \(file): \(errnoName(errno))"
            }
            return nil
        } catch {
            return "cannot keep the outcome: \(error)"
        }
    }

    /// The events kept for `invocation`, if any.
    static func load(_ invocation: String) -> [AuditEvent]? {
        guard let file = try? path(invocation), let text = try? FileIO.read(file) else { return nil }
        return try? JSONDecoder().decode([AuditEvent].self, from: Data(text.utf8))
    }

    static func isPending(_ invocation: String) -> Bool {
        guard let file = try? path(invocation) else { return false }
        return access(file, F_OK) == 0
    }

    static func remove(_ invocation: String) {
        if let file = try? path(invocation) { unlink(file) }
    }
}
