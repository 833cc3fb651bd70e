import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowProfile
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow audit`: read, verify and prune the audit log.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show, follow, verify and prune the audit log.",
        discussion: """
            Every `burrow run` (and the daemon) appends its events to one SQLite database, \
            /var/lib/burrow/audit.db by default: ToolInvoked before the tool starts, \
            SecurityViolation for each refused system call, ResourceLimitExceeded, \
            PerformanceThreshold, AnomalousActivity, and exactly one ToolCompleted or ToolFailed \
            per invocation. Rows are hash-chained: `burrow audit verify` recomputes the chain.

            Examples:
              burrow audit --since 1h
              burrow audit --tool git --type ToolFailed,SecurityViolation --limit 20
              burrow audit --invocation 3f2a… --json
              burrow audit follow --jsonl
              burrow audit verify
              burrow audit prune --older-than 30
            """,
        subcommands: [AuditListCommand.self, AuditFollowCommand.self, AuditVerifyCommand.self, AuditPruneCommand.self],
        defaultSubcommand: AuditListCommand.self)
}

/// The filters `list` and `follow` share.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Only this tool id.", valueName: "id"))
    var tool: String?

    @Option(
        name: .long, parsing: .singleValue,
        help: ArgumentHelp("Only these event types (repeat or comma-separate): \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "type"))
    var type: [String] = []

    @Option(name: .long, help: ArgumentHelp("Events at or after this time: \(auditTimeHelp).", valueName: "time"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Events before this time (same forms as --since).", valueName: "time"))
    var until: String?

    @Option(name: .long, help: ArgumentHelp("Only this invocation's events.", valueName: "id"))
    var invocation: String?

    @Flag(name: .long, help: "Print a JSON array of events (fields: docs/audit.md).")
    var json = false

    @Flag(name: .long, help: "Print one JSON event per line.")
    var jsonl = false

    func validate() throws {
        if json && jsonl { throw ValidationError("choose one of --json and --jsonl") }
        _ = try types()
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, parseAuditTime(value) == nil { throw ValidationError("\(name) '\(value)': expected \(auditTimeHelp)") }
        }
    }

    func types() throws -> [AuditEventType] {
        try type.flatMap { $0.split(separator: ",") }.map { raw in
            let name = raw.split(separator: " ").joined()
            guard let t = AuditEventType.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                throw ValidationError("unknown event type '\(name)'; expected one of: \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return t
        }
    }

    func query(limit: Int?) throws -> AuditQuery {
        AuditQuery(tool: tool, types: try types(), since: since.flatMap { parseAuditTime($0) }, until: until.flatMap { parseAuditTime($0) }, invocation: invocation, limit: limit)
    }
}

struct AuditListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Print matching events, oldest first (the default subcommand).")

    @OptionGroup var policy: ProfileOptions
    @OptionGroup var database: AuditOptions
    @OptionGroup var filter: AuditFilterOptions

    @Option(name: .long, help: ArgumentHelp("Only the most recent N matching events.", valueName: "N"))
    var limit: Int?

    @Flag(name: .long, help: "Every node's events, from the central copy ([audit] central_url), through burrowd (auditors); each names its node.")
    var central = false

    @Option(name: .long, help: ArgumentHelp("With --central: only this node's events ([daemon] node_id).", valueName: "id"))
    var node: String?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if node != nil && !central { throw ValidationError("--node goes with --central") }
        if central && database.auditDB != nil { throw ValidationError("--central reads the central copy through burrowd, not --audit-db") }
    }

    @OptionGroup var session: SessionOptions

    func run() throws {
        let loaded = try policy.loadPolicy()
        let printer = AuditPrinter(format: filter.json ? .json : filter.jsonl ? .jsonl : .table)
        let path = database.path(loaded)
        // A normal user cannot read the log itself: burrowd answers with the
        // events of its own runs when the policy lets it ([audit] user_reads_own).
        // The central copy is burrowd's to read too.
        guard !central && (geteuid() == 0 || database.auditDB != nil || access(path, R_OK) == 0) else {
            let events = try throughBurrowd(path)
            try printer.begin()
            for e in events { printer.print(e) }
            printer.end()
            if limit == nil && events.count == 10_000 {
                printError("burrow: only the 10,000 most recent matching events: narrow with --since, --until or --tool, or page with --until")
            }
            return
        }
        let store = try database.open(loaded, access: .read)
        try printer.begin()
        try store.forEachEvent(try filter.query(limit: limit)) { printer.print($0) }
        printer.end()
    }

    private func throughBurrowd(_ path: String) throws -> [AuditEvent] {
        let query = try filter.query(limit: limit)
        var items: [(String, String)] = [("limit", String(query.limit ?? 10_000))]
        if let t = query.tool { items.append(("tool", t)) }
        if !query.types.isEmpty { items.append(("type", query.types.map(\.rawValue).joined(separator: ","))) }
        if let s = query.since { items.append(("since", AuditClock.format(s))) }
        if let u = query.until { items.append(("until", AuditClock.format(u))) }
        if let i = query.invocation { items.append(("invocation", i)) }
        if central { items.append(("central", "1")) }
        if let node { items.append(("node", node)) }
        let target = "/v1/security/audit?" + items.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&")
        let response: UnixHTTPClient.Response
        do {
            response = try UnixHTTPClient(socketPath: SessionClient.apiSocket(session, policyFile: policy.policy)).send("GET", target)
        } catch {
            if central { throw CLIError("cannot ask burrowd for the central copy: \(error)") }
            throw CLIError("cannot read \(path) (root and the audit readers' group may), nor ask burrowd: \(error)")
        }
        guard response.status == 200 else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error.message ?? "HTTP \(response.status)"
            if central { throw CLIError("burrowd refused to read the central copy: \(message)") }
            throw CLIError(
                "cannot read \(path) (root and the audit readers' group may), and burrowd refused: \(message). With [audit] user_reads_own = true in the host policy, burrowd shows a user the events of its own runs"
            )
        }
        do {
            return try JSONDecoder().decode([AuditEvent].self, from: Data(response.body))
        } catch {
            throw CLIError("burrowd sent an answer this burrow cannot read (\(error)); are burrow and burrowd the same version?")
        }
    }
}

/// A query value as a URL needs it (RFC 3986 unreserved characters kept).
func percentEncoded(_ value: String) -> String {
    var out = ""
    for byte in value.utf8 {
        let c = Character(Unicode.Scalar(byte))
        if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) {
            out.append(c)
        } else {
            let hex = Array("0123456789ABCDEF")
            out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 15)])
        }
    }
    return out
}

struct AuditFollowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Print the last events, then new ones as they are written (until interrupted).",
        discussion: "Polls the database (WAL readers never block writers). With --json the output is JSON lines, as --jsonl.")

    @OptionGroup var policy: ProfileOptions
    @OptionGroup var database: AuditOptions
    @OptionGroup var filter: AuditFilterOptions

    @Option(name: .long, help: ArgumentHelp("How many existing events to print first.", valueName: "N"))
    var limit = 10

    @Option(name: .long, help: ArgumentHelp("How often to look for new events, in milliseconds.", valueName: "ms"))
    var interval = 200

    func validate() throws {
        if limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if interval < 10 { throw ValidationError("--interval must be at least 10 ms") }
    }

    func run() throws {
        // It runs until interrupted: whatever mask or dispositions it inherited, these end it.
        var signals = sigset_t()
        sigemptyset(&signals)
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] {
            signal(sig, SIG_DFL)
            sigaddset(&signals, sig)
        }
        sigprocmask(SIG_UNBLOCK, &signals, nil)
        let store = try database.open(try policy.loadPolicy(), access: .read)
        let printer = AuditPrinter(format: filter.json || filter.jsonl ? .jsonl : .table)
        try printer.begin()
        var query = try filter.query(limit: limit)
        var last = try store.lastSequence()
        if limit > 0 { try store.forEachEvent(query) { printer.print($0) } }
        query.limit = nil
        while true {
            // The head is read before the events: one written between the two
            // reads is then printed next time, not skipped (it once was).
            let head = try store.lastSequence()
            query.afterSequence = last
            var seen = last
            try store.forEachEvent(query) {
                printer.print($0)
                seen = max(seen, $0.sequence)
            }
            // Non-matching events move the cursor too, up to the head read first.
            last = max(last, head, seen)
            usleep(useconds_t(interval * 1000))
        }
    }
}

struct AuditVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the hash chain and report the first broken link.",
        discussion: """
            Checks every row against its hash and its predecessor, and the pruning checkpoints \
            against each other. Exit status: 0 intact, 1 tampering found, 2 the log could not be read.

            The chain proves the rows are as they were written, unless someone rewrote the whole \
            file from the edit onwards. Against that, record the head this command prints somewhere \
            the host cannot rewrite, and check it later with --expect.

            --central asks burrowd to check the central copy ([audit] central_url) instead: every \
            node's chain there, and this node's against its own log where both hold rows. It \
            exits 0 when all holds, 1 when a chain is broken or differs, 2 when the copy cannot \
            be read.
            """)

    @OptionGroup var policy: ProfileOptions
    @OptionGroup var database: AuditOptions

    @Flag(name: .long, help: "Check the central copy (every node's chain) through burrowd, not the local log.")
    var central = false

    @Option(name: .long, help: ArgumentHelp("With --central: burrowd's socket (default: $BURROW_SOCKET, else the policy's [daemon] socket).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("A head recorded earlier (SEQUENCE:HASH) that must still be on the chain.", valueName: "seq:hash"))
    var expect: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if let expect, parseExpect(expect) == nil { throw ValidationError("--expect '\(expect)': expected SEQUENCE:HASH as `burrow audit verify` prints it, e.g. 1234:9f86d0…") }
    }

    private func parseExpect(_ text: String) -> (Int64, String)? {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let seq = Int64(parts[0]), seq >= 0, parts[1].count == 64, parts[1].allSatisfy(\.isHexDigit) else { return nil }
        return (seq, String(parts[1]).lowercased())
    }

    func run() throws {
        if central { return try runCentral() }
        let report: AuditVerification
        let path: String
        do {
            let p = try policy.loadPolicy()
            path = database.path(p)
            report = try database.open(p, access: .read).verify(expect: expect.flatMap(parseExpect))
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(2)
        }
        if json {
            try printJSON(report)
        } else {
            let style = Style.stdout
            if let problem = report.problem {
                print("\(printable(path)): \(style.red("BROKEN")) (\(problem.kind.rawValue)): \(problem.message)")
            } else {
                print("\(printable(path)): \(style.green("intact"))")
            }
            let range = report.firstSequence.map { "rows \($0)–\(report.lastSequence ?? $0)" } ?? "no rows"
            print("  checked   \(report.events) events (\(range))")
            if report.checkpoints > 0 { print("  pruned    \(report.pruned) events behind \(report.checkpoints) checkpoint(s)") }
            if report.ok { print("  head      \((report.lastSequence ?? report.firstSequence.map { $0 - 1 } ?? 0)):\(report.head)") }
        }
        if !report.ok { throw ExitCode(1) }
    }
}

/// burrowd's API socket: `--socket`, else $BURROW_SOCKET (when not empty), else the policy's [daemon] socket.
func apiSocket(_ socket: String?, policy: ProfileOptions) throws -> String {
    if let socket { return socket }
    if let env = ProcessInfo.processInfo.environment["BURROW_SOCKET"], !env.isEmpty { return env }
    return try policy.loadPolicy().daemon.socket
}

extension AuditVerifyCommand {
    func runCentral() throws {
        let path = try apiSocket(socket, policy: policy)
        let response: UnixHTTPClient.Response
        do {
            response = try UnixHTTPClient(socketPath: path).send("GET", "/v1/audit/central")
        } catch {
            printError("burrow: burrowd on \(path): \(error)")
            throw ExitCode(2)
        }
        guard response.status == 200, let report = try? JSONDecoder().decode(CentralVerification.self, from: Data(response.body)) else {
            printError("burrow: \(String(decoding: response.body, as: UTF8.self))")
            throw ExitCode(2)
        }
        if json {
            try printJSON(report)
        } else {
            let style = Style.stdout
            if report.nodes.isEmpty { print("the central copy holds no events yet") }
            for n in report.nodes {
                let state = n.ok ? style.green("intact") : style.red("BROKEN")
                let range = n.firstSequence.map { "rows \($0)–\(n.lastSequence ?? $0)" } ?? "no rows"
                print("node \(printable(n.node)): \(state): \(n.events) events (\(range))" + (n.head.map { ", head \($0)" } ?? ""))
                if let problem = n.problem { print("  \(printable(problem))") }
                switch n.matchesLocal {
                case true?: print("  agrees with this node's log")
                case false?: print("  " + style.red("differs from this node's log") + ": the two logs diverged")
                case nil: break
                }
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}

struct AuditPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete events older than the retention period, keeping the chain verifiable.",
        discussion: """
            Deletes the oldest events up to the newest one older than the cut, and records a \
            checkpoint: the hash of the last deleted row, chained to the previous checkpoint, so \
            `burrow audit verify` still starts from a known link. The retention period is the \
            host policy's audit_retention_days (90 by default) unless --older-than says otherwise. \
            With a central copy ([audit] central_url), events it does not hold yet are kept, \
            however old.
            """)

    @OptionGroup var policy: ProfileOptions
    @OptionGroup var database: AuditOptions

    @Option(name: .long, help: ArgumentHelp("Delete events older than this many days (default: the policy's audit_retention_days).", valueName: "days"))
    var olderThan: Int?

    @Flag(name: .long, help: "Only say how many events would be deleted.")
    var dryRun = false

    func validate() throws {
        if let olderThan, olderThan < 0 { throw ValidationError("--older-than must be 0 or more days") }
    }

    func run() throws {
        let p = try policy.loadPolicy()
        let days = olderThan ?? p.policies.auditRetentionDays
        let cutoff = AuditClock.now() - Int64(days) * 86_400_000_000
        if dryRun {
            let store = try database.open(p, access: .read)
            var count = 0
            try store.forEachEvent(AuditQuery(until: cutoff)) { _ in count += 1 }
            print("would delete \(count) events older than \(AuditClock.format(cutoff)) (\(days) days)")
            return
        }
        // With a central copy, what it does not hold yet is kept, however old.
        let result = try database.open(p, access: .write).prune(olderThan: cutoff, shippedTo: p.audit.central == nil ? nil : AuditStore.centralCopy)
        if let through = result.throughSequence, let checkpoint = result.checkpoint {
            print("deleted \(result.deleted) events through row \(through) (older than \(AuditClock.format(cutoff))); checkpoint \(checkpoint) records the cut")
        } else if result.heldBack == 0 {
            print("nothing to delete: no event is older than \(AuditClock.format(cutoff)) (\(days) days)")
        }
        if result.heldBack > 0 {
            print("kept \(result.heldBack) events older than that: the central copy ([audit] central_url) does not hold them yet")
        }
    }
}
