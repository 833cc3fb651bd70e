import BurrowJSON
import BurrowMCP
import Testing

@Suite("MCP relay: JSON and schema subset")
struct MCPFramingTests {
    private func parse(_ text: String, depth: Int = 64) -> JSON? { try? JSONParser.parse(Array(text.utf8), limits: JSONLimits(maxDepth: depth)) }

    @Test func strictJSON() {
        #expect(parse(#"{"a":[1,2.5,-3e2,"x\u00e9\ud83d\ude00",true,null]}"#)?["a"] != nil)
        for bad in [#"{"a":1,"a":2}"#, #"{"a":01}"#, "[1,]", #"{"a":"\ud800"}"#, "{\"a\":\"\u{01}\"}", "[1] 2", #"{'a':1}"#] {
            #expect(parse(bad) == nil, "\(bad)")
        }
        #expect(parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) == nil, "deeper than the limit")
        #expect(parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) != nil)
    }

    @Test func schemaSubset() throws {
        let schema = try #require(
            parse(
                #"{"type":"object","properties":{"tz":{"type":"string","pattern":"^[A-Z][a-z]+/[A-Za-z_]+$","maxLength":40},"n":{"type":"integer","minimum":1,"maximum":10},"mode":{"enum":["a","b"]},"tags":{"type":"array","items":{"type":"string"}}},"required":["tz"],"additionalProperties":false}"#
            ))
        func check(_ args: String) -> String? { SchemaValidator.violation(of: parse(args)!, against: schema) }
        #expect(check(#"{"tz":"Europe/Paris","n":3,"mode":"a","tags":["x"]}"#) == nil)
        #expect(check(#"{"n":3}"#) == "arguments: missing required property tz")
        #expect(check(#"{"tz":"europe"}"#)?.contains("pattern") == true)
        #expect(check(#"{"tz":"Europe/Paris","n":11}"#)?.contains("maximum") == true)
        #expect(check(#"{"tz":"Europe/Paris","n":2.5}"#)?.contains("expected integer") == true)
        #expect(check(#"{"tz":"Europe/Paris","mode":"c"}"#)?.contains("allowed values") == true)
        #expect(check(#"{"tz":"Europe/Paris","tags":[1]}"#) == "arguments.tags[0]: expected string, got integer")
        #expect(check(#"{"tz":"Europe/Paris","extra":1}"#) == "arguments: property extra is not allowed")
    }
}
