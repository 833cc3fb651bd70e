import BurrowProfile

/// An exposure score in the spirit of `systemd-analyze security`: weighted
/// checks, each 0 (confined) to 1 (exposed); the score is their weighted mean
/// on a 0.0–10.0 scale. Lower is safer.
package struct ExposureReport: Sendable, Codable, Equatable {
    package struct Check: Sendable, Codable, Equatable {
        package var id: String
        package var weight: Int
        /// 0.0 (confined) ... 1.0 (fully exposed).
        package var exposure: Double
        package var verdict: String
    }

    package var score: Double
    package var checks: [Check]

    /// Sensitive locations: reading any of them (or a tree holding one) is flagged.
    static let secretPaths = [
        "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/root", "/home", "/var/lib/burrow", "/etc/burrow",
        "/proc/kcore", "/etc/ssl/private", "/run/secrets", "/var/run/secrets",
    ]
    static let secretNames = [
        ".ssh", ".gnupg", ".aws", ".kube", ".docker", ".netrc", ".git-credentials", ".pgpass", "id_rsa", "id_ed25519",
        ".env", "credentials", "secrets",
    ]
    static let interpreters = [
        "sh", "bash", "dash", "zsh", "ksh", "fish", "busybox", "python", "python3", "perl", "ruby", "node", "lua",
        "php", "tclsh", "java", "osascript", "pwsh",
    ]
    static let shells = ["sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"]

    static func score(
        profile: SecurityProfile, limits: EffectiveLimits, reads: [PathPattern], writes: [PathPattern], executables: [String]
    ) -> ExposureReport {
        var checks: [Check] = []
        func add(_ id: String, _ weight: Int, _ exposure: Double, _ verdict: String) {
            checks.append(Check(id: id, weight: weight, exposure: min(1, max(0, exposure)), verdict: verdict))
        }
        let level = profile.sandboxLevel
        add("sandbox-level", 10, level == .none ? 1 : 0, level == .none ? "no namespaces, seccomp or Landlock" : "\(level.rawValue): namespaces, seccomp, Landlock")
        add("host-identity", 8, level == .none ? 0.6 : 0, level == .none ? "runs as the caller's uid" : "unprivileged uid in a user namespace")
        switch profile.networkAccess {
        case .none: add("network", 9, 0, "loopback only")
        case .restricted:
            add("network", 9, 0.2 + 0.05 * Double(profile.permissions.network.count), "\(profile.permissions.network.count) allowlisted destination(s) through the proxy")
        case .full: add("network", 9, 1, "full host network")
        }
        let broadWrites = writes.filter { isBroadWrite($0.path) }
        if writes.isEmpty {
            add("filesystem-write", 7, 0, "no host path is writable (scratch /tmp only)")
        } else if !broadWrites.isEmpty {
            add("filesystem-write", 7, 1, "writable: \(broadWrites.map(\.description).joined(separator: ", "))")
        } else {
            add("filesystem-write", 7, min(0.6, 0.3 * Double(writes.count)), "writable: \(writes.map(\.description).joined(separator: ", "))")
        }
        let secretReads = reads.filter { exposesSecret($0.path, blocked: profile.filesystem.blockedPaths) }
        if !secretReads.isEmpty {
            add("filesystem-read", 6, 1, "secret-looking paths readable: \(secretReads.map(\.description).joined(separator: ", "))")
        } else if reads.contains(where: { $0.path == "/" }) {
            add("filesystem-read", 6, 0.8, "the whole host is readable")
        } else {
            add("filesystem-read", 6, min(0.5, 0.05 * Double(reads.count)), reads.isEmpty ? "only what the command needs to start" : "\(reads.count) granted path(s)")
        }
        let names = executables.map { String($0.split(separator: "/").last ?? "") }
        let shellsGranted = names.filter { n in shells.contains(n) }
        let interpretersGranted = names.filter(isInterpreter)
        add(
            "execute", 4, shellsGranted.isEmpty ? (interpretersGranted.isEmpty ? 0.1 : 0.6) : 0.8,
            interpretersGranted.isEmpty ? "\(executables.count) executable(s), no interpreter" : "interpreters: \(Set(interpretersGranted).sorted().joined(separator: ", "))")
        add("process-creation", 3, profile.permissions.process.fork ? 1 : 0, profile.permissions.process.fork ? "may fork" : "threads only")
        add("process-count", 1, Double(limits.maxProcesses) / 256, "at most \(limits.maxProcesses) tasks")
        add(
            "capabilities", 8, Double(profile.permissions.capabilities.count) / 5,
            profile.permissions.capabilities.isEmpty ? "all dropped" : "kept: \(profile.permissions.capabilities.joined(separator: ", "))")
        add("memory", 2, Double(limits.maxMemory.bytes) / Double(4 << 30), "at most \(limits.maxMemory)")
        add("cpu-time", 1, Double(limits.maxCpuTime.milliseconds) / 3_600_000, "at most \(limits.maxCpuTime) of CPU")
        add("execution-time", 1, Double(limits.maxExecutionTime.milliseconds) / 3_600_000, "at most \(limits.maxExecutionTime) wall clock")
        add("scratch", 1, Double(limits.scratchSize.bytes) / Double(1 << 30), "\(limits.scratchSize) tmpfs at /tmp")
        let secretEnv = profile.envWhitelist.filter { p in ["TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL"].contains { p.text.uppercased().contains($0) } }
        add(
            "environment", 2, secretEnv.isEmpty ? 0.05 * Double(profile.envWhitelist.count) : 1,
            secretEnv.isEmpty ? "\(profile.envWhitelist.count) variable(s) passed through" : "secret-looking variables passed: \(secretEnv.map(\.text).joined(separator: ", "))")

        let total = checks.reduce(0) { $0 + Double($1.weight) * $1.exposure }
        let weights = checks.reduce(0) { $0 + Double($1.weight) }
        let score = (10 * total / weights * 10).rounded() / 10
        return ExposureReport(score: score, checks: checks)
    }

    /// Whether an executable's file name is a shell or language interpreter
    /// (`python3.11` counts as `python`).
    static func isInterpreter(_ name: String) -> Bool {
        interpreters.contains { name == $0 || (name.hasPrefix($0) && name.dropFirst($0.count).allSatisfy { $0.isNumber || $0 == "." }) }
    }

    /// Whether a write grant covers system or whole-home locations (/etc, /usr,
    /// a home directory itself), rather than a project directory.
    static func isBroadWrite(_ path: String) -> Bool {
        let roots = ["/etc", "/usr", "/var", "/home", "/root", "/opt", "/srv", "/boot", "/bin", "/lib"]
        if roots.contains(where: { isPath($0, within: path) }) { return true }
        if ["/etc", "/usr", "/boot", "/bin", "/lib"].contains(where: { isPath(path, within: $0) }) { return true }
        let depth = path.split(separator: "/").count
        return (isPath(path, within: "/home") && depth <= 2) || isPath(path, within: "/root")
    }

    /// Whether reading `path` reveals a known secret location that is not blocked.
    static func exposesSecret(_ path: String, blocked: [PathPattern]) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        if components.contains(where: { c in secretNames.contains { c == $0 || c.hasSuffix(".pem") || c.hasSuffix(".key") } }) {
            return true
        }
        return secretPaths.contains { secret in
            (isPath(secret, within: path) || isPath(path, within: secret)) && !blocked.contains { $0.covers(secret) || $0.covers(path) }
        }
    }
}
