import BurrowTestSupport
import Foundation
import Synchronization
import SystemPackage
import Testing

@testable import BurrowSystem

/// Paths opened as a caller (burrowd's unprivileged callers): the walk and
/// the access check use the caller's ids on this thread only, and the thread
/// is root again afterwards. Numeric ids need no account: the kernel checks
/// ids, not names.
@Suite("Caller access: paths opened with the caller's rights")
struct CallerAccessTests {
    static let caller = CallerCredentials(uid: 54_321, gid: 54_321, groups: [54_321])
    static let member = CallerCredentials(uid: 54_321, gid: 54_321, groups: [54_321, 54_322])

    /// A directory tree owned by root, with one file of each kind of access.
    struct Tree {
        let root: String
        init() throws {
            root = NSTemporaryDirectory() + "burrow-caller-access-" + UUID().uuidString.lowercased()
            func make(_ path: String, mode: mode_t, owner: (uid_t, gid_t) = (0, 0), directory: Bool = false) throws {
                if directory {
                    try #require(mkdir(root + path, mode) == 0)
                } else {
                    try #require(FileManager.default.createFile(atPath: root + path, contents: Data("x".utf8)))
                }
                try #require(chown(root + path, owner.0, owner.1) == 0 && chmod(root + path, mode) == 0)
            }
            try #require(mkdir(root, 0o755) == 0)
            try make("/private", mode: 0o700, directory: true)
            try make("/private/open", mode: 0o644)
            try make("/secret", mode: 0o600)
            try make("/public", mode: 0o644)
            try make("/tool", mode: 0o755)
            try make("/mine", mode: 0o600, owner: (54_321, 54_321))
            try make("/team", mode: 0o640, owner: (0, 54_322))
            try #require(symlink(root + "/public", root + "/link") == 0)
        }
        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    /// nil when `path` opened for `access` as `who`, else why not.
    private func refusal(_ path: String, _ access: CallerAccess.Access, as who: CallerCredentials = caller) -> CallerAccess.Failure? {
        do {
            let fd = try CallerAccess.open(path, as: who, access: access)
            try? fd.close()
            return nil
        } catch {
            return error
        }
    }

    @Test("each grant is opened only with the access the caller has", .requires(.rootInInitialUserNamespace))
    func accessAsTheCaller() throws {
        try Requirement.rootInInitialUserNamespace.check()
        let tree = try Tree()
        defer { tree.remove() }
        let r = tree.root
        // Readable by all, writable by root only.
        #expect(refusal(r + "/public", .read) == nil)
        #expect(refusal(r + "/public", .write) == .denied(path: r + "/public", caller: Self.caller.description, access: .write))
        // Root's own file, and a file inside root's 0700 directory (the walk itself is refused).
        #expect(refusal(r + "/secret", .read) == .denied(path: r + "/secret", caller: Self.caller.description, access: .read))
        #expect(refusal(r + "/private/open", .read) == .denied(path: r + "/private/open", caller: Self.caller.description, access: .read))
        #expect(refusal(r + "/private", [.read, .execute]) == .denied(path: r + "/private", caller: Self.caller.description, access: [.read, .execute]))
        // The caller's own file, and an executable.
        #expect(refusal(r + "/mine", [.read, .write]) == nil)
        #expect(refusal(r + "/tool", [.read, .execute]) == nil)
        #expect(refusal(r + "/public", .execute) == .denied(path: r + "/public", caller: Self.caller.description, access: .execute))
        // A group file: readable through a supplementary group only.
        #expect(refusal(r + "/team", .read) == .denied(path: r + "/team", caller: Self.caller.description, access: .read))
        #expect(refusal(r + "/team", .read, as: Self.member) == nil)
        // A symlink is never followed; a missing path says so.
        #expect(refusal(r + "/link", .read) == .symlink(path: r + "/link"))
        #expect(refusal(r + "/absent", .read) == .missing(path: r + "/absent"))
    }

    @Test("the thread is root again afterwards, and other threads never stopped being root", .requires(.rootInInitialUserNamespace))
    func perThreadAndRestored() throws {
        try Requirement.rootInInitialUserNamespace.check()
        let tree = try Tree()
        defer { tree.remove() }
        let secret = tree.root + "/secret"
        let before = try #require(ownGroups())
        // While this thread is the caller, another thread still reads root's
        // file. (Started before the switch: a thread inherits the identity of
        // the thread that creates it, so nothing may be started inside.)
        let theirs = Mutex<Bool>(false)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        try Kernel.detachedThread {
            go.wait()
            let fd = open(secret, O_RDONLY | O_CLOEXEC)
            theirs.withLock { $0 = fd >= 0 }
            if fd >= 0 { close(fd) }
            done.signal()
        }
        let outcome = try CallerAccess.asCaller(Self.member) { () -> (mine: Bool, theirs: Bool, ids: String?) in
            let mine = open(secret, O_RDONLY | O_CLOEXEC)
            if mine >= 0 { close(mine) }
            go.signal()
            done.wait()
            return (mine >= 0, theirs.withLock { $0 }, statusLine("Uid:"))
        }.get()
        #expect(!outcome.mine, "the caller's thread opened root's 0600 file")
        #expect(outcome.theirs, "another thread lost root's rights while one thread was the caller")
        // Uid: real effective saved fs
        #expect(outcome.ids?.split(separator: "\t").last == "54321")
        // Root again: the same thread reads it, with its groups as before.
        let fd = open(secret, O_RDONLY | O_CLOEXEC)
        #expect(fd >= 0)
        if fd >= 0 { close(fd) }
        #expect(statusLine("Uid:")?.split(separator: "\t").last == "0")
        #expect(ownGroups() == before)
    }

    /// A line of this thread's /proc status.
    private func statusLine(_ prefix: String) -> String? {
        (try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }

    private func ownGroups() -> String? { statusLine("Groups:") }
}
