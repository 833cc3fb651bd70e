import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowCrypto
import BurrowHost
import BurrowProfile
import BurrowSQLite
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow admin`: what an operator does to a node's state as a whole.
struct AdminCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Back up and restore a node's registry and audit log; list the fleet's nodes.",
        discussion: """
            burrowd keeps its state in two SQLite files: the registry (the policy's [daemon] \
            registry, /var/lib/burrow/registry.db) and the hash-chained audit log ([audit] \
            database, /var/lib/burrow/audit.db). `backup` copies both while burrowd runs, each as \
            one consistent snapshot (SQLite's online backup), and checks the copies; `restore` \
            puts them back with burrowd stopped. docs/operations.md has the whole procedure, and \
            PostgreSQL's.

            Examples:
              burrow admin backup /srv/backups/burrow-$(date +%F)
              burrow admin restore --force /srv/backups/burrow-2026-12-07
            """,
        subcommands: [Backup.self, Restore.self, Nodes.self])

    /// Where the two databases are.
    struct Databases: ParsableArguments {
        @OptionGroup var policy: ProfileOptions
        @OptionGroup var audit: AuditOptions

        @Option(name: .long, help: ArgumentHelp("The registry database (default: the policy's [daemon] registry, /var/lib/burrow/registry.db).", valueName: "file"))
        var registryDB: String?

        /// Each database by its name in a backup, and its path here.
        func paths() throws -> [(name: String, path: String)] {
            let p = try policy.loadPolicy()
            return [(BackupRecord.registryName, registryDB ?? p.daemon.registry), (BackupRecord.auditName, audit.path(p))]
        }
    }

    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backup",
            abstract: "Copy the registry and the audit log into DIR, online, and check the copies.",
            discussion: """
                Each database is copied as one consistent snapshot while burrowd goes on writing \
                (SQLite's backup API; a copy never holds half a commit). DIR is created (mode 0700) \
                if it does not exist, and must not hold a backup already: nothing is overwritten. \
                The copies are files of their own (no -wal beside them), mode 0600; backup.json \
                records each one's size and SHA-256 and the audit chain's head, which `restore` \
                checks before it puts anything back. Exit status: 0 done, 1 a copy failed its check, \
                2 nothing could be copied.
                """)

        @OptionGroup var databases: Databases

        @Argument(help: ArgumentHelp("The directory for the backup.", valueName: "dir"))
        var directory: String

        func run() throws {
            if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw CLIError("cannot create \(directory): \(String(cString: strerror(errno)))") }
            var st = stat()
            guard lstat(directory, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { throw CLIError("\(directory) is not a directory") }
            for name in [BackupRecord.fileName, BackupRecord.registryName, BackupRecord.auditName] where access(directory + "/" + name, F_OK) == 0 {
                throw CLIError("\(directory) already holds a backup (\(name)): give a new directory, nothing is overwritten")
            }
            var record = BackupRecord(created: AuditClock.format(AuditClock.now()), host: UserDatabase.hostName)
            for (name, source) in try databases.paths() {
                guard access(source, F_OK) == 0 else {
                    printError("\(name): \(source) does not exist; not in the backup")
                    continue
                }
                let target = directory + "/" + name
                printError("\(name): copying \(source) (\(Self.size(source)))…")
                do {
                    let from = try SQLiteConnection(path: source, mode: .readOnly, failure: SQLiteError.init)
                    let partial = target + ".partial"
                    unlink(partial)
                    do {
                        let to = try SQLiteConnection.create(partial, failure: SQLiteError.init)
                        try from.copy(into: to)
                        // One self-contained file: no -wal for the copy to depend on.
                        guard try to.pragma("journal_mode = DELETE")?.lowercased() == "delete" else {
                            throw CLIError("\(name): the copy cannot leave WAL mode, so it would not stand alone")
                        }
                    }
                    try Self.sync(partial)
                    guard rename(partial, target) == 0 else { throw CLIError("cannot rename \(partial): \(String(cString: strerror(errno)))") }
                } catch let error as SQLiteError {
                    throw CLIError("\(name): \(error)")
                }
                record.files.append(try BackupRecord.File(name: name, source: source, path: target))
            }
            guard !record.files.isEmpty else {
                printError("burrow: neither database exists: nothing to back up")
                throw ExitCode(2)
            }
            let checked = record.check(directory)
            record.audit = checked.audit
            for line in checked.lines { printError(line) }
            try record.write(directory)
            try Self.sync(directory)
            print("backed up to \(directory): \(record.files.map(\.name).joined(separator: ", "))" + (record.audit.map { "; audit head \($0.head)" } ?? ""))
            if !checked.problems.isEmpty {
                for p in checked.problems { printError("burrow: \(p)") }
                throw ExitCode(1)
            }
        }

        static func size(_ path: String) -> String {
            var st = stat()
            guard stat(path, &st) == 0 else { return "size unknown" }
            let bytes = Double(st.st_size)
            return bytes >= 1_048_576 ? "\((bytes / 1_048_576 * 10).rounded() / 10) MiB" : "\(Int((bytes / 1024).rounded(.up))) KiB"
        }

        /// fsync: the backup is on disk when the command says it is.
        static func sync(_ path: String) throws {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fsync(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                if fd >= 0 { close(fd) }
                throw CLIError("cannot sync \(path): \(reason)")
            }
            close(fd)
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore",
            abstract: "Put a backup's registry and audit log back, after checking them.",
            discussion: """
                Checks the backup first: each file's size and SHA-256 against backup.json, the \
                registry's integrity and the audit chain up to the recorded head; nothing is \
                touched unless all of it holds. Then writes each copy into its database through \
                SQLite (its locks and write-ahead log included, never a file renamed over an open \
                one) and verifies the restored chain. burrowd must be stopped: it keeps the \
                chain's head in memory. An existing database is replaced only with --force.
                """)

        @OptionGroup var databases: Databases

        @Option(name: .long, help: ArgumentHelp("burrowd's socket, which must not answer (default: the policy's [daemon] socket).", valueName: "path"))
        var socket: String?

        @Flag(name: .long, help: "Replace databases that exist.")
        var force = false

        @Argument(help: ArgumentHelp("A directory `burrow admin backup` wrote.", valueName: "dir"))
        var directory: String

        func run() throws {
            let record = try BackupRecord.read(directory)
            let checked = record.check(directory)
            for line in checked.lines { printError(line) }
            guard checked.problems.isEmpty else {
                for p in checked.problems { printError("burrow: \(p)") }
                printError("burrow: nothing restored")
                throw ExitCode(1)
            }
            let policy = try databases.policy.loadPolicy()
            let socketPath = socket ?? policy.daemon.socket
            if try Self.answers(socketPath) {
                throw CLIError("burrowd answers on \(socketPath): stop it first (systemctl stop burrowd): it holds both databases open and caches the registry")
            }
            let targets = try databases.paths()
            // The audit log first: should the registry then fail, the log is whole and says what ran.
            let restoring = record.files.compactMap { file in targets.first { $0.name == file.name }.map { (file, $0.path) } }
                .sorted { a, b in a.0.name == BackupRecord.auditName && b.0.name != BackupRecord.auditName }
            for (_, path) in restoring where access(path, F_OK) == 0 && !force {
                throw CLIError("\(path) exists: pass --force to replace it with the backup's")
            }
            for (file, path) in restoring {
                do {
                    let from = try SQLiteConnection(path: directory + "/" + file.name, mode: .readOnly, failure: SQLiteError.init)
                    if access(path, F_OK) != 0 {
                        // A fresh host: the file made as burrowd would make it (the audit log 0640 root:reader_group, directories 0750).
                        if file.name == BackupRecord.auditName {
                            try AuditStore.prepareFile(path, group: policy.audit.readerGroup)
                        } else {
                            try Self.makeParent(of: path)
                            _ = try SQLiteConnection.create(path, failure: SQLiteError.init)
                        }
                    }
                    let to = try SQLiteConnection(path: path, mode: .readWrite, failure: SQLiteError.init)
                    try from.copy(into: to)
                    if file.name == BackupRecord.auditName { _ = try to.pragma("journal_mode = WAL") }
                } catch {
                    throw CLIError("\(file.name): restoring into \(path): \(error)")
                }
                printError("\(file.name): restored into \(path)")
            }
            if let audit = record.audit, let path = restoring.first(where: { $0.0.name == BackupRecord.auditName })?.1 {
                let report = try AuditStore(.init(path: path, redactor: try Redactor()), access: .read).verify(expect: audit.expectation)
                guard report.ok else { throw CLIError("the restored audit log does not verify: \(report.problem?.message ?? "")") }
                print("restored from \(directory); the audit chain verifies up to \(audit.head) (\(report.events) events)")
            } else {
                print("restored from \(directory)")
            }
        }

        /// Whether something accepts connections on the Unix socket at `path`;
        /// a question it cannot answer is an error, never a "no".
        static func answers(_ path: String) throws -> Bool {
            let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw CLIError("cannot tell whether burrowd runs: socket: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw CLIError("\(path): too long for a socket path") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
            }
            // Nothing there, or nobody listening: not running. Anything else (EACCES, say) cannot tell.
            guard connected || errno == ENOENT || errno == ECONNREFUSED else {
                throw CLIError("cannot tell whether burrowd answers on \(path): \(String(cString: strerror(errno)))")
            }
            return connected
        }

        /// Missing directories above `path`: 0755, the file's own 0750 (as RegistryStore makes it).
        static func makeParent(of path: String) throws {
            let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            var prefix = ""
            let parts = parent.split(separator: "/")
            for (i, part) in parts.enumerated() {
                prefix += (prefix.isEmpty && !parent.hasPrefix("/") ? "" : "/") + part
                if mkdir(prefix, i == parts.count - 1 ? 0o750 : 0o755) != 0 && errno != EEXIST {
                    throw CLIError("cannot create \(prefix): \(String(cString: strerror(errno)))")
                }
            }
        }
    }
}

extension AdminCommand {
    struct Nodes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nodes",
            abstract: "List the fleet's nodes: up while their heartbeat is on time, down after three missed (through burrowd; auditors).",
            discussion: """
                Every burrowd with [registry] url or [audit] central_url records itself in the fleet's \
                database (the shared registry's, else the central copy's) and beats every [daemon] \
                heartbeat_interval (5 s), by PostgreSQL's clock. The list shows \
                each node's version, host, last heartbeat, and how far the central copy holds its \
                audit log.
                """)

        @OptionGroup var policy: ProfileOptions

        @Option(name: .long, help: ArgumentHelp("burrowd's socket (default: $BURROW_SOCKET, else the policy's [daemon] socket).", valueName: "path"))
        var socket: String?

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            let path = try apiSocket(socket, policy: policy)
            let response: UnixHTTPClient.Response
            do {
                response = try UnixHTTPClient(socketPath: path).send("GET", "/v1/nodes")
            } catch {
                throw CLIError("burrowd on \(path): \(error)")
            }
            guard response.status == 200, let nodes = try? JSONDecoder().decode([FleetNode].self, from: Data(response.body)) else {
                let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error.message ?? "HTTP \(response.status)"
                throw CLIError("burrowd: \(message)")
            }
            if json { return try printJSON(nodes) }
            if nodes.isEmpty { print("no node has reported yet") }
            let style = Style.stdout
            for n in nodes {
                let status = n.status == "up" ? style.green("up") : style.red("down")
                print(
                    "\(printable(n.id))  \(status)  heartbeat \(n.heartbeatAgeMilliseconds / 1000) s ago  burrowd \(printable(n.version)) on \(printable(n.host))  audit shipped \(n.auditShipped) of \(n.auditHead)"
                )
                print("  \(printable(n.facts)); up since \(n.startedAt)")
            }
        }
    }
}

/// backup.json: what a backup holds, for `restore` to check before it
/// touches anything.
struct BackupRecord: Codable {
    static let fileName = "backup.json"
    static let registryName = "registry.db"
    static let auditName = "audit.db"

    struct File: Codable {
        var name: String
        var source: String
        var bytes: Int64
        var sha256: String

        init(name: String, source: String, path: String) throws {
            self.name = name
            self.source = source
            guard let (digest, bytes) = Self.digest(path) else { throw CLIError("cannot read \(path) back: \(String(cString: strerror(errno)))") }
            self.sha256 = digest
            self.bytes = bytes
        }

        static func digest(_ path: String) -> (String, Int64)? {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            return SHA256.hash(reading: { buffer in Glibc.read(fd, buffer.baseAddress, buffer.count) }).map { (Hex.encode($0.digest), $0.bytes) }
        }
    }

    /// The audit chain's head in the copy, as `burrow audit verify` prints it.
    struct Audit: Codable {
        var events: Int64
        var head: String

        var expectation: (sequence: Int64, hash: String)? {
            let parts = head.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let sequence = Int64(parts[0]) else { return nil }
            return (sequence, String(parts[1]))
        }
    }

    var burrowBackup = 1
    var created: String
    var host: String
    var files: [File] = []
    var audit: Audit?

    enum CodingKeys: String, CodingKey {
        case burrowBackup = "burrow_backup"
        case created, host, files, audit
    }

    init(created: String, host: String) {
        self.created = created
        self.host = host
    }

    static func read(_ directory: String) throws -> BackupRecord {
        let path = directory + "/" + fileName
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readConfigured(path, secret: false, limit: 1 << 20)
        } catch {
            throw CLIError("\(path): \(error) (is \(directory) a backup `burrow admin backup` wrote?)")
        }
        do {
            let record = try JSONDecoder().decode(BackupRecord.self, from: Data(bytes))
            guard record.burrowBackup == 1 else { throw CLIError("\(path): a backup of format \(record.burrowBackup), which this burrow does not know") }
            for file in record.files where ![registryName, auditName].contains(file.name) { throw CLIError("\(path): lists '\(file.name)', which is not a database burrow restores") }
            return record
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(path) is not a backup record: \(error)")
        }
    }

    func write(_ directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try ManifestIO.write(directory + "/" + Self.fileName, Array(try encoder.encode(self)) + [0x0a])
    }

    /// Each copy against what the record says (its size and digest, once
    /// the record has them), the registry's integrity, and the audit chain
    /// (up to the recorded head, once there is one).
    func check(_ directory: String) -> (lines: [String], problems: [String], audit: Audit?) {
        var lines: [String] = []
        var problems: [String] = []
        var found: Audit?
        for file in files {
            let path = directory + "/" + file.name
            guard let (digest, bytes) = File.digest(path) else {
                problems.append("\(path) cannot be read: \(String(cString: strerror(errno)))")
                continue
            }
            guard digest == file.sha256, bytes == file.bytes else {
                problems.append("\(path) is not the file the backup wrote (\(bytes) bytes, sha256 \(digest); recorded \(file.bytes) bytes, \(file.sha256))")
                continue
            }
            do {
                let db = try SQLiteConnection(path: path, mode: .readOnly, failure: SQLiteError.init)
                let integrity = try db.pragma("integrity_check") ?? "no answer"
                guard integrity == "ok" else {
                    problems.append("\(path): SQLite's integrity check says: \(integrity)")
                    continue
                }
            } catch {
                problems.append("\(path): \(error)")
                continue
            }
            guard file.name == Self.auditName else {
                lines.append("\(file.name): \(file.bytes) bytes, intact")
                continue
            }
            do {
                let report = try AuditStore(.init(path: path, redactor: try Redactor()), access: .read).verify(expect: audit?.expectation)
                guard report.ok else {
                    problems.append("\(path): the audit chain is broken (\(report.problem?.kind.rawValue ?? "")): \(report.problem?.message ?? "")")
                    continue
                }
                let head = "\(report.lastSequence ?? report.firstSequence.map { $0 - 1 } ?? 0):\(report.head)"
                found = Audit(events: report.events, head: audit?.head ?? head)
                lines.append("\(file.name): \(report.events) events, the chain intact, head \(head)")
            } catch {
                problems.append("\(path): \(error)")
            }
        }
        return (lines, problems, found)
    }
}
