import BurrowRuntime
import BurrowTestSupport
import Foundation
import SystemPackage
import Testing

/// `ChildStage` mirrors `enum brw_stage` in brw_child.h one to one.
@Suite struct ChildStageTests {
    @Test func stagesMatchTheHeader() throws {
        let header = try String(contentsOfFile: Fixtures.repositoryRoot + "/Sources/CBurrowChild/include/brw_child.h", encoding: .utf8)
        var fromHeader: [String: UInt32] = [:]
        for line in header.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("BRW_STAGE_"), let eq = text.firstIndex(of: "=") else { continue }
            let name = text[..<eq].trimmingCharacters(in: .whitespaces).dropFirst("BRW_STAGE_".count)
            let value = text[text.index(after: eq)...].trimmingCharacters(in: CharacterSet(charactersIn: " ,"))
            fromHeader[String(name)] = UInt32(value)
        }
        func cName(_ stage: ChildStage) -> String {
            // noNewPrivileges → NO_NEW_PRIVILEGES
            var out = ""
            for c in "\(stage)" {
                if c.isUppercase { out += "_" }
                out += c.uppercased()
            }
            return out
        }
        let swiftNames = Dictionary(uniqueKeysWithValues: ChildStage.allCases.map { (cName($0), $0.rawValue) })
        let aliases = ["NO_NEW_PRIVILEGES": "NO_NEW_PRIVS", "CLOSE_DESCRIPTORS": "CLOSE_FDS"]
        let normalized = Dictionary(uniqueKeysWithValues: swiftNames.map { (aliases[$0.key] ?? $0.key, $0.value) })
        #expect(normalized == fromHeader)
    }

    @Test func spawnErrorsNameTheStage() {
        let error = RunError.spawn(stage: .pivotRoot, errno: .init(rawValue: 22), detail: "")
        #expect(error.description.contains("pivot_root"))
        #expect(error.reason == "spawn_failed")
        #expect(RunError.spawn(stage: .exec, errno: .init(rawValue: 2), detail: "/x").reason == "not_found")
        #expect(RunError.spawn(stage: .exec, errno: .init(rawValue: 13), detail: "/x").reason == "not_executable")
    }
}
