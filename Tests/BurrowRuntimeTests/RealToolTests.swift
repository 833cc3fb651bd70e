import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

/// What third-party tools trip over (issue 21): programs that are not granted
/// must look absent, a spawn under `fork = false` must look like a missing
/// program, names must resolve as everywhere else, and refusals a profile
/// expects must stay quiet.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.installed("/usr/bin/python3")))
struct RealToolTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    /// A Python profile with `extra` in [permissions] and `process` in [permissions.process].
    func pythonProfile(fork: Bool, permissions: String = "") throws -> String {
        try profile(
            extending: "python-script",
            """
            [permissions]
            execute = ["python3"]
            file_read = ["/usr/lib/python3.11/**"]
            \(permissions)
            [permissions.process]
            fork = \(fork)
            max_processes = 16
            """)
    }

    func python(_ profile: String, _ code: String, record: String? = nil) throws -> Subprocess.Result {
        try run(profile, ["python3", "-c", code], record: record)
    }

    @Test("a program that is not granted is absent (ENOENT), not present and refused; granted ones and their links are there")
    func ungrantedProgramsAreAbsent() throws {
        // ls and dash live in /usr/bin beside python3 on the host.
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/ls"))
        let code = """
            import os, shutil, subprocess
            print(shutil.which('ls'), os.path.exists('/usr/bin/ls'), os.access('/usr/bin/dash', os.X_OK))
            try:
                subprocess.run(['/usr/bin/ls'])
            except FileNotFoundError:
                print('FileNotFoundError')
            print(os.path.realpath('/usr/bin/python3'), shutil.which('python3'))
            """
        let result = try python(try pythonProfile(fork: true), code)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "None False False\nFileNotFoundError\n/usr/bin/python3.11 /usr/bin/python3\n", "\(result.output)")
    }

    @Test("fork = false: a spawn is answered as a missing program (FileNotFoundError), and recorded as a refused clone")
    func forkFalseLooksLikeMissingProgram() throws {
        let recordPath = directory + "/record.json"
        let code = """
            import platform, subprocess
            try:
                subprocess.run(['python3', '-c', '1'])
            except FileNotFoundError as e:
                print('FileNotFoundError', e.errno)
            print(platform.processor() is not None)
            """
        let result = try python(try pythonProfile(fork: false), code, record: recordPath)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "FileNotFoundError 2\nTrue\n", "\(result.output)")
        let violations = try record(recordPath)["violations"] as? [[String: Any]] ?? []
        #expect(violations.contains { ["clone", "vfork", "fork"].contains($0["syscall"] as? String) && $0["errno"] as? String == "ENOENT" }, "\(violations)")
    }

    @Test("quiet_refusals: still refused with the planned errno and counted, but no SecurityViolation; other calls stay loud")
    func quietRefusals() throws {
        let recordPath = directory + "/record.json"
        let profile = try pythonProfile(fork: false, permissions: #"quiet_refusals = ["clone", "vfork", "socket:AF_NETLINK"]"#)
        let code = """
            import socket, subprocess
            for family in (socket.AF_NETLINK, socket.AF_PACKET):
                try:
                    socket.socket(family, socket.SOCK_RAW)
                except OSError as e:
                    print(family.name, e.errno)
            try:
                subprocess.run(['python3', '-c', '1'])
            except FileNotFoundError as e:
                print('spawn', e.errno)
            """
        let result = try python(profile, code, record: recordPath)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "AF_NETLINK 97\nAF_PACKET 97\nspawn 2\n", "\(result.output)")
        let rec = try record(recordPath)
        let loud = (rec["violations"] as? [[String: Any]] ?? []).compactMap { $0["syscall"] as? String }
        let quiet = (rec["quietRefusals"] as? [[String: Any]] ?? []).compactMap { $0["syscall"] as? String }
        #expect(loud == ["socket"], "only AF_PACKET is loud: \(rec["violations"] ?? [])")
        #expect(quiet.contains("socket") && quiet.contains { $0 == "clone" || $0 == "vfork" }, "\(rec["quietRefusals"] ?? [])")
        let invocation = try #require(rec["invocationID"] as? String)
        let violations = try auditTrail(invocation).filter { $0.type == .securityViolation }
        #expect(violations.count == 1, "one SecurityViolation, for AF_PACKET: \(violations)")
    }

    @Test("names resolve as on any host: localhost and the sandbox's own name, from its /etc/hosts")
    func hostsFile() throws {
        let code = """
            import socket
            print(socket.gethostname(), socket.gethostbyname('localhost'), socket.gethostbyname(socket.gethostname()))
            """
        let result = try python(try pythonProfile(fork: false), code)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "burrow 127.0.0.1 127.0.1.1\n", "\(result.output)")
    }

    @Test("profile parameters from the CLI: the grant follows --param, the command gets the value, ToolInvoked records it; a symlink or a path outside allowed_roots is refused")
    func parametersFromTheCLI() throws {
        let policy = directory + "/burrow.toml"
        try "[parameters]\nallowed_roots = [\"\(directory)/roots\"]\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let work = directory + "/roots/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        chmod(work, 0o777)
        try FileManager.default.createSymbolicLink(atPath: directory + "/roots/link", withDestinationPath: "/etc")
        let profile = try profile(
            extending: "minimal",
            """
            [parameters.out]
            type = "path"
            must_exist = true
            writable = true
            [permissions]
            execute = ["sh"]
            file_write = ["${out}/**"]
            """)
        func burrow(_ out: String, record: String? = nil) throws -> Subprocess.Result {
            var argv = [Subprocess.burrow, "run", "--policy", policy, "--profile", profile, "--param", "out=\(out)", "--quiet"]
            if let record { argv += ["--json-result", record] }
            return try Subprocess.run(argv + ["--", "sh", "-c", "echo written > ${out}/f && echo ${out}"], environment: burrowEnvironment, directory: directory)
        }
        let recordPath = directory + "/record.json"
        let ok = try burrow(work, record: recordPath)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.output == work + "\n")
        #expect(try String(contentsOfFile: work + "/f", encoding: .utf8) == "written\n", "the file is on the host")
        let invocation = try #require(try record(recordPath)["invocationID"] as? String)
        let invoked = try #require(try auditTrail(invocation).first)
        guard case .object(let details) = invoked.details else { throw Failure("ToolInvoked details are not an object: \(invoked.details)") }
        #expect(details["parameters"] == .object(["out": .string(work)]), "\(invoked.details)")

        let symlink = try burrow(directory + "/roots/link")
        #expect(symlink.status == 125 && symlink.stderr.contains("is reached through a symlink (to /etc)"), "\(symlink.stderr)")
        let outside = try burrow("/srv")
        #expect(outside.status == 125 && outside.stderr.contains("allowed_roots"), "\(outside.stderr)")
        let missing = try burrow(directory + "/roots/nothing")
        #expect(missing.status == 125 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
