import BurrowJSON
import Testing

@Suite("StrictJSONDecoder: unknown fields, exact types")
struct StrictJSONDecoderTests {
    struct Limits: Decodable, Equatable {
        var requestsPerMinute: Int?
        var maxConcurrent: Int?
    }

    struct Registration: Decodable, Equatable {
        var id: String
        var command: [String]
        var rateLimits: Limits?
        var environment: [String: String]?
        var timeout: Double?
        var count: UInt8?
    }

    private func decode(_ text: String) throws(JSONDecodeError) -> Registration {
        try StrictJSONDecoder().decode(Registration.self, from: Array(text.utf8))
    }

    private func refusal(_ text: String) -> String? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func decodesWhatTheTypeReads() throws {
        let r = try decode(#"{"id": "t", "command": ["a"], "rateLimits": {"maxConcurrent": 2}, "environment": {"ANY_NAME": "v"}, "timeout": 1, "count": null}"#)
        #expect(r == Registration(id: "t", command: ["a"], rateLimits: Limits(maxConcurrent: 2), environment: ["ANY_NAME": "v"], timeout: 1))
    }

    @Test func aMisspeltFieldIsAnErrorWithTheNearestName() {
        #expect(
            refusal(#"{"id": "t", "command": [], "rateLimts": {"maxConcurrent": 1}}"#)
                == "unknown field \"rateLimts\" (did you mean 'rateLimits'?); known fields here: command, count, environment, id, rateLimits, timeout")
        #expect(refusal(#"{"id": "t", "command": [], "rateLimits": {"maxConcurent": 1}}"#)?.hasPrefix("rateLimits: unknown field \"maxConcurent\" (did you mean 'maxConcurrent'?)") == true)
    }

    @Test func typesAreExact() {
        #expect(refusal(#"{"id": 5, "command": []}"#) == "id: expected a string, found an integer")
        #expect(refusal(#"{"id": "t", "command": [1]}"#) == "command[0]: expected a string, found an integer")
        #expect(refusal(#"{"id": "t", "command": [], "count": 1.5}"#) == "count: expected an integer, found 1.5")
        #expect(refusal(#"{"id": "t", "command": [], "count": 300}"#) == "count: 300 is out of range (0 to 255)")
        #expect(refusal(#"{"id": "t", "command": [], "timeout": 1e999}"#) == "timeout: 1e999 is out of range")
        #expect(refusal(#"{"id": "t"}"#) == "missing field 'command'")
        #expect(refusal(#"{"id": "t", "command": {}}"#) == "command: expected an array, found an object")
    }

    @Test func syntaxAndLimitsComeFirst() {
        #expect(refusal(#"{"id": "t", "id": "u", "command": []}"#) == "not valid JSON: duplicate key \"id\" at byte 12")
        #expect(refusal(String(repeating: "[", count: 1000))?.hasPrefix("not valid JSON: nested deeper than 64 levels") == true)
    }
}
