import BurrowTestSupport
import Foundation
import Testing

/// Every seed of the fuzz corpus, and every crash the fuzzers found (kept
/// there as regression inputs), through the same targets libFuzzer drives
/// (Tests/Fuzz, Scripts/fuzz.sh), in the normal build.
@Suite("Fuzz corpus replay")
struct FuzzCorpusTests {
    static let targets = ["profile-toml", "profile-json", "api-request", "mcp-message", "json-schema", "egress-request", "session-frames", "tool-manifest"]

    @Test("every seed and regression input passes its target", arguments: targets)
    func replay(target: String) throws {
        let corpus = Fixtures.repositoryRoot + "/Tests/Fuzz/Corpus/" + target
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus)
        #expect(!seeds.isEmpty, "the seed corpus of \(target) is empty")
        let result = try Subprocess.run([Subprocess.productsDirectory + "/burrow-fuzz", "replay", target, corpus])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output.contains("\(target): \(seeds.count) inputs replayed"), "\(result.output)")
    }
}
