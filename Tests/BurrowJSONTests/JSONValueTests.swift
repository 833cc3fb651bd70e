import BurrowJSON
import Foundation
import Testing

/// `JSON` as the one value type: what Burrow writes (audit details), what
/// Codable carries (API bodies, stored events), and how values compare.
struct JSONValueTests {
    /// The escaping as it was first written, scalar by scalar: the audit log
    /// hashes this text, so the byte-wise `JSON.quote` must equal it exactly.
    private func referenceQuote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    @Test("quoting works on bytes and gives exactly the scalar-by-scalar text")
    func quoteMatchesReference() {
        let alphabet: [Unicode.Scalar] =
            (0..<0x20).map { Unicode.Scalar(UInt8($0)) } + ["\"", "\\", "/", "a", "Z", " ", "\u{7F}", "\u{80}", "é", "\u{FFFD}", "\u{2028}", "\u{202E}", "😀", "中"]
        var state: UInt64 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<5000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<next(24) { s.append(alphabet[next(alphabet.count)]) }
            let text = String(s)
            #expect(JSON.quote(text) == referenceQuote(text), "\(Array(text.utf8))")
        }
        #expect(JSON.quote("") == "\"\"")
        #expect(JSON.quote("plain") == "\"plain\"")
    }

    @Test("numbers Burrow writes: integers in decimal, doubles as Swift writes them, no NaN or infinity")
    func writtenNumbers() {
        #expect(JSON.integer(-42).canonicalText == "-42")
        #expect(JSON.integer(Int64.max).canonicalText == "9223372036854775807")
        #expect(JSON.number(2.5).canonicalText == "2.5" && JSON.number(1).canonicalText == "1.0" && JSON.number(1e-5).canonicalText == "1e-05")
        #expect(JSON.number(.nan) == .null && JSON.number(.infinity) == .null)
        let details: JSON = .object(["b": .integer(1), "a": .number(0.25), "c": .array([.string("x\u{1}"), .null, .bool(true)])])
        #expect(details.canonicalText == #"{"a":0.25,"b":1,"c":["x\u0001",null,true]}"#)
    }

    @Test("values compare as JSON: numbers by value, integers exactly however long")
    func equality() throws {
        #expect(JSON.number("1.0") == JSON.number("1") && JSON.number("1e2") == JSON.integer(100))
        #expect(JSON.number("9007199254740993") != JSON.number("9007199254740992"), "beyond 2^53, integers are not rounded to doubles")
        #expect(JSON.number("1") != JSON.string("1") && JSON.null != JSON.bool(false))
        #expect(try JSONParser.parse(#"{"a": 1, "b": [2.0]}"#) == JSON.object(["b": .array([.integer(2)]), "a": .number(1)]))
    }

    @Test("through Codable: integers stay integers, doubles doubles, and values read back equal")
    func codable() throws {
        let value: JSON = .object(["count": .integer(3), "score": .number(2.1), "big": .integer(Int64.max), "list": .array([.null, .string("é")])])
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSON.self, from: data) == value)
        #expect(try JSONParser.parse(Array(data)) == value)
        #expect(throws: EncodingError.self) { try JSONEncoder().encode(JSON.number("1e999")) }
    }

    @Test("accessors")
    func accessors() throws {
        let v = try JSONParser.parse(#"{"n": 12, "f": 3.0, "x": 3.5, "s": "t", "a": [1]}"#)
        #expect(v["n"]?.integerValue == 12 && v["f"]?.integerValue == 3 && v["x"]?.integerValue == nil && v["x"]?.doubleValue == 3.5)
        #expect(v["s"]?.stringValue == "t" && v["a"]?.arrayValue == [.integer(1)] && v["missing"] == nil && v["s"]?.integerValue == nil)
    }
}
