import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Every resource limit of a profile, hit for real by `burrow-hog`, on the
/// backend this host has: cgroup v1 here, cgroup v2 in Scripts/vm-test.sh.
/// Each test asserts the exact ResourceLimitExceeded record (resource, limit,
/// observed value, invocation id) and that nothing of the invocation is left:
/// no cgroup directory (so no task, since a cgroup with tasks cannot be
/// removed), and no process in any of its namespaces.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits), .timeLimit(.minutes(5)))
struct ResourceLimitTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    /// A profile that may run the hog, with `limits` in [resource_limits].
    func hogProfile(_ limits: String = "", processes: Int = 16, scratch: String = "16M", top: String = "", trust: String = "untrusted") throws -> String {
        try profile(
            extending: "minimal", top: top,
            """
            trust_level = "\(trust)"
            [permissions]
            execute = ["\(Subprocess.hog)"]
            [permissions.process]
            max_processes = \(processes)
            [resource_limits]
            \(limits)
            [filesystem_access]
            scratch_size = "\(scratch)"
            """)
    }

    struct Outcome {
        var result: Subprocess.Result
        var record: [String: Any]
        var limits: [[String: Any]]
    }

    /// Runs the hog and checks what every run must leave: a record with an
    /// invocation id on each limit event, and no trace of the invocation.
    func hog(_ profile: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Outcome {
        let path = directory + "/record-\(UUID().uuidString.prefix(8)).json"
        let result = try run(profile, [Subprocess.hog] + arguments, record: path)
        let record = try record(path)
        let limits = record["limits"] as? [[String: Any]] ?? []
        let invocation = try #require(record["invocationID"] as? String, sourceLocation: sourceLocation)
        for event in limits {
            #expect(event["invocationID"] as? String == invocation, sourceLocation: sourceLocation)
        }
        try expectNothingLeft(record, sourceLocation: sourceLocation)
        // The audit log has the same limits, then the outcome.
        let trail = try auditTrail(invocation, sourceLocation: sourceLocation)
        let logged = trail.filter { $0.type == .resourceLimitExceeded }
        #expect(logged.map { $0.details["resource"]?.stringValue } == limits.map { $0["resource"] as? String }, sourceLocation: sourceLocation)
        #expect(logged.map { $0.details["observedValue"]?.integerValue } == limits.map { ($0["observedValue"] as? NSNumber)?.int64Value }, sourceLocation: sourceLocation)
        if !limits.isEmpty {
            #expect(trail.last?.type == .toolFailed && trail.last?.details["reason"]?.stringValue == "limit_exceeded", "\(String(describing: trail.last))", sourceLocation: sourceLocation)
        }
        return Outcome(result: result, record: record, limits: limits)
    }

    func expectNothingLeft(_ record: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let cgroup = try #require(record["cgroup"] as? [String: Any], sourceLocation: sourceLocation)
        let paths = try #require(cgroup["paths"] as? [String], sourceLocation: sourceLocation)
        #expect(!paths.isEmpty, sourceLocation: sourceLocation)
        for path in paths {
            #expect(access(path, F_OK) != 0, "cgroup \(path) is still there", sourceLocation: sourceLocation)
        }
        // Namespace inode numbers are reused once freed (by the sandboxes of
        // concurrent tests too): a leftover is a process in one of them that
        // also runs as this sandbox's uid (leased to one live sandbox at a time).
        let observed = record["observed"] as? [String: Any]
        let ids = Set((observed?["namespaceIDs"] as? [String: String] ?? [:]).values)
        let uid = try #require(record["uid"] as? Int, sourceLocation: sourceLocation)
        // Level none has no namespaces and the caller's uid: nothing of its own could outlive it.
        if ids.isEmpty || uid == 0 { return }
        for pid in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int32(pid) != nil {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            guard status.split(separator: "\n").contains(where: { $0.hasPrefix("Uid:") && $0.split(whereSeparator: \.isWhitespace).dropFirst().contains("\(uid)") }) else { continue }
            for ns in ["mnt", "pid", "net", "ipc", "uts", "cgroup", "user"] {
                guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(ns)") else { continue }
                #expect(!ids.contains(link), "process \(pid) (uid \(uid)) is still in the sandbox's \(link)", sourceLocation: sourceLocation)
            }
        }
    }

    func only(_ limits: [[String: Any]], _ resource: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        #expect(limits.count == 1, "\(limits)", sourceLocation: sourceLocation)
        return try #require(limits.first { $0["resource"] as? String == resource }, "\(limits)", sourceLocation: sourceLocation)
    }

    func number(_ event: [String: Any], _ key: String) -> UInt64? { (event[key] as? NSNumber)?.uint64Value }

    // MARK: one test per limit

    @Test("max_memory: a memory bomb is OOM-killed with the whole tree, evidence oom_kill")
    func memoryBomb() throws {
        let out = try hog(try hogProfile("max_memory = \"32M\""), ["memory", "512"])
        #expect(out.result.status == 137, "\(out.result.output) \(out.result.stderr)")
        let event = try only(out.limits, "max_memory")
        #expect(event["unit"] as? String == "bytes")
        #expect(number(event, "limitValue") == 32 << 20)
        // The peak charge reached the limit (observed value = memory.peak / max_usage_in_bytes).
        #expect((number(event, "observedValue") ?? 0) >= 30 << 20, "\(event)")
        #expect(!out.result.output.contains("touched"))
    }

    @Test("max_processes: a fork bomb stops at pids.max and the tree is killed")
    func forkBomb() throws {
        let out = try hog(try hogProfile(processes: 12), ["fork", "10000"])
        #expect(out.result.status == 137, "\(out.result.output) \(out.result.stderr)")
        let event = try only(out.limits, "max_processes")
        #expect(event["unit"] as? String == "tasks")
        #expect(number(event, "limitValue") == 12)
        #expect(number(event, "observedValue") == 12, "peak tasks: \(event)")
        // The kill follows the refusal within a 50 ms tick, which can come
        // before the hog prints (seen under TCG): the message is optional, the
        // evidence above (pids.events max, peak 12) is not.
        #expect(out.result.output.isEmpty || out.result.output.contains("fork: refused"), "\(out.result.output)")
    }

    @Test("max_cpu_time: children each under RLIMIT_CPU exceed the tree's budget")
    func cpuBudgetOfTheTree() throws {
        // RLIMIT_CPU is 2 s per process (a second above the budget); each of 4 processes (2 threads each)
        // stops at 700 ms of its own CPU time: only the tree's sum, 2.8 s, is over.
        let out = try hog(try hogProfile("max_cpu_time = \"1s\"\nmax_execution_time = \"120s\""), ["spin", "4", "2", "700"])
        #expect(out.result.status == 137, "\(out.result.output) \(out.result.stderr)")
        let event = try only(out.limits, "max_cpu_time")
        #expect(event["unit"] as? String == "milliseconds")
        #expect(number(event, "limitValue") == 1000)
        #expect((number(event, "observedValue") ?? 0) >= 1000, "over the budget (whole ms, rounded down): \(event)")
        #expect(!out.result.output.contains("children finished"), "no child may reach its own RLIMIT_CPU: \(out.result.output)")
    }

    @Test(
        "max_cpu_time: one process burning CPU, in one thread or several, is stopped by the budget every time, never by the RLIMIT_CPU backstop",
        arguments: [1, 1, 1, 3, 3])
    func cpuBudgetOfOneProcess(threads: Int) throws {
        let out = try hog(try hogProfile("max_cpu_time = \"1s\"\nmax_execution_time = \"120s\""), ["burn", "\(threads)"])
        // 137 is the supervisor's SIGKILL; SIGXCPU (the backstop) would be 152.
        #expect(out.result.status == 137, "\(out.result.output) \(out.result.stderr)")
        let event = try only(out.limits, "max_cpu_time")
        #expect(number(event, "limitValue") == 1000)
        #expect((number(event, "observedValue") ?? 0) >= 1000, "\(event)")
        #expect((event["observed"] as? String ?? "").contains("budget timer"), "the supervisor, not SIGXCPU: \(event)")
    }

    @Test("min_free_disk: a tool filling its write grant's file system below the host policy's floor is stopped (disk_free)")
    func diskFloor() throws {
        // A file system of our own, 8 MiB, so the floor is reached for real.
        let small = directory + "/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        #expect(try Subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "-o", "size=8m,mode=0777", "tmpfs", small]).status == 0)
        defer { _ = try? Subprocess.run(["/usr/bin/umount", "-l", small]) }
        let policy = directory + "/burrow.toml"
        try "[policies]\nmin_free_disk = \"50%\"\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let profile = try profile(
            extending: "minimal",
            """
            [permissions]
            execute = ["sh", "sleep", "\(Subprocess.hog)"]
            file_write = ["\(small)/**"]
            [resource_limits]
            max_execution_time = "60s"
            """)
        let recordPath = directory + "/record.json"
        // Write 6 MiB (the floor is 4 MiB free), then wait to be stopped.
        let result = try Subprocess.run(
            [
                Subprocess.burrow, "run", "--policy", policy, "--profile", profile, "--quiet", "--json-result", recordPath, "--",
                "sh", "-c", "\(Subprocess.hog) write \(small)/fill 6 && sleep 30",
            ],
            environment: burrowEnvironment, directory: directory)
        #expect(result.status == 137, "\(result.output) \(result.stderr)")
        let rec = try record(recordPath)
        let event = try only(rec["limits"] as? [[String: Any]] ?? [], "disk_free")
        #expect(event["limit"] as? String == "50%" && event["unit"] as? String == "bytes")
        #expect(number(event, "limitValue") == 4 << 20, "half of 8 MiB: \(event)")
        #expect((number(event, "observedValue") ?? .max) < 4 << 20, "\(event)")
        try expectNothingLeft(rec)
    }

    @Test("max_disk_write on a file system without project quotas: the run is refused with the reason, nothing runs")
    func diskBudgetRefused() throws {
        let grant = directory + "/out"
        try FileManager.default.createDirectory(atPath: grant, withIntermediateDirectories: true)
        let profile = try profile(
            extending: "minimal",
            """
            [permissions]
            execute = ["sh"]
            [filesystem_access]
            write_paths = ["\(grant)"]
            [resource_limits]
            max_disk_write = "1M"
            """)
        let result = try run(profile, ["sh", "-c", "echo ran > \(grant)/ran"])
        #expect(result.status == 125, "\(result.output) \(result.stderr)")
        #expect(result.stderr.contains("disk write budget (1M added under the write grants): \(grant) is on"), "\(result.stderr)")
        #expect(result.stderr.contains("without project quotas on") || result.stderr.contains("which offers no project quotas"), "\(result.stderr)")
        #expect(access(grant + "/ran", F_OK) != 0)
        let plan = try Subprocess.run([Subprocess.burrow, "dry-run", "--profile", profile, "--json", "--", "sh"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(plan.output.utf8)) as? [String: Any])
        let row = try #require((json["controls"] as? [[String: Any]] ?? []).first { $0["control"] as? String == "disk write budget" }, "\(plan.output)")
        #expect(row["enforceable"] as? Bool == false, "\(row)")
    }

    @Test("max_execution_time: a sleeping tool is killed at the deadline")
    func deadline() throws {
        let out = try hog(try hogProfile("max_execution_time = \"2s\""), ["sleep", "600"])
        #expect(out.result.status == 137)
        let event = try only(out.limits, "max_execution_time")
        #expect(number(event, "limitValue") == 2000)
        #expect((number(event, "observedValue") ?? 0) >= 2000, "\(event)")
    }

    @Test("max_execution_time: a tool that stopped itself (SIGSTOP) is still killed")
    func stoppedTool() throws {
        let out = try hog(try hogProfile("max_execution_time = \"2s\""), ["stop"])
        #expect(out.result.status == 137)
        _ = try only(out.limits, "max_execution_time")
        #expect(!out.result.output.contains("resumed"))
    }

    @Test("a double-forked daemon that closed its stdio dies with the invocation", arguments: ["container", "none"])
    func daemonDies(level: String) throws {
        let profile =
            level == "none"
            ? try hogProfile(top: "sandbox_level = \"none\"", trust: "system") : try hogProfile()
        let out = try hog(profile, ["daemon", "token-\(UUID().uuidString.prefix(8))"])
        #expect(out.result.status == 0, "\(out.result.stderr)")
        #expect(out.result.output.contains("daemon: started"))
        #expect(out.limits.isEmpty, "\(out.limits)")
        // expectNothingLeft: the cgroup could only be removed once the daemon was gone.
    }

    @Test("max_file_size: a write past it ends the tool with SIGXFSZ")
    func fileSize() throws {
        let out = try hog(try hogProfile("max_file_size = \"2M\""), ["write", "/tmp/big", "8"])
        #expect(out.result.status == 128 + SIGXFSZ, "\(out.result.output) \(out.result.stderr)")
        let event = try only(out.limits, "max_file_size")
        #expect(number(event, "limitValue") == 2 << 20)
    }

    @Test("scratch_size: a full /tmp is reported with the bytes in use")
    func scratchFull() throws {
        let out = try hog(try hogProfile("max_file_size = \"64M\"", scratch: "4M"), ["write", "/tmp/fill", "16"])
        #expect(out.result.status == 1)
        #expect(out.result.output.contains("No space left on device"), "\(out.result.output)")
        let event = try only(out.limits, "scratch_size")
        #expect(event["unit"] as? String == "bytes")
        #expect(number(event, "limitValue") == 4 << 20)
        #expect(number(event, "observedValue") == 4 << 20, "\(event)")
    }

    @Test("scratch_size: running out of inodes is reported too")
    func scratchInodes() throws {
        let out = try hog(try hogProfile(scratch: "4M"), ["files", "/tmp", "1000000"])
        #expect(out.result.status == 1)
        let event = try only(out.limits, "scratch_size")
        #expect(event["unit"] as? String == "inodes")
        #expect(number(event, "observedValue") == number(event, "limitValue"), "\(event)")
    }

    @Test("the supervisor's memory stays bounded while the tool floods stdout")
    func stdoutFlood() throws {
        let profile = try hogProfile()
        let path = directory + "/flood.json"
        // 256 MiB through burrow's stdout, which is /dev/null.
        let result = try Subprocess.run(
            ["/bin/sh", "-c", "exec \"$@\" >/dev/null", "sh", Subprocess.burrow, "run", "--profile", profile, "--json-result", path, "--", Subprocess.hog, "flood", "256"],
            directory: directory)
        #expect(result.status == 0, "\(result.stderr)")
        let record = try record(path)
        let supervisor = try #require(record["supervisor"] as? [String: Any])
        let kilobytes = try #require((supervisor["peakResidentKilobytes"] as? NSNumber)?.intValue)
        #expect(kilobytes < 64 * 1024, "the supervisor peaked at \(kilobytes) KiB")
        try expectNothingLeft(record)
    }

    @Test("every run ends with a usage summary of the whole tree")
    func usageSummary() throws {
        let out = try hog(try hogProfile(), ["spin", "2", "1", "100"])
        #expect(out.result.status == 0, "\(out.result.stderr)")
        let usage = try #require(out.record["usage"] as? [String: Any])
        #expect(((usage["cpuMicroseconds"] as? NSNumber)?.intValue ?? 0) >= 200_000, "\(usage)")
        #expect(((usage["peakMemoryBytes"] as? NSNumber)?.intValue ?? 0) > 0, "\(usage)")
        #expect(((usage["peakProcesses"] as? NSNumber)?.intValue ?? 0) >= 3, "\(usage)")
        #expect(usage["wallMilliseconds"] != nil)
    }

    // MARK: supervisor death

    @Test("a SIGKILLed supervisor: its sandbox dies, its log verifies, the next run sweeps its cgroup and records supervisor_lost")
    func sweepAfterSupervisorDeath() throws {
        // Spawned and reaped here, not through Foundation's Process: this
        // process is SIGKILLed while it has a child of its own.
        let argv = [Subprocess.burrow, "run", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--", "sleep", "600"]
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for p in cArguments { free(p) } }
        var environment = (ProcessInfo.processInfo.environment.merging(burrowEnvironment) { $1 }).map { strdup("\($0)=\($1)") } + [nil]
        defer { for p in environment { free(p) } }
        var burrow: pid_t = 0
        try #require(posix_spawn(&burrow, argv[0], nil, nil, &cArguments, &environment) == 0)
        var reaped = false
        defer {
            if !reaped {
                kill(burrow, SIGKILL)
                waitpid(burrow, nil, 0)
            }
        }
        func childProcesses(of pid: Int32) -> [Int32] {
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int32($0) }
        }
        var children: [Int32] = []
        // The sandbox is up (its parent-death signal armed) once the tool runs: init's child is `sleep`.
        for _ in 0..<600 where children.isEmpty {
            usleep(100_000)
            let listed = childProcesses(of: burrow)
            if let tool = listed.first.flatMap({ childProcesses(of: $0).first }),
                ((try? String(contentsOfFile: "/proc/\(tool)/cmdline", encoding: .utf8)) ?? "").hasPrefix("sleep")
            {
                children = listed
            }
        }
        try #require(children.count == 1, "the sandbox's init should be burrow's only child")
        // Burrow's invocation cgroups are named tools/<invocation-id>.
        let cgroups = try String(contentsOfFile: "/proc/\(children[0])/cgroup", encoding: .utf8)
        let invocation = try #require(
            cgroups.split(separator: "\n").compactMap { line -> String? in
                guard let r = line.range(of: "/tools/") else { return nil }
                return String(line[r.upperBound...])
            }.first, "\(cgroups)")
        kill(burrow, SIGKILL)
        waitpid(burrow, nil, 0)
        reaped = true
        var gone = false
        for _ in 0..<300 where !gone {
            gone = kill(children[0], 0) != 0 && errno == ESRCH
            if !gone { usleep(100_000) }
        }
        let state = ((try? String(contentsOfFile: "/proc/\(children[0])/status", encoding: .utf8)) ?? "").split(separator: "\n").filter {
            $0.hasPrefix("State") || $0.hasPrefix("PPid") || $0.hasPrefix("SigPnd") || $0.hasPrefix("ShdPnd") || $0.hasPrefix("SigBlk")
        }
        #expect(gone, "sandbox init \(children[0]) outlived burrow: \(state)")
        // The log it left opens, verifies, and shows the invocation still open.
        let log = try auditLog()
        #expect(try log.verify().ok)
        #expect(try log.openInvocations().map(\.invocationID) == [invocation])

        let path = directory + "/after.json"
        let result = try run(Fixtures.profilesDirectory + "/minimal.toml", ["true"], record: path)
        #expect(result.status == 0, "\(result.stderr)")
        let swept = try record(path)["swept"] as? [[String: Any]] ?? []
        // A run of a concurrent test may have swept it first; either way it must be gone.
        if let entry = swept.first(where: { $0["invocationID"] as? String == invocation }) {
            #expect(entry["problem"] == nil, "\(entry)")
            #expect(result.stderr.contains(invocation), "burrow run says what it swept: \(result.stderr)")
        }
        // The next run closed it: ToolFailed supervisor_lost, and says so.
        #expect(try record(path)["recovered"] as? [String] == [invocation])
        #expect(result.stderr.contains("invocation \(invocation) had no recorded outcome"), "\(result.stderr)")
        let trail = try auditTrail(invocation)
        #expect(trail.map(\.type) == [.toolInvoked, .toolFailed])
        #expect(trail.last?.details["reason"]?.stringValue == "supervisor_lost")
        #expect(try log.openInvocations().isEmpty)
        let remaining = try Subprocess.run(["/bin/sh", "-c", "find /sys/fs/cgroup -maxdepth 6 -type d -name \"$1\"", "sh", invocation])
        #expect(remaining.output.isEmpty, "left behind: \(remaining.output)")
    }
}
