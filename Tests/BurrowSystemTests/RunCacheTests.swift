import Foundation
import Testing

@testable import BurrowSystem

@Suite("Run cache: exact keys, this user's files only, every doubt a miss")
struct RunCacheTests {
    let cache: RunCache

    init() throws {
        let directory = NSTemporaryDirectory() + "burrow-run-cache-test-" + UUID().uuidString.lowercased()
        cache = RunCache(directory: directory + "/cache")
    }

    func remove() { try? FileManager.default.removeItem(atPath: (cache.directory as NSString).deletingLastPathComponent) }

    var entryPath: String { cache.directory + "/entry" }

    @Test("an entry is read back only under the key it was written with")
    func roundTrip() throws {
        defer { remove() }
        #expect(cache.read("entry", key: "k") == nil)
        cache.write("entry", key: "k", value: [1, 2, 3, 0, 10])
        #expect(cache.read("entry", key: "k") == [1, 2, 3, 0, 10])
        #expect(cache.read("entry", key: "k2") == nil)
        #expect(cache.read("entry", key: "") == nil)
        // The directory was made for this user alone.
        var st = stat()
        #expect(lstat(cache.directory, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(lstat(entryPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        cache.write("entry", key: "k2", value: [])
        #expect(cache.read("entry", key: "k2") == [])
        #expect(cache.read("entry", key: "k") == nil, "the entry was replaced")
        // No temporary is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory) == ["entry"])
    }

    @Test(
        "a truncated, padded or garbled entry is a miss",
        arguments: [
            "", "burrow-cache 1 1 3\nkab", "burrow-cache 1 1 3\nkabcd", "burrow-cache 2 1 3\nkabc", "burrow-cache 1 x 3\nkabc",
            "burrow-cache 1 -1 3\nkabc", "burrow-cache 1 1\nkabc", "burrow-cache 1 1 3 4\nkabc", "no newline at all", "burrow-cache 1 2 2\nkabc",
        ])
    func garbled(_ text: String) throws {
        defer { remove() }
        cache.write("entry", key: "k", value: Array("abc".utf8))
        #expect(cache.read("entry", key: "k") == Array("abc".utf8))
        try Data(text.utf8).write(to: URL(fileURLWithPath: entryPath))
        #expect(cache.read("entry", key: "k") == nil)
    }

    @Test("another user's entry, a writable one, a link or a writable directory is never trusted")
    func untrusted() throws {
        defer { remove() }
        cache.write("entry", key: "k", value: [7])
        #expect(cache.read("entry", key: "k") == [7])
        #expect(chmod(entryPath, 0o620) == 0)
        #expect(cache.read("entry", key: "k") == nil, "group-writable")
        #expect(chmod(entryPath, 0o600) == 0)
        if geteuid() == 0 {
            #expect(chown(entryPath, 65534, 65534) == 0)
            #expect(cache.read("entry", key: "k") == nil, "owned by nobody")
            #expect(chown(entryPath, 0, 0) == 0)
        }
        #expect(cache.read("entry", key: "k") == [7])
        #expect(rename(entryPath, cache.directory + "/real") == 0 && symlink("real", entryPath) == 0)
        #expect(cache.read("entry", key: "k") == nil, "a symbolic link")
        #expect(unlink(entryPath) == 0 && rename(cache.directory + "/real", entryPath) == 0)
        #expect(chmod(cache.directory, 0o777) == 0)
        #expect(cache.read("entry", key: "k") == nil, "a world-writable directory")
        cache.write("other", key: "k", value: [8])
        #expect(!FileManager.default.fileExists(atPath: cache.directory + "/other"), "nothing is written into it either")
        #expect(chmod(cache.directory, 0o700) == 0)
        #expect(cache.read("entry", key: "k") == [7])
    }

    @Test("names are plain file names; an entry over the size bound is not kept")
    func bounds() throws {
        defer { remove() }
        for name in ["", ".hidden", "a/b", "../escape", String(repeating: "n", count: 200)] {
            cache.write(name, key: "k", value: [1])
            #expect(cache.read(name, key: "k") == nil, "\(name)")
        }
        cache.write("big", key: "k", value: [UInt8](repeating: 1, count: RunCache.maxEntryBytes))
        #expect(cache.read("big", key: "k") == nil)
        #expect(!FileManager.default.fileExists(atPath: cache.directory + "/big"))
        #expect(RunCache.name("seccomp", for: "a") != RunCache.name("seccomp", for: "b"))
        #expect(RunCache.name("seccomp", for: "a").count == "seccomp-".count + 16)
    }

    @Test("a writer's leftover temporaries are removed after a minute, and a full directory is emptied before the next write")
    func tidy() throws {
        defer { remove() }
        cache.write("entry", key: "k", value: [1])
        let stale = cache.directory + "/.entry.1.2"
        let fresh = cache.directory + "/.entry.3.4"
        #expect(FileManager.default.createFile(atPath: stale, contents: Data()) && FileManager.default.createFile(atPath: fresh, contents: Data()))
        var old = [timespec(tv_sec: time(nil) - 120, tv_nsec: 0), timespec(tv_sec: time(nil) - 120, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, stale, &old, 0) == 0)
        cache.write("other", key: "k", value: [2])
        #expect(access(stale, F_OK) != 0 && access(fresh, F_OK) == 0)
        for i in 0..<RunCache.maxEntries { #expect(FileManager.default.createFile(atPath: cache.directory + "/filler-\(i)", contents: Data())) }
        cache.write("last", key: "k", value: [3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory) == ["last"])
        #expect(cache.read("last", key: "k") == [3])
    }

    @Test("the child probes' answers survive the trip through the cache; a partial set is a miss")
    func childProbes() throws {
        var probes = ChildProbes()
        for kind in NamespaceKind.allCases { probes.checks[kind.rawValue] = .yes("created in a child (with a user namespace)") }
        probes.checks[ChildProbes.together] = .no("EPERM (Operation not permitted)")
        probes.checks[ChildProbes.clone3] = .yes("clone3 with CLONE_PIDFD works")
        let entry = try #require(probes.encoded)
        #expect(ChildProbes(entry)?.checks == probes.checks)
        probes.checks[ChildProbes.clone3] = nil
        #expect(ChildProbes(try #require(probes.encoded)) == nil, "clone3 is missing")
        probes.checks[ChildProbes.clone3] = .yes("a\ttab")
        #expect(probes.encoded == nil, "a detail with a tab is not kept")
        #expect(ChildProbes(Array("user\t2\tx\n".utf8)) == nil)
        // The key moves with what the answers depend on.
        let key = ChildProbes.cacheKey(release: "6.18", uidMap: "0 0 4294967295", procSelfCgroup: "0::/a", cgroupDirectory: nil)
        #expect(key != ChildProbes.cacheKey(release: "6.18", uidMap: "0 0 4294967295", procSelfCgroup: "0::/b", cgroupDirectory: nil))
        #expect(key != ChildProbes.cacheKey(release: "6.19", uidMap: "0 0 4294967295", procSelfCgroup: "0::/a", cgroupDirectory: nil))
        #expect(key != ChildProbes.cacheKey(release: "6.18", uidMap: "0 0 4294967295", procSelfCgroup: "0::/a", cgroupDirectory: "/sys/fs/cgroup/a"))
        #expect(key.contains(try #require(RunCache.binaryIdentity)) && key.contains("max_user_namespaces=") && key.contains("boot ") && key.contains("CapEff:"))
    }
}
