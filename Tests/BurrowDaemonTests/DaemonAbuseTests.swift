import BurrowTestSupport
import Foundation
import Testing

/// burrowd attacked for real (Scripts/abuse.sh, Tests/Abuse/abuse.py): every
/// case gets its documented answer, root's health never fails during the
/// abuse, and burrowd's descriptors and memory return to their baseline.
@Suite(
    "burrowd abuse suite (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .requires(.installed("/usr/bin/python3")), .requires(.installed("/usr/bin/openssl")), .timeLimit(.minutes(5)))
struct DaemonAbuseTests {
    @Test("hostile callers cannot crash, stall or flood burrowd")
    func abuse() throws {
        for r in Requirement.sandbox { try r.check() }
        try Requirement.installed("/usr/bin/python3").check()
        let report = try Subprocess.temporaryDirectory() + "/abuse.json"
        let result = try Subprocess.run([Fixtures.repositoryRoot + "/Scripts/abuse.sh", "--bin", Subprocess.productsDirectory, "--report", report])
        // The figures, for whoever reads the test log.
        print(result.output)
        #expect(result.status == 0, "\(result.output)\n\(result.stderr)")
        let cases = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [[String: Any]])
        #expect(cases.count == 13, "\(cases.map { $0["case"] ?? "" })")
        #expect(cases.allSatisfy { $0["passed"] as? Bool == true })
    }
}
