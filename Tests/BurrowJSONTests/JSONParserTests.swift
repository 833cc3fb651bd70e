import BurrowJSON
import Testing

@Suite("JSONParser: strict and bounded")
struct JSONParserTests {
    private func parse(_ text: String, _ limits: JSONLimits = .standard) throws(JSONError) -> JSON { try JSONParser.parse(text, limits: limits) }

    private func refusal(_ text: String, _ limits: JSONLimits = .standard) -> JSONError? {
        do {
            _ = try parse(text, limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsEveryKindOfValue() throws {
        let v = try parse(#" {"a": [1, -2.5e3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {}} "#)
        #expect(v["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("xé😀\n")]))
        #expect(v["b"] == .object([:]))
    }

    @Test func nestingIsRefusedAtTheLimitNotByTheStack() {
        let depth = 100_000
        let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(refusal(deep)?.message == "nested deeper than 64 levels")
        #expect(refusal(deep)?.offset == 64)
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(refusal(ok) == nil)
        let objects = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(refusal(objects)?.message == "nested deeper than 64 levels")
    }

    @Test func duplicateKeysAreRefusedWhereTheSecondStarts() {
        let e = refusal(#"{"a": 1, "a": 2}"#)
        #expect(e?.message == #"duplicate key "a""#)
        #expect(e?.offset == 9)
        // Keys equal once unescaped are the same key.
        #expect(refusal(#"{"a": 1, "\u0061": 2}"#)?.message == #"duplicate key "a""#)
    }

    @Test func sizesAreBounded() {
        let limits = JSONLimits(maxKeyBytes: 4, maxStringBytes: 8, maxItems: 3, maxBytes: 64)
        #expect(refusal(#"{"abcde": 1}"#, limits)?.message == "a key longer than 4 bytes")
        #expect(refusal(#"["123456789"]"#, limits)?.message == "a string longer than 8 bytes")
        #expect(refusal(#"["12345678\n"]"#, limits)?.message == "a string longer than 8 bytes")
        #expect(refusal("[1,2,3,4]", limits)?.message == "an array with more than 3 elements")
        #expect(refusal(#"{"a":1,"b":2,"c":3,"d":4}"#, limits)?.message == "an object with more than 3 members")
        #expect(refusal(String(repeating: " ", count: 65) + "1", limits)?.message == "the document is 66 bytes, more than the 64 allowed")
        #expect(refusal("[1,2,3]", limits) == nil)
        #expect(refusal(String(repeating: "1", count: 600))?.message == "a number longer than 512 characters")
    }

    @Test func malformedInputIsRefusedWithItsOffset() {
        let cases: [(String, String)] = [
            ("", "unexpected end of the document"), ("[1,", "unexpected end of the document"), ("{\"a\" 1}", "expected ':'"),
            ("[01]", "a number with a leading zero"), ("1 2", "unexpected text after the value"), ("\"a\u{1}\"", "a control character in a string (escape it)"),
            (#""\ud800""#, "a lone surrogate in a \\u escape"), (#""\q""#, "an invalid escape"), ("nul", "truncated literal"), ("[+1]", "expected a value"),
            ("{1:2}", "expected a key (a string)"), ("\"abc", "unterminated string"), ("[1 2]", "expected ',' or ']'"),
        ]
        for (text, message) in cases { #expect(refusal(text)?.message == message, "\(text)") }
        // Bytes that are not UTF-8 inside a string.
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xff, 0x22]) }
    }

    @Test func nulIsAValueHereAndACheckForTheFieldThatTakesIt() throws {
        // JSON may carry U+0000 (stdin may be binary text); paths, argv and
        // environment refuse it where they are validated.
        #expect(try parse(#""a\u0000b""#) == .string("a\u{0}b"))
    }

    @Test func canonicalTextSortsKeysAndKeepsNumbers() throws {
        #expect(try parse(#"{"b": 1.50, "a": ["\u0007", "/"]}"#).canonicalText == #"{"a":["\u0007","/"],"b":1.50}"#)
    }
}
