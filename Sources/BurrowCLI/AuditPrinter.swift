import BurrowAudit
import BurrowJSON
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Prints audit events as a table (every stored string escaped: the log
/// holds what tools sent), a JSON array or JSON lines.
final class AuditPrinter {
    enum Format {
        case table, json, jsonl
    }

    let format: Format
    private var count = 0
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    init(format: Format) { self.format = format }

    func begin() throws {
        switch format {
        case .table: write(Style.stdout.bold(tableRow(["TIME (UTC)", "TYPE", "TOOL", "INVOCATION", "DETAILS"])))
        case .json: write("[", newline: false)
        case .jsonl: break
        }
    }

    func print(_ event: AuditEvent) {
        switch format {
        case .table:
            // From the central copy: the node first in the summary.
            let summary = event.node.map { "[\(printable($0))] " } ?? ""
            write(
                tableRow([
                    time(event.time), event.type.rawValue, printable(event.tool), String(printable(event.context.invocationID ?? "-").prefix(8)), summary + AuditPrinter.summary(event),
                ]))
        case .json, .jsonl:
            // JSON escapes every control character; the encoder never emits raw ones.
            let text = (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            write(format == .json ? (count == 0 ? "\n" : ",\n") + text : text, newline: format == .jsonl)
        }
        count += 1
    }

    func end() {
        switch format {
        case .table: if count == 0 { write(Style.stdout.dim("(no events)")) }
        case .json: write(count == 0 ? "]" : "\n]")
        case .jsonl: break
        }
    }

    private func write(_ line: String, newline: Bool = true) {
        let bytes = Array((newline ? line + "\n" : line).utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }  // stdout closed (a pager quit): nothing more to show
            offset += n
        }
    }

    private func tableRow(_ cells: [String]) -> String {
        let widths = [23, 21, 18, 10]
        return cells.enumerated().map { i, cell in
            guard i < widths.count else { return cell }
            let w = visibleWidth(cell)
            return w >= widths[i] ? cell + " " : cell + String(repeating: " ", count: widths[i] - w + 1)
        }.joined()
    }

    private func time(_ microseconds: Int64) -> String {
        // 2026-11-21T09:30:00.123456Z → 2026-11-21 09:30:00.123
        let full = AuditClock.format(microseconds)
        return String(full.prefix(23).map { $0 == "T" ? " " : $0 })
    }

    /// One line about the event, from its details; untrusted text escaped.
    static func summary(_ e: AuditEvent) -> String {
        let d = e.details
        func s(_ key: String) -> String? { d[key]?.stringValue.map(printable) }
        func n(_ key: String, in value: JSON? = nil) -> Int64? { (value ?? d)[key]?.integerValue }
        // The MCP calls in flight when a sandbox event happened.
        let during: String = {
            guard case .array(let calls)? = d["during"], !calls.isEmpty else { return "" }
            return " (during call " + calls.compactMap(\.stringValue).map { printable(String($0.split(separator: "/").last ?? "")) }.joined(separator: ", ") + ")"
        }()
        var text: String
        if let origin = e.origin {
            // Reported, not witnessed: said first, and never read as burrowd's own kind of event.
            text = "[\(printable(origin))] " + printable(d.canonicalText)
            return text.count > 160 ? String(text.prefix(159)) + "…" : text
        }
        switch e.type {
        case .toolInvoked where s("mcp") == "tools/call":
            var parts = ["tools/call \(printable(s("name") ?? "?"))"]
            if case .array(let f)? = d["filters"], !f.isEmpty { parts.append("filters: " + f.compactMap(\.stringValue).map(printable).joined(separator: ", ")) }
            if s("forwardedDigest") != nil { parts.append("sanitized") }
            if n("approvedUntil") != nil { parts.append("approved") }
            text = parts.joined(separator: "; ") + " by \(printable(e.context.principal))"
        case .toolCompleted where s("mcp") == "tools/call", .toolFailed where s("mcp") == "tools/call":
            text = ["tools/call \(printable(s("name") ?? "?"))", s("reason"), n("jsonrpcError").map { "error \($0)" }, n("milliseconds").map { "\($0) ms" }]
                .compactMap { $0 }.joined(separator: "; ")
        case .toolInvoked:
            var argv: [String] = []
            if case .array(let items)? = d["argv"] { argv = items.compactMap(\.stringValue) }
            text = argv.map(shellQuoted).joined(separator: " ") + " by \(printable(e.context.principal))"
        case .toolCompleted, .toolFailed:
            var parts: [String] = []
            if let reason = s("reason") { parts.append(reason) }
            if let exit = d["exit"] {
                if let sig = n("signal", in: exit) { parts.append("signal \(sig)") } else if let code = n("code", in: exit) { parts.append("exit \(code)") }
            }
            if let wall = n("wallMilliseconds", in: d["usage"]) { parts.append("\(wall) ms") }
            if let limits = d["limits"], case .array(let l) = limits, !l.isEmpty { parts.append("limits: " + l.compactMap(\.stringValue).map(printable).joined(separator: ",")) }
            if let v = n("violations"), v > 0 { parts.append("\(v) refused calls") }
            if let message = s("message") { parts.append(message) }
            text = parts.joined(separator: "; ")
        case .securityViolation where d["mcp"] != nil:
            text = "MCP \(s("mcp") ?? "?"): \(printable(s("name") ?? s("where") ?? "")) \(s("change") ?? "")"
        case .securityViolation:
            text = "refused \(s("syscall") ?? "?") (\(s("errno") ?? "?")): \(s("reason") ?? "")" + during
        case .resourceLimitExceeded:
            text = "\(s("resource") ?? "?") \(s("limit") ?? ""): \(s("observed") ?? "")" + during
        case .performanceThreshold:
            text = "\(s("metric") ?? "?") \(n("observed") ?? 0) ms over \(n("threshold") ?? 0) ms"
        case .toolUpdated where d["health"] != nil:
            let health = d["health"]
            let reason = health?["reason"]?.stringValue.map { ": " + printable($0) } ?? ""
            text = "health \(s("version") ?? "?"): \(s("previousStatus") ?? "?") → \(s("status") ?? "?") (\(health?["check"]?.stringValue ?? "?") check)" + reason
        case .toolUpdated where d["definitionsApproved"] != nil:
            let first = d["firstListing"] == .bool(true)
            text = "tool definitions of \(s("version") ?? "?") \(first ? "pinned from the first listing" : "approved"): \(s("definitionsApproved") ?? "?") by \(printable(e.context.principal))"
        case .toolRegistered, .toolUpdated:
            var command: [String] = []
            if case .array(let items)? = d["command"] { command = items.compactMap(\.stringValue) }
            text =
                "\(e.type == .toolRegistered ? "registered" : "updated") \(s("version") ?? "?") (\(s("status") ?? "?")): "
                + command.map(shellQuoted).joined(separator: " ") + " by \(printable(e.context.principal))"
        case .toolDeregistered:
            var versions: [String] = []
            if case .array(let items)? = d["versions"] { versions = items.compactMap(\.stringValue).map(printable) }
            text = "removed \(versions.joined(separator: ", ")) by \(printable(e.context.principal))"
        case .credentialIssued, .credentialRevoked:
            var roles: [String] = []
            if case .array(let items)? = d["roles"] { roles = items.compactMap(\.stringValue).map(printable) }
            text =
                "\(e.type == .credentialIssued ? "issued" : "revoked") API key \(printable(s("id") ?? "?")) '\(printable(s("name") ?? ""))' (\(roles.joined(separator: ", ")); expires \(s("expiresAt") ?? "?")) by \(printable(e.context.principal))"
        case .permissionDenied where s("reason") != nil && s("message") != nil:
            text = "\(s("reason") ?? "?"): \(s("message") ?? "") (\(printable(e.context.principal)))"
        case .anomalousActivity:
            text = "\(n("count") ?? 0) violations and denials within \(n("windowSeconds") ?? 0) s (threshold \(n("threshold") ?? 0))"
        default:
            text = s("message") ?? s("reason") ?? printable(d.canonicalText)
        }
        return text.count > 160 ? String(text.prefix(159)) + "…" : text
    }

    /// An argument as a shell would need it, escaped for the terminal.
    static func shellQuoted(_ arg: String) -> String {
        let safe = !arg.isEmpty && arg.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "-_./=:,+@%".unicodeScalars.contains($0)) }
        return safe ? arg : "'" + printable(arg).split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
