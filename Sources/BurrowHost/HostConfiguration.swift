package import BurrowAudit
import BurrowCrypto
import BurrowJSON
package import BurrowProfile
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Loading what `burrow` and `burrowd` both start from: the host policy file
/// and the audit log it configures.
package enum HostConfiguration {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// The policy at `path`: the file if it exists, the defaults only when the
    /// default path does not exist at all. A policy that exists but cannot be
    /// read is an error, never a silent fall-back to the (looser) defaults.
    package static func loadPolicy(_ path: String) throws(Failure) -> HostPolicy {
        var st = stat()
        if path == HostPolicy.defaultPath && lstat(path, &st) != 0 && errno == ENOENT { return .defaults }
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, let text = try? FileIO.read(path, limit: 4 << 20) else {
            throw Failure(description: "cannot read the policy file \(path): it must be a readable regular file")
        }
        do {
            return try HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: path), file: path)
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// The audit database's path: `explicit`, else $BURROW_AUDIT_DB, else the policy's.
    package static func auditPath(_ policy: HostPolicy, explicit: String?) -> String {
        if let explicit { return explicit }
        if let env = getenv("BURROW_AUDIT_DB"), env.pointee != 0 { return String(cString: env) }
        return policy.audit.database
    }

    /// Where profiles given by name are found: $BURROW_PROFILE_PATH (colon-separated), then /etc/burrow/profiles.
    package static func profileSearchPath() -> [String] {
        var dirs: [String] = []
        if let env = getenv("BURROW_PROFILE_PATH") {
            dirs += String(cString: env).split(separator: ":").map(String.init)
        }
        return dirs + ["/etc/burrow/profiles"]
    }

    /// The contents of a regular file (under 4 MiB) as UTF-8, or nil.
    @Sendable package static func readTextFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size < 4 << 20 else { return nil }
        return try? FileIO.read(path, limit: 4 << 20)
    }

    /// Opens the audit log as the policy configures it (redaction, anomaly rule, reader group).
    package static func openAudit(
        _ policy: HostPolicy, path: String, access: AuditStore.Access, checkpoints: AuditStore.Checkpoints = .atCommit
    ) throws(Failure) -> AuditStore {
        let redactor: Redactor
        do {
            redactor = try Redactor(patterns: policy.audit.redact)
        } catch {
            throw Failure(description: "the policy's [audit] redact list: \(error)")
        }
        let anomaly =
            policy.audit.anomalyThreshold > 0
            ? AuditStore.AnomalyRule(threshold: policy.audit.anomalyThreshold, windowMicroseconds: Int64(policy.audit.anomalyWindow.milliseconds) * 1000) : nil
        do {
            return try AuditStore(
                AuditStore.Configuration(path: path, readerGroup: policy.audit.readerGroup, redactor: redactor, anomaly: anomaly, checkpoints: checkpoints),
                access: access)
        } catch {
            throw Failure(description: "\(error)")
        }
    }
}

/// What a profile loader read, by path.
package final class ReadLog: Sendable {
    package init() {}

    private let texts = Mutex<[String: String]>([:])

    package func record(_ path: String, _ text: String?) {
        guard let text else { return }
        texts.withLock { $0[path] = text }
    }

    /// `sha256:` over the files in order, each as its length, a newline and
    /// its bytes (one file: still prefixed, so the digest names the set).
    /// A JSON profile counts in its canonical form (`JSON.canonicalText`):
    /// the file and a registration that sends it as an object are one
    /// profile, whatever the file's spacing and key order.
    package func digest(of files: [String]) -> String? {
        var bytes: [UInt8] = []
        for file in files {
            guard var text = texts.withLock({ $0[file] }) else { return nil }
            if file.hasSuffix(".json"), let parsed = try? JSONParser.parse(text) { text = parsed.canonicalText }
            bytes += Array("\(text.utf8.count)\n".utf8) + Array(text.utf8)
        }
        return SHA256.label(bytes)
    }
}
