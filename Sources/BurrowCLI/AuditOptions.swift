import ArgumentParser
import BurrowAudit
import BurrowHost
import BurrowProfile
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Where the audit log is: `--audit-db`, else $BURROW_AUDIT_DB, else the
/// host policy's `[audit] database` (/var/lib/burrow/audit.db).
struct AuditOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The audit database (default: $BURROW_AUDIT_DB, else the policy's [audit] database, /var/lib/burrow/audit.db).", valueName: "file"))
    var auditDB: String?

    func path(_ policy: HostPolicy) -> String { HostConfiguration.auditPath(policy, explicit: auditDB) }

    /// Opens the log as the policy configures it.
    func open(_ policy: HostPolicy, access: AuditStore.Access) throws -> AuditStore {
        do {
            return try HostConfiguration.openAudit(policy, path: path(policy), access: access)
        } catch {
            throw CLIError(error.description)
        }
    }

    /// Not root, a run goes through burrowd, whose own log records it.
    func refuseWithoutRoot() throws {
        if auditDB != nil { throw CLIError("--audit-db is root's: not root, this runs through burrowd, and burrowd's audit log records it") }
    }
}

/// `--since` / `--until`: RFC 3339, a date, or an age.
func parseAuditTime(_ text: String, now: Int64 = AuditClock.now()) -> Int64? {
    if text == "now" { return now }
    if let t = AuditClock.parse(text) { return t }
    let scales: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
    var digits = text
    if digits.hasSuffix(" ago") { digits.removeLast(4) }
    guard let unit = digits.last, let scale = scales[unit], let n = Int64(digits.dropLast()), n >= 0 else { return nil }
    return now - n * scale * 1_000_000
}

let auditTimeHelp = "RFC 3339 (2026-11-21T09:30:00Z), a UTC date or time (2026-11-21, '2026-11-21 09:30'), or an age (90s, 30m, 2h, 7d)"
