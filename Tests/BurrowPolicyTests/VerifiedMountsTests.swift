import BurrowPolicy
import Testing

/// `showingVerified`: a signed tool's mounts take the verified copies.
@Suite("a signed tool's mounts show its verified copies")
struct VerifiedMountsTests {
    static let tree = "/store/trees/abc"
    static let ro = MountOptions(readOnly: true, [.noSetuid, .noDevices], recursive: true, idmap: true)

    static func mounts(_ entries: [MountEntry]) -> [MountEntry] {
        [MountEntry(kind: .tmpfs, target: "/", reason: "root")] + entries + [MountEntry(kind: .remount, target: "/", reason: "done")]
    }

    @Test("a bind of a root takes the copy; a root a wider bind shows gets a bind of its own after it, unless a mask hides it")
    func rewritesAndInserts() throws {
        let plan = Self.mounts([
            MountEntry(kind: .bind, source: "/home/u", target: "/home/u", options: Self.ro, reason: "read grant"),
            MountEntry(kind: .bind, source: "/opt/t", target: "/opt/t", options: Self.ro, reason: "read grant"),
            MountEntry(kind: .mask, source: "tmpfs", target: "/home/u/.config", reason: "blocked path (directory)"),
            MountEntry(kind: .bind, source: "/home/u/lib/x", target: "/home/u/lib/x", options: Self.ro, reason: "read grant"),
        ])
        let shown = try plan.showingVerified(
            tree: Self.tree, roots: ["/opt/t", "/home/u/lib"], files: ["/opt/t/bin/tool", "/home/u/lib/x", "/home/u/.config/tool/conf"], links: [:], exists: { _ in true })
        let opt = try #require(shown.first { $0.target == "/opt/t" })
        #expect(opt.source == Self.tree + "/opt/t" && opt.options.idmap == false)
        // /home/u/lib is shown by the bind of /home/u: a bind of the copy after it, before the deeper one.
        let lib = try #require(shown.firstIndex { $0.target == "/home/u/lib" })
        #expect(shown[lib].source == Self.tree + "/home/u/lib" && shown[lib].options.readOnly == true)
        #expect(lib > shown.firstIndex { $0.target == "/home/u" }! && lib < shown.firstIndex { $0.target == "/home/u/lib/x" }!)
        #expect(shown.first { $0.target == "/home/u/lib/x" }?.source == Self.tree + "/home/u/lib/x")
        // The file under the blocked path stays hidden: no bind of its copy.
        #expect(!shown.contains { $0.target == "/home/u/.config/tool/conf" })
        #expect(shown.last?.kind == .remount)
    }

    @Test("refused: a write grant in a root, a granted path below a root the manifest does not list, a link the plan would make that the manifest does not have")
    func refusals() throws {
        var rw = Self.ro
        rw.readOnly = false
        let write = Self.mounts([MountEntry(kind: .bind, source: "/opt/t/data", target: "/opt/t/data", options: rw, reason: "write grant")])
        #expect(throws: PlanError.self) { try write.showingVerified(tree: Self.tree, roots: ["/opt/t"], files: [], links: [:], exists: { _ in true }) }
        let unlisted = Self.mounts([MountEntry(kind: .bind, source: "/opt/t/extra", target: "/opt/t/extra", options: Self.ro, reason: "read grant")])
        #expect(throws: PlanError.self) { try unlisted.showingVerified(tree: Self.tree, roots: ["/opt/t"], files: [], links: [:], exists: { _ in false }) }
        let link = Self.mounts([MountEntry(kind: .symlink, source: "/home/evil", target: "/opt/t/bin/python", reason: "the same symlink as on the host")])
        #expect(throws: PlanError.self) {
            try link.showingVerified(tree: Self.tree, roots: ["/opt/t"], files: [], links: ["/opt/t/bin/python": "/usr/bin/python3"], exists: { _ in true })
        }
        #expect(throws: Never.self) {
            try link.showingVerified(tree: Self.tree, roots: ["/opt/t"], files: [], links: ["/opt/t/bin/python": "/home/evil"], exists: { _ in true })
        }
    }
}
