import BurrowTestSupport
import Testing

@testable import BurrowProfile

/// Hostile documents: each is refused with the bound it broke, before any
/// parser recurses on it, and nothing in a string is silently cut.
@Suite("Document limits (TOML and JSON)")
struct DocumentLimitsTests {
    private let head = "[tool]\nid = \"t\"\nname = \"T\"\nversion = \"1\"\n"

    private func tomlRefusal(_ text: String) -> TOMLReader.Failure? {
        do {
            _ = try TOMLReader.parse(text)
            return nil
        } catch {
            return error
        }
    }

    private func issues(_ text: String, format: String = "toml") -> [String] {
        let loader = Fixtures.loader(["/p/a.\(format)": text])
        return loader.load("/p/a.\(format)").errors.map { "\($0.keyPath): \($0.message)" }
    }

    @Test func deepDottedKeysAndHeadersAreRefusedNotRecursedInto() {
        // 35,000 segments crashed toml++ (stack overflow in its parser), the reader Burrow used before.
        let dotted = head + Array(repeating: "a", count: 35_000).joined(separator: ".") + " = 1\n"
        #expect(tomlRefusal(dotted) == TOMLReader.Failure(line: 5, column: 66, message: "nested deeper than 32 levels (tables, dotted keys and arrays count)"))
        #expect(issues(dotted).first?.hasSuffix("line 5, column 66: nested deeper than 32 levels (tables, dotted keys and arrays count)") == true)
        let header = "[" + Array(repeating: "\"q\"", count: 50_000).joined(separator: " . ") + "]\n"
        #expect(tomlRefusal(header)?.message.hasPrefix("nested deeper than 32") == true)
        let arrays = "a = " + String(repeating: "[", count: 40_000) + String(repeating: "]", count: 40_000) + "\n"
        #expect(tomlRefusal(arrays)?.message.hasPrefix("nested deeper than 32") == true)
        let tables = "a = " + String(repeating: "{ b = ", count: 40_000) + "1" + String(repeating: " }", count: 40_000) + "\n"
        #expect(tomlRefusal(tables)?.message.hasPrefix("nested deeper than 32") == true)
        let mixed = "[x.y]\n" + Array(repeating: "k", count: 20).joined(separator: ".") + " = " + String(repeating: "[", count: 11) + String(repeating: "]", count: 11)
        #expect(tomlRefusal(mixed)?.message.hasPrefix("nested deeper than 32") == true)
    }

    @Test func aNulIsRefusedHoweverItIsWritten() {
        // TOMLKit passed strings as C strings: "/etc\u0000/x" arrived as "/etc". No path may hold a NUL.
        // \x00 is TOML 1.1's form, which this reader does not take at all.
        for (escape, refusal) in [("\\u0000", "a NUL character"), ("\\U00000000", "a NUL character"), ("\\x00", "an invalid escape")] {
            let basic = head + "[permissions]\nfile_read = [\"/etc\(escape)/nonexistent\"]\n"
            #expect(tomlRefusal(basic)?.message.hasPrefix(refusal) == true, "\(escape)")
            #expect(issues(basic).count == 1)
            let multi = head + "description = \"\"\"\nx\(escape)\"\"\"\n"
            #expect(tomlRefusal(multi)?.message.hasPrefix(refusal) == true, "\(escape)")
        }
        #expect(tomlRefusal(head + "a = \"x\u{0}y\"\n")?.message == "a NUL byte (TOML allows none)")
        #expect(tomlRefusal(head + "# a comment \u{0} with a NUL\n")?.message == "a NUL byte (TOML allows none)")
        #expect(tomlRefusal(head + "a = 'x\u{1b}y'\n")?.message == "the control character U+1B (escape it inside a string)")
        // In JSON the escape is legal; the path check refuses it with its key path.
        let json = #"{"tool": {"id": "t", "name": "T", "version": "1"}, "permissions": {"file_read": ["/etc\u0000/nonexistent"]}}"#
        #expect(issues(json, format: "json") == ["permissions.file_read[0]: path contains the NUL character U+0000"])
    }

    @Test func sizesAreBounded() {
        let longString = head + "description = \"" + String(repeating: "x", count: 70_000) + "\"\n"
        #expect(tomlRefusal(longString)?.message == "a string longer than 65536 bytes")
        let longKey = head + String(repeating: "k", count: 300) + " = 1\n"
        #expect(tomlRefusal(longKey)?.message == "a key longer than 256 bytes")
        let huge = head + "# " + String(repeating: "x", count: 1 << 20) + "\n"
        #expect(tomlRefusal(huge)?.message.hasPrefix("the document is") == true)
        let entries = (0..<5000).map { "\"/srv/d\($0)\"" }.joined(separator: ",")
        #expect(issues(head + "[permissions]\nfile_read = [\(entries)]\n") == ["permissions.file_read: 5000 entries, more than the 4096 a profile may list here"])
        let json = #"{"tool": {"id": "t", "name": "T", "version": "1"}, "permissions": {"file_read": ["# + entries + "]}}"
        #expect(issues(json, format: "json") == ["permissions.file_read: 5000 entries, more than the 4096 a profile may list here"])
        let deepJSON = String(repeating: "{\"a\":", count: 40) + "1" + String(repeating: "}", count: 40)
        #expect(issues(deepJSON, format: "json").first?.contains("nested deeper than 32 levels") == true)
    }

    @Test func theMostGrantsAProfileMayListValidate() {
        // 4096 reads, 4096 writes and 4096 blocked paths: linear checks (the old
        // pairwise ones took minutes at 100,000).
        let reads = (0..<4096).map { "\"/srv/r\($0)/**\"" }.joined(separator: ",")
        let writes = (0..<4096).map { "\"/srv/w\($0)\"" }.joined(separator: ",")
        let blocked = (0..<4095).map { "\"/srv/w\($0)/x\"" }.joined(separator: ",")
        let text = head + "[permissions]\nfile_read = [\(reads)]\nfile_write = [\(writes)]\n[filesystem_access]\nblocked_paths = [\(blocked), \"/srv/r7\"]\n"
        #expect(issues(text) == ["permissions.file_read[7]: read path '/srv/r7' lies inside blocked path '/srv/r7' (filesystem_access.blocked_paths[4095]): it would be masked"])
    }

    @Test func validTOMLPassesTheLexerUntouched() {
        let text = #"""
            # a comment with [brackets] and "quotes"
            "quoted.key" = 'literal # not a comment'
            dotted . key = "esc \" \\ \u00e9 \U0001F600 \t"
            multi = """
            one "" two \
              three""""
            lit = '''
            it's ''here'''''
            when = 1979-05-27 07:32:00Z
            day = 1979-05-27 # a date, then a comment
            local = [1979-05-27 07:32:00.999 , 07:32:00]
            hex = 0xDEAD_BEEF
            arr = [ # a comment
              1, 2.5e3, -inf, # and another
              [ "x", { a = 1, b.c = [true] } ],
            ]
            [ server . "a b" ]
            x = {}
            [[rules]]
            name = "r"
            """#
        #expect(tomlRefusal(text) == nil)
        #expect(tomlRefusal(text.replacingOccurrences(of: "\n", with: "\r\n")) == nil)
    }

    @Test func aBareValueIsASCIIWithOnlyADateTimeSpace() {
        // toml++ 3.4 asserted (the process aborted) on a date, a space and one
        // digit before a terminator; the fuzzer found it (Tests/Fuzz/Corpus/profile-toml/date-space-digit.toml).
        for value in ["1979-05-27 1", "1979-05-27 1,", "1979-05-27 12", "1979-05-27  07:32:00", "12 34", "1979-05-27\t07:32:00"] {
            let text = head + "a = \(value)\n"
            #expect(tomlRefusal(text)?.message.hasPrefix("unexpected text after the value") == true, "\(value)")
            #expect(issues(text).count == 1, "\(value)")
        }
        #expect(tomlRefusal(head + "a = [1979-05-27 1]\n")?.message == "expected ',' or ']' in the array")
        #expect(tomlRefusal(head + "a = 1979-05-27 07:32:00 1\n")?.message.hasPrefix("unexpected text after the value") == true)
        // No Unicode blank (toml++ ended a value at one) or other non-ASCII belongs in one.
        #expect(tomlRefusal(head + "a = 1979-05-27\u{a0}07:32:00\n")?.message.hasPrefix("a non-ASCII character in a number") == true)
        #expect(tomlRefusal(head + "a = 1\u{2028}\n")?.message.hasPrefix("a non-ASCII character in a number") == true)
    }
}
