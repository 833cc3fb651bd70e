package import Foundation

/// Runs the built executables (`burrow`, `burrow-probe`) the way an operator
/// would, with stdin from and stdout/stderr to temporary files (no pipe can
/// fill up and deadlock).
package enum Subprocess {
    package struct Result: Sendable {
        /// Exit code, or 128 + the signal that ended the process.
        package var status: Int32
        package var stdout: Data
        package var stderr: String
        package var output: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// The directory holding the test bundle and the built products.
    package static var productsDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }

    package static var burrow: String { productsDirectory + "/burrow" }
    package static var burrowd: String { productsDirectory + "/burrowd" }
    package static var probe: String { productsDirectory + "/burrow-probe" }
    package static var hog: String { productsDirectory + "/burrow-hog" }

    /// The audit log of `burrow` runs that name none: one per test process.
    package static let sharedAuditDatabase = NSTemporaryDirectory() + "burrow-test-audit-\(getpid())/audit.db"

    /// The run cache of `burrow` runs: one per test process.
    package static let sharedRunCache = NSTemporaryDirectory() + "burrow-test-run-cache-\(getpid())"

    /// A fresh temporary directory, removed by the caller.
    package static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "burrow-test-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `argv` to completion.
    package static func run(
        _ argv: [String], stdin: Data = Data(), environment: [String: String] = [:], directory: String? = nil
    ) throws -> Result {
        let process = try start(argv, stdin: stdin, environment: environment, directory: directory)
        return try process.finish()
    }

    /// Starts `argv`; `Running.finish()` waits for it.
    package static func start(
        _ argv: [String], stdin: Data = Data(), environment: [String: String] = [:], directory: String? = nil
    ) throws -> Running {
        let dir = try temporaryDirectory()
        let files = ["in", "out", "err"].map { dir + "/" + $0 }
        _ = FileManager.default.createFile(atPath: files[0], contents: stdin)
        _ = FileManager.default.createFile(atPath: files[1], contents: nil)
        _ = FileManager.default.createFile(atPath: files[2], contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment
        // Tests never write to the host's audit log (/var/lib/burrow/audit.db).
        env["BURROW_AUDIT_DB"] = env["BURROW_AUDIT_DB"] ?? sharedAuditDatabase
        // Nor to its run cache (/run/burrow/cache): one per test process.
        env["BURROW_RUN_CACHE"] = env["BURROW_RUN_CACHE"] ?? sharedRunCache
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardInput = FileHandle(forReadingAtPath: files[0])
        process.standardOutput = FileHandle(forWritingAtPath: files[1])
        process.standardError = FileHandle(forWritingAtPath: files[2])
        try process.run()
        return Running(process: process, directory: dir)
    }

    package final class Running: @unchecked Sendable {
        package let process: Process
        let directory: String

        init(process: Process, directory: String) {
            self.process = process
            self.directory = directory
        }

        package var pid: Int32 { process.processIdentifier }

        /// What it has written to stdout so far.
        package var outputSoFar: String {
            String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: directory + "/out"))) ?? Data(), as: UTF8.self)
        }

        /// What it has written to stderr so far.
        package var errorSoFar: String {
            String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: directory + "/err"))) ?? Data(), as: UTF8.self)
        }

        package func finish() throws -> Result {
            process.waitUntilExit()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let out = try Data(contentsOf: URL(fileURLWithPath: directory + "/out"))
            let err = String(decoding: try Data(contentsOf: URL(fileURLWithPath: directory + "/err")), as: UTF8.self)
            let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
            return Result(status: status, stdout: out, stderr: err)
        }
    }
}
