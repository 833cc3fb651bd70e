import BurrowProfile
import BurrowSystem
import Foundation
import Testing

@testable import BurrowPolicy

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Seccomp programs through the run cache")
struct SeccompCacheTests {
    let cache = RunCache(directory: NSTemporaryDirectory() + "burrow-seccomp-cache-test-" + UUID().uuidString.lowercased())

    func compile(_ inputs: SeccompPolicy.Inputs, cache: RunCache?) throws -> (bpf: [UInt8], unknown: [String]) {
        let (allowed, rules) = SeccompPolicy.rules(for: inputs)
        return try SeccompCompiler.compile(
            allowed: allowed, rules: rules, defaultAction: .notify(errno: SeccompPolicy.ENOSYS), badArchAction: .killProcess,
            key: "test \(inputs)", runCache: cache)
    }

    func entries() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: cache.directory)) ?? []).sorted() }

    @Test("the program read back is byte for byte the one libseccomp compiles; a damaged entry is compiled again and replaced")
    func sameProgram() throws {
        defer { try? FileManager.default.removeItem(atPath: cache.directory) }
        let inputs = SeccompPolicy.Inputs(fork: false, networkAccess: .none)
        let fresh = try compile(inputs, cache: nil)
        #expect(!fresh.bpf.isEmpty && fresh.bpf.count % 8 == 0)
        #expect(try compile(inputs, cache: cache) == fresh)
        let names = entries()
        #expect(names.count == 1 && names[0].hasPrefix("seccomp-"), "\(names)")
        let path = cache.directory + "/" + names[0]
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        func inode() -> UInt64 {
            var st = stat()
            return lstat(path, &st) == 0 ? UInt64(st.st_ino) : 0
        }
        let written = inode()
        // Read back from the entry: nothing compiled, nothing written (a write renames a new file over it).
        #expect(try compile(inputs, cache: cache) == fresh)
        #expect(inode() == written)

        // Another rule set is another entry.
        let forking = SeccompPolicy.Inputs(fork: true, networkAccess: .none)
        #expect(try compile(forking, cache: cache) == (try compile(forking, cache: nil)))
        #expect(entries().count == 2)

        // An entry whose program is not whole instructions: compiled afresh and rewritten.
        var damaged = [UInt8](stored)
        damaged.removeLast(3)
        let header = String(decoding: damaged.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self).split(separator: " ")
        let rewritten = Array("\(header[0]) \(header[1]) \(header[2]) \(Int(header[3])! - 3)".utf8) + damaged.drop { $0 != UInt8(ascii: "\n") }
        try Data(rewritten).write(to: URL(fileURLWithPath: path))
        let damagedInode = inode()
        #expect(try compile(inputs, cache: cache) == fresh)
        #expect(inode() != damagedInode, "the damaged entry was replaced")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == stored)
    }

    @Test("entry values: whole instructions and plain call names only")
    func entryValues() {
        let program = [UInt8](repeating: 6, count: 16)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: program, unknown: [])).map { $0.bpf == program && $0.unknown.isEmpty } == true)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: program, unknown: ["landlock_foo", "bar2"]))?.unknown == ["landlock_foo", "bar2"])
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: [], unknown: [])) == nil)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: [1, 2, 3], unknown: [])) == nil)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: [UInt8](repeating: 0, count: 8 * 4097), unknown: [])) == nil)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: program, unknown: ["a b"])) == nil)
        #expect(SeccompCompiler.decodeEntry(SeccompCompiler.encodeEntry(bpf: program, unknown: ["a", ""])) == nil)
        #expect(SeccompCompiler.decodeEntry(program) == nil, "no names line")
    }
}
