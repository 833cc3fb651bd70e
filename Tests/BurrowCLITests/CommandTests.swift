import ArgumentParser
import BurrowCLI
import BurrowSystem
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The CLI end to end, in-process, on the real host and the shipped profiles.
@Suite("burrow commands", .serialized)
struct CommandTests {
    func run(_ arguments: [String]) throws {
        var command = try BurrowCommand.parseAsRoot(arguments)
        try command.run()
    }

    func exitCode(_ arguments: [String]) -> Int32 {
        do {
            try run(arguments)
            return 0
        } catch let code as ExitCode {
            return code.rawValue
        } catch {
            return BurrowCommand.exitCode(for: error).rawValue
        }
    }

    func temporaryFile(_ name: String, _ text: String) throws -> String {
        var template = Array("/tmp/burrow-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        let dir = String(cString: try #require(made))
        let path = dir + "/" + name
        let f = try #require(fopen(path, "w"))
        fputs(text, f)
        fclose(f)
        return path
    }

    @Test func lintCatchesAMisspelledKey() throws {
        let path = try temporaryFile("typo.toml", Fixtures.profileTOML("[permissions]\nfile_reed = [\"/srv\"]"))
        #expect(exitCode(["profile", "lint", "--policy", "/nonexistent/burrow.toml", path]) != 0, "a missing explicit policy file is an error")
        #expect(exitCode(["profile", "lint", "--policy", "/tmp", Fixtures.profilesDirectory + "/minimal.toml"]) == 1, "an unreadable policy is an error, not the defaults")
        #expect(exitCode(["profile", "lint", path]) == 1)
        #expect(exitCode(["profile", "lint", Fixtures.profilesDirectory + "/minimal.toml"]) == 0)
    }

    @Test("dry-run reuses the host's clone probes, the runtime found and the seccomp program from the run cache, and prints the same plan as without it")
    func dryRunThroughTheRunCache() throws {
        let directory = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let argv = [Subprocess.burrow, "dry-run", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--json", "--", "/bin/true"]
        let cold = try Subprocess.run(argv, environment: ["BURROW_RUN_CACHE": directory + "/cache"])
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory + "/cache").sorted()
        #expect(entries.first == "host-probe" && entries.contains { $0.hasPrefix("runtime-") } && entries.contains { $0.hasPrefix("seccomp-") }, "\(entries)")
        func inodes() -> [UInt64] {
            entries.map { name in
                var st = stat()
                return lstat(directory + "/cache/" + name, &st) == 0 ? UInt64(st.st_ino) : 0
            }
        }
        let written = inodes()
        let warm = try Subprocess.run(argv, environment: ["BURROW_RUN_CACHE": directory + "/cache"])
        #expect(inodes() == written, "the warm run read every entry and replaced none")
        let off = try Subprocess.run(argv, environment: ["BURROW_RUN_CACHE": "off"])
        #expect(cold.status == off.status && warm.status == off.status, "\(cold.stderr) \(warm.stderr) \(off.stderr)")
        #expect(!off.stdout.isEmpty)
        #expect(cold.output == off.output)
        #expect(warm.output == off.output)
    }

    @Test func dryRunThresholdSetsTheExitCode() {
        let profile = Fixtures.profilesDirectory + "/untrusted.toml"
        #expect(exitCode(["dry-run", "--profile", profile, "--json", "--", "true"]) == (Requirement.host.rootInInitialUserNamespace ? 0 : 4))
        #expect(exitCode(["dry-run", "--profile", profile, "--threshold", "0", "--", "true"]) == 3)
        #expect(exitCode(["dry-run", "--profile", profile, "--", "sh", "-c", "id"]) == 1, "sh is not granted by untrusted")
    }

    @Test func dryRunNeedsACommand() {
        #expect(exitCode(["dry-run", "--profile", "minimal"]) != 0)
    }
}
