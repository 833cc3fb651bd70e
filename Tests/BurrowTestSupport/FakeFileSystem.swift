package import BurrowSystem

/// An in-memory host file system for plan tests: deterministic on any machine.
package struct FakeFileSystem: FileSystemView {
    package enum Entry: Sendable {
        case file(executable: Bool, content: [UInt8])
        case directory
        case symlink(String)
    }

    package var entries: [String: Entry]
    /// What `projectQuota` answers for a path; absent: no project quotas.
    package var projectQuotas: [String: HostFacts.Check] = [:]

    /// Builds a tree; parent directories are added implicitly.
    package init(_ entries: [String: Entry]) {
        var all = entries
        for path in entries.keys {
            var parent = path
            while let slash = parent.lastIndex(of: "/"), slash != parent.startIndex {
                parent = String(parent[..<slash])
                if all[parent] == nil { all[parent] = .directory }
            }
        }
        all["/"] = .directory
        self.entries = all
    }

    package func kind(_ path: String) -> FileKind? {
        switch entries[path] {
        case .file(let executable, _): .file(executable: executable)
        case .directory: .directory
        case .symlink: .symlink
        case nil: nil
        }
    }

    package func projectQuota(_ path: String) -> HostFacts.Check {
        projectQuotas[path] ?? .no("\(path) is on a fake file system without project quotas")
    }

    package func readLink(_ path: String) -> String? {
        if case .symlink(let target) = entries[path] { return target }
        return nil
    }

    package func list(_ path: String) -> [String]? {
        guard case .directory = entries[path] else { return nil }
        let prefix = path == "/" ? "/" : path + "/"
        return entries.keys.filter { $0.hasPrefix(prefix) && $0 != path && !$0.dropFirst(prefix.count).contains("/") }
            .map { String($0.dropFirst(prefix.count)) }.sorted()
    }

    package func read(_ path: String, offset: Int, count: Int) -> [UInt8]? {
        guard case .file(_, let content) = entries[path] else { return nil }
        guard offset < content.count else { return [] }
        return Array(content[offset..<min(content.count, offset + count)])
    }

    /// A small merged-/usr Debian-like host with sh, coreutils, python3 and git.
    package static let debianLike = FakeFileSystem([
        "/bin": .symlink("usr/bin"), "/lib": .symlink("usr/lib"), "/lib64": .symlink("usr/lib64"),
        "/usr/bin/sh": .symlink("dash"), "/usr/bin/dash": .file(executable: true, content: []),
        "/usr/bin/true": .file(executable: true, content: []), "/usr/bin/cat": .file(executable: true, content: []),
        "/usr/bin/echo": .file(executable: true, content: []), "/usr/bin/ls": .file(executable: true, content: []),
        "/usr/bin/env": .file(executable: true, content: []), "/usr/bin/id": .file(executable: true, content: []),
        "/usr/bin/sleep": .file(executable: true, content: []), "/usr/bin/false": .file(executable: true, content: []),
        "/usr/bin/python3": .symlink("python3.11"), "/usr/bin/python3.11": .file(executable: true, content: []),
        "/usr/bin/git": .file(executable: true, content: []),
        "/usr/lib/python3.11/os.py": .file(executable: false, content: []),
        "/usr/share/git-core/templates/description": .file(executable: false, content: []),
        "/srv/burrow/repo/.git/hooks/pre-commit.sample": .file(executable: false, content: []),
        "/opt/burrow/venvs/mcp-server-git/bin/python3": .symlink("/usr/bin/python3"),
        "/dev/null": .file(executable: false, content: []),
        "/etc/localtime": .symlink("/usr/share/zoneinfo/Etc/UTC"),
        "/usr/share/zoneinfo/Etc/UTC": .file(executable: false, content: []),
    ])
}
