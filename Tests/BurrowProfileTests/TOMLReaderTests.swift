import Testing

@testable import BurrowProfile

/// The TOML 1.0 reader: what the specification allows comes back as the
/// value it means; what it forbids is refused with the line and column.
@Suite("TOML reader")
struct TOMLReaderTests {
    private func read(_ text: String) throws -> [String: ConfigValue] {
        guard case .table(let t) = try TOMLReader.parse(text) else { throw TOMLReader.Failure(line: 0, column: 0, message: "not a table") }
        return t
    }

    private func refusal(_ text: String) -> TOMLReader.Failure? {
        do {
            _ = try TOMLReader.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func scalars() throws {
        let t = try read(
            """
            int = +99
            neg = -17
            zero = -0
            big = 9_223_372_036_854_775_807
            hex = 0xDEAD_beef
            oct = 0o755
            bin = 0b1101
            f1 = 3.1415
            f2 = -1e-2
            f3 = 6.626e34
            f4 = 224_617.445_991E+2_2
            inf = -inf
            tiny = 100e-100
            exp0 = 100e-010
            yes = true
            no = false
            odt = 1979-05-27T07:32:00.999-07:00
            ldt = 1979-05-27 07:32:00
            ld = 2024-02-29
            lt = 00:32:00.5
            """)
        #expect(t["int"] == .integer(99) && t["neg"] == .integer(-17) && t["zero"] == .integer(0) && t["big"] == .integer(.max))
        #expect(t["hex"] == .integer(0xDEAD_BEEF) && t["oct"] == .integer(0o755) && t["bin"] == .integer(13))
        #expect(t["f1"] == .float(3.1415) && t["f2"] == .float(-0.01) && t["f3"] == .float(6.626e34) && t["f4"] == .float(224_617.445_991e22))
        #expect(t["inf"] == .float(-.infinity) && t["yes"] == .bool(true) && t["no"] == .bool(false))
        #expect(t["tiny"] == .float(100e-100) && t["exp0"] == .float(100e-10), "a '-' at index 4 after a letter is an exponent, not a date")
        #expect(t["odt"] == .date("1979-05-27T07:32:00.999-07:00") && t["ldt"] == .date("1979-05-27 07:32:00"))
        #expect(t["ld"] == .date("2024-02-29") && t["lt"] == .date("00:32:00.5"))
        guard case .float(let nan) = try read("n = nan")["n"] else { throw TOMLReader.Failure(line: 0, column: 0, message: "nan") }
        #expect(nan.isNaN)
    }

    @Test func strings() throws {
        let t = try read(
            #"""
            basic = "tab\there \"q\" \\ \u00e9 \U0001F600"
            literal = 'C:\Users\nodejs\templates'
            ml = """
            Roses are red
            Violets are blue"""
            folded = """\
                   The quick brown \
                   fox."""
            quotes = """Here are two quotation marks: "". Simple enough."""
            five = """""five"""""
            mll = '''
            first line
              second'''
            mlq = ''''That's it,' she said.''''
            "quoted key" = 1
            'literal key' = 2
            "" = 3
            """#)
        #expect(t["basic"] == .string("tab\there \"q\" \\ é 😀"))
        #expect(t["literal"] == .string(#"C:\Users\nodejs\templates"#))
        #expect(t["ml"] == .string("Roses are red\nViolets are blue"))
        #expect(t["folded"] == .string("The quick brown fox."))
        #expect(t["quotes"] == .string(#"Here are two quotation marks: "". Simple enough."#))
        #expect(t["five"] == .string("\"\"five\"\""))
        #expect(t["mll"] == .string("first line\n  second"))
        #expect(t["mlq"] == .string("'That's it,' she said.'"))
        #expect(t["quoted key"] == .integer(1) && t["literal key"] == .integer(2) && t[""] == .integer(3))
        #expect(try read("a = \"x\"\r\nb = '''\r\ny\r\nz'''\r\n")["b"] == .string("y\nz"), "CRLF line ends read as LF inside strings")
    }

    @Test func tablesArraysAndDottedKeys() throws {
        let t = try read(
            """
            name.first = "Tom"
            name.last = "P"
            point = { x = 1, y.z = 2 }
            nested = [ [1, 2], ["a", { b = true }], [], ]
            [fruit]
            apple.color = "red"
            [fruit.apple.texture]
            smooth = true
            [a.b.c]
            d = 1
            [a]
            e = 2
            [[products]]
            name = "Hammer"
            [[products]]
            [[products.variety]]
            name = "plantain"
            """)
        #expect(t["name"] == .table(["first": .string("Tom"), "last": .string("P")]))
        #expect(t["point"] == .table(["x": .integer(1), "y": .table(["z": .integer(2)])]))
        #expect(
            t["nested"] == .array([.array([.integer(1), .integer(2)]), .array([.string("a"), .table(["b": .bool(true)])]), .array([])]))
        #expect(t["fruit"] == .table(["apple": .table(["color": .string("red"), "texture": .table(["smooth": .bool(true)])])]))
        #expect(t["a"] == .table(["b": .table(["c": .table(["d": .integer(1)])]), "e": .integer(2)]))
        #expect(t["products"] == .array([.table(["name": .string("Hammer")]), .table(["variety": .array([.table(["name": .string("plantain")])])])]))
        #expect(try read("\u{FEFF}a = 1")["a"] == .integer(1), "a byte order mark is skipped")
    }

    @Test(arguments: [
        ("a = 1\na = 2", "'a' is defined twice"),
        ("[a]\n[a]", "table [a] is defined twice"),
        ("a.b = 1\n[a]", "[a]: the table was already defined by dotted keys"),
        ("[fruit]\napple.color = 1\n[fruit.apple]", "[fruit.apple]: the table was already defined by dotted keys"),
        ("a = {}\n[a.b]", "'a' is already a value, so [a.b] cannot be a table inside it"),
        ("a = { b = 1 }\na.c = 2", "'a' is already defined, so the dotted key a.c cannot add to it"),
        ("[a.b]\n[a]\nb.c = 1", "'b' is already defined, so the dotted key b.c cannot add to it"),
        ("[a.b.c]\n[a]\nb.d = 1\n[a.b]", "[a.b]: the table was already defined by dotted keys"),
        ("a = 1e400", "'1e400' is out of range for a 64-bit float"),
        ("a = [1]\n[[a]]", "[[a]]: 'a' is already defined, and not as an array of tables"),
        ("[[a]]\n[a]", "[a] is an array of tables: add to it with [[a]]"),
        ("a = 1\n[a]", "'a' is already a value, so [a] cannot define it as a table"),
        ("a = 01", "'01': a leading zero (TOML allows none in decimal integers)"),
        ("a = 1__0", "'1__0' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = _1", "'_1' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = 1.", "'1.' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = .5", "'.5' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = 0x", "'0x' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = 9223372036854775808", "'9223372036854775808' is out of range for a 64-bit integer"),
        ("a = 0xFFFFFFFFFFFFFFFF", "'0xFFFFFFFFFFFFFFFF' is out of range for a 64-bit integer"),
        ("a = hello", "'hello' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = TRUE", "'TRUE' is not a value (quote strings; numbers, true, false, dates and times go bare)"),
        ("a = 2023-02-29", "'2023-02-29' is not a valid date or time (YYYY-MM-DD, HH:MM:SS, or both)"),
        ("a = 1979-13-01", "'1979-13-01' is not a valid date or time (YYYY-MM-DD, HH:MM:SS, or both)"),
        ("a = 24:00:00", "'24:00:00' is not a valid date or time (YYYY-MM-DD, HH:MM:SS, or both)"),
        ("a = 1979-05-27T07:32", "'1979-05-27T07:32' is not a valid date or time (YYYY-MM-DD, HH:MM:SS, or both)"),
        ("a = \"\\e\"", "an invalid escape"),
        ("a = \"\\x41\"", "an invalid escape"),
        ("a = \"\\uD800\"", "an escape that names no Unicode scalar value"),
        ("a = \"open", "unterminated string"),
        ("a = \"line\nend\"", "unterminated string (a line end inside a one-line string)"),
        ("a = { b = 1, }", "a comma before '}' (an inline table takes none)"),
        ("a = { b = 1\n}", "expected ',' or '}' in the inline table (which stays on one line)"),
        ("a = [1 2]", "expected ',' or ']' in the array"),
        ("a = 1 b = 2", "unexpected text after the value (one key = value per line)"),
        ("a b = 1", "expected '=' after the key (quote a key with other characters)"),
        ("= 1", "expected a key (letters, digits, '_' and '-', or a quoted key)"),
        ("a =", "expected a value"),
        ("\"\"\"k\"\"\" = 1", "a multi-line string cannot be a key"),
        ("[a", "expected ']' to close the table header"),
        ("[[a]", "expected ']]' to close the array of tables header"),
        ("a = \"\"\"x\"\"\"\"\"\"", "too many quotes closing a multi-line string"),
        ("a = \"\"\"x \\ y\"\"\"", "an invalid escape (only blanks may follow a line-ending backslash)"),
        ("a = 1\rb = 2", "a carriage return without a line feed"),
    ])
    func refused(_ text: String, _ message: String) {
        #expect(refusal(text)?.message == message, "\(text)")
    }

    @Test func arraysOfTablesCountTwoLevelsEach() {
        // [[a]], [[a.b]], ...: each array of tables crossed is an array and a table.
        var doc = ""
        var path: [String] = []
        for k in 0..<17 {
            path.append("k\(k)")
            doc += "[[\(path.joined(separator: "."))]]\n"
        }
        #expect(refusal(doc)?.message == "nested deeper than 32 levels (tables, dotted keys and arrays count)")
        #expect(refusal(doc.split(separator: "\n").prefix(16).joined(separator: "\n")) == nil)
    }

    @Test func positionsAreLinesAndCharacters() {
        #expect(refusal("a = 1\nb = \"é\" c") == TOMLReader.Failure(line: 2, column: 9, message: "unexpected text after the value (one key = value per line)"))
        #expect(refusal("[t]\nx = 1\nx = 2") == TOMLReader.Failure(line: 3, column: 1, message: "'x' is defined twice"))
    }
}
