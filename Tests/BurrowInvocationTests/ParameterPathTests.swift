import BurrowHost
import BurrowProfile
import BurrowSystem
import BurrowTestSupport
import Foundation
import Testing

@testable import BurrowInvocation

/// A path parameter's value as the host has it, checked on every run.
@Suite("Parameter paths on the host")
struct ParameterPathTests {
    @Test("a caller may hand over only paths it owns (root: any), reached without a symlink, present when they must be")
    func ownershipSymlinksAndExistence() throws {
        let dir = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/mine", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/theirs", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/mine")
        // Who owns what, as the check sees it: the caller is uid 4242.
        let owners = [dir + "/mine": UInt32(4242), dir + "/theirs": 4343]
        let bob = Caller(principal: "bob", uid: 4242)
        func problems(_ value: String, mustExist: Bool = false, caller: Caller? = bob, source: ResolvedParameter.Source = .caller) -> [String] {
            Planner.pathProblems(
                [ResolvedParameter(name: "p", type: .path, value: value, source: source, mustExist: mustExist)], file: "t.toml", caller: caller, owner: { owners[$0] }
            ).map(\.message)
        }
        #expect(problems(dir + "/mine").isEmpty)
        #expect(problems(dir + "/mine/new/deeper").isEmpty, "not there yet: its nearest existing ancestor is the caller's")
        #expect(problems(dir + "/theirs").first?.contains("is not yours (uid 4242)") == true)
        #expect(problems(dir + "/theirs/new").first?.contains("is not yours") == true)
        #expect(problems(dir + "/theirs", caller: Caller(principal: "root", uid: 0)).isEmpty, "root may")
        #expect(problems(dir + "/theirs", source: .default).isEmpty, "the profile's own default is not a caller's choice")
        #expect(problems(dir + "/link").first?.contains("is reached through a symlink") == true)
        #expect(problems(dir + "/none", mustExist: true).first?.contains("does not exist") == true)
    }
}
