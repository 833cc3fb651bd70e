import BurrowPolicy
import BurrowProfile
import BurrowSystem
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The runtime kept between plans (burrowd) against this host's live file
/// system: reused while nothing it was found from changed, found afresh as
/// soon as something did.
@Suite("Compile memo")
struct CompileMemoTests {
    @Test func runtimeIsReusedUntilAFileItWasFoundFromChanges() throws {
        let (dir, tool, profile, base) = try fixture("#!/bin/sh\nexit 0\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The files are seconds old at most: without a racy window, kept at once.
        let memo = CompileMemo(racyWindow: .zero)
        var compiler = base
        compiler.memo = memo
        func plan() throws -> LaunchPlan { try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool]) }

        let first = try plan()
        #expect(first.command.allowedExecutables.contains { $0.hasSuffix("/dash") }, "sh resolves to dash on Debian: \(first.command.allowedExecutables)")
        #expect(try plan() == first)
        #expect(memo.statistics.hits == 1 && memo.statistics.misses == 1)

        // Replaced the way package managers do (a new file renamed over the
        // old one): the next plan sees the new interpreter.
        try write(dir + "/tool.new", "#!/bin/bash\nexit 0\n")
        #expect(rename(dir + "/tool.new", tool) == 0)
        let second = try plan()
        #expect(memo.statistics.misses == 2)
        #expect(second.command.allowedExecutables.contains("/usr/bin/bash"), "\(second.command.allowedExecutables)")

        // Rewritten in place: also seen.
        try write(tool, "#!/bin/sh\nexit 1\n")
        let third = try plan()
        #expect(memo.statistics.misses == 3)
        #expect(!third.command.allowedExecutables.contains("/usr/bin/bash"))

        // Unchanged again: reused, and identical to a plan made without the memo.
        #expect(try plan() == third)
        #expect(memo.statistics.misses == 3)
        var fresh = compiler
        fresh.memo = nil
        #expect(try fresh.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool]) == third)

        // With the default window, a runtime found from a file changed just now is not kept.
        let careful = CompileMemo()
        compiler.memo = careful
        _ = try plan()
        _ = try plan()
        #expect(careful.statistics.hits == 0 && careful.statistics.misses == 2)
    }

    @Test func aGlobOverASymlinkedDirectorySeesANewExecutable() throws {
        let (dir, _, _, base) = try fixture("#!/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkdir(dir + "/real", 0o755) == 0 && symlink("real", dir + "/link") == 0)
        try write(dir + "/real/a", "#!/bin/sh\n")
        let text = Fixtures.profileTOML("trust_level = \"community\"\n[permissions]\nexecute = [\"\(dir)/link/*\"]")
        let profile = try #require(Fixtures.loader(["/p/t.toml": text], policy: .defaults).load("/p/t.toml").profile)
        var compiler = base
        compiler.memo = CompileMemo(racyWindow: .zero)
        func plan() throws -> LaunchPlan { try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [dir + "/link/a"]) }
        #expect(try plan().command.allowedExecutables.contains(dir + "/real/a"))
        _ = try plan()
        usleep(20_000)  // past a coarse clock tick, so the directory's times move
        try write(dir + "/real/b", "#!/bin/sh\n")
        // The listing went through the symlink: the directory it reached is what changed.
        #expect(try plan().command.allowedExecutables.contains(dir + "/real/b"))
        #expect(compiler.memo?.statistics.hits == 1)
    }

    @Test("a runtime persists between processes through the run cache, under the same stamps: reused while unchanged, found afresh once a file changed")
    func runtimePersistsThroughTheRunCache() throws {
        let (dir, tool, profile, base) = try fixture("#!/bin/sh\nexit 0\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = RunCache(directory: dir + "/cache")
        // Each memo stands for one `burrow` process.
        func plan(_ memo: CompileMemo) throws -> LaunchPlan {
            var compiler = base
            compiler.memo = memo
            return try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool])
        }
        var fresh = base
        fresh.memo = nil
        func unmemoised() throws -> LaunchPlan { try fresh.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool]) }

        let first = CompileMemo(racyWindow: .zero, runCache: cache)
        let planned = try plan(first)
        #expect(first.statistics.misses == 1)
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir + "/cache")
        #expect(entries.count == 1 && entries[0].hasPrefix("runtime-"), "\(entries)")

        let second = CompileMemo(racyWindow: .zero, runCache: cache)
        #expect(try plan(second) == planned)
        #expect(second.statistics.hits == 1 && second.statistics.misses == 0, "read back from the run cache")
        #expect(planned == (try unmemoised()))

        // Replaced: the next process sees the stamps differ and finds the new interpreter.
        try write(dir + "/tool.new", "#!/bin/bash\nexit 0\n")
        #expect(rename(dir + "/tool.new", tool) == 0)
        let third = CompileMemo(racyWindow: .zero, runCache: cache)
        let replanned = try plan(third)
        #expect(third.statistics.misses == 1)
        #expect(replanned.command.allowedExecutables.contains("/usr/bin/bash"), "\(replanned.command.allowedExecutables)")
        #expect(replanned == (try unmemoised()))

        // A damaged entry is a miss, never a plan.
        let path = dir + "/cache/" + entries[0]
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        let text = String(decoding: stored, as: UTF8.self)
        let header = text.prefix { $0 != "\n" }
        let body = text.dropFirst(header.count + 1).replacingOccurrences(of: "\ne\t", with: "\nx\t")
        try Data((header + "\n" + body).utf8).write(to: URL(fileURLWithPath: path))
        let fourth = CompileMemo(racyWindow: .zero, runCache: cache)
        #expect(try plan(fourth) == replanned)
        #expect(fourth.statistics.misses == 1)
    }

    @Test func aRemovedCommandIsRefusedAtOnce() throws {
        let (dir, tool, profile, base) = try fixture("#!/bin/sh\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var compiler = base
        compiler.memo = CompileMemo()
        _ = try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool])
        #expect(unlink(tool) == 0)
        #expect(throws: PlanError.self) { try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: [tool]) }
    }

    /// A temporary directory holding an executable script `tool`, a profile
    /// granting only it, and a compiler over the live file system (no memo yet).
    private func fixture(_ script: String) throws -> (String, String, SecurityProfile, PlanCompiler) {
        let dir = try Subprocess.temporaryDirectory()
        let tool = dir + "/tool"
        try write(tool, script)
        let text = Fixtures.profileTOML("trust_level = \"community\"\n[permissions]\nexecute = [\"\(tool)\"]")
        let profile = try #require(Fixtures.loader(["/p/t.toml": text], policy: .defaults).load("/p/t.toml").profile)
        return (dir, tool, profile, PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: LiveFileSystem(), environment: [:], workingDirectory: "/"))
    }

    private func write(_ path: String, _ text: String) throws {
        let f = try #require(fopen(path, "w"))
        fputs(text, f)
        fclose(f)
        #expect(chmod(path, 0o755) == 0)
    }
}
