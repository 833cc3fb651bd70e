/// Checks a TOML document against `DocumentLimits` before toml++ (through
/// TOMLKit) parses it. Two things in that parser must never see a caller's
/// document unchecked:
///
/// - it recurses once per nested table while it parses, so a dotted key
///   35,000 segments deep (a 70 KB document) overflows the stack and takes
///   the process with it;
/// - TOMLKit hands the document and every string over as C strings, so a
///   NUL byte, or a `\u0000` escape, silently cuts what follows
///   (`"/etc\u0000/nonexistent"` would arrive as `/etc`).
///
/// This is a lexer, not a second parser: it follows TOML's grammar only as
/// far as it must to count nesting (table headers, dotted keys, arrays,
/// inline tables) and to see every string, and leaves everything else to
/// toml++. It is one loop with an explicit stack, linear in the document.
struct TOMLBounds {
    struct Failure: Error, Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    static func check(_ text: String) throws(Failure) {
        var scan = TOMLBounds(Array(text.utf8))
        try scan.document()
    }

    private let b: [UInt8]
    private var i = 0
    /// Key segments of the current [table] or [[array]] header.
    private var headerDepth = 0

    private init(_ bytes: [UInt8]) { b = bytes }

    private func fail(_ message: String, at offset: Int? = nil) -> Failure {
        let at = min(offset ?? i, b.count)
        var line = 1
        var lineStart = 0
        for k in 0..<at where b[k] == 0x0a {
            line += 1
            lineStart = k + 1
        }
        // Columns count characters, as toml++ reports them.
        let column = String(decoding: b[lineStart..<at], as: UTF8.self).count + 1
        return Failure(line: line, column: column, message: message)
    }

    private var atEnd: Bool { i >= b.count }
    private func at(_ c: Unicode.Scalar) -> Bool { i < b.count && b[i] == UInt8(ascii: c) }

    /// A byte TOML allows outside line ends: tab, or not a control character.
    private func checkText(_ byte: UInt8) throws(Failure) {
        if byte == 0 { throw fail("a NUL byte (TOML allows none)") }
        if (byte < 0x20 && byte != 0x09) || byte == 0x7f {
            throw fail("the control character U+\(String(byte, radix: 16, uppercase: true)) (escape it inside a string)")
        }
    }

    private mutating func skipBlank() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
    }

    /// A comment, if one starts here, up to (not including) the line end.
    private mutating func skipComment() throws(Failure) {
        guard at("#") else { return }
        while i < b.count, b[i] != 0x0a, b[i] != 0x0d {
            try checkText(b[i])
            i += 1
        }
    }

    /// A line end (LF or CRLF), or the end of the document.
    private mutating func lineEnd() throws(Failure) {
        skipBlank()
        try skipComment()
        if atEnd { return }
        if at("\r") { i += 1 }
        guard at("\n") else { throw fail(atEnd ? "a carriage return without a line feed" : "unexpected text after the value (one key = value per line)") }
        i += 1
    }

    /// Blank space, comments and line ends (between array elements).
    private mutating func skipSpaceAndComments() throws(Failure) {
        while true {
            skipBlank()
            try skipComment()
            if at("\r") && i + 1 < b.count && b[i + 1] == 0x0a {
                i += 2
            } else if at("\n") {
                i += 1
            } else {
                return
            }
        }
    }

    private mutating func document() throws(Failure) {
        guard b.count <= DocumentLimits.maxBytes else {
            throw Failure(line: 1, column: 1, message: "the document is \(b.count) bytes, more than the \(DocumentLimits.maxBytes) allowed")
        }
        while true {
            skipBlank()
            if atEnd { return }
            if at("#") || at("\r") || at("\n") {
                try lineEnd()
            } else if at("[") {
                try header()
                try lineEnd()
            } else {
                let segments = try key()
                try nesting(headerDepth + segments)
                skipBlank()
                guard at("=") else { throw fail("expected '=' after the key") }
                i += 1
                skipBlank()
                try value(depth: headerDepth + segments)
                try lineEnd()
            }
        }
    }

    private func nesting(_ depth: Int) throws(Failure) {
        guard depth <= DocumentLimits.maxDepth else { throw fail("nested deeper than \(DocumentLimits.maxDepth) levels (tables, dotted keys and arrays count)") }
    }

    private mutating func header() throws(Failure) {
        i += 1
        let isArray = at("[")
        if isArray { i += 1 }
        skipBlank()
        let segments = try key()
        skipBlank()
        guard at("]") else { throw fail("expected ']' to close the table header") }
        i += 1
        if isArray {
            guard at("]") else { throw fail("expected ']]' to close the array of tables header") }
            i += 1
        }
        headerDepth = segments + (isArray ? 1 : 0)
        try nesting(headerDepth)
    }

    /// A key, dotted or not; returns its number of segments.
    private mutating func key() throws(Failure) -> Int {
        var segments = 0
        while true {
            skipBlank()
            let start = i
            if at("\"") {
                try basicString(multiline: false)
            } else if at("'") {
                try literalString(multiline: false)
            } else {
                while i < b.count, isBareKeyByte(b[i]) { i += 1 }
                guard i > start else {
                    if !atEnd { try checkText(b[i]) }
                    throw fail(atEnd ? "expected a key" : "expected a key (letters, digits, '_' and '-', or a quoted key)")
                }
            }
            guard i - start <= DocumentLimits.maxKeyBytes + 2 else { throw fail("a key longer than \(DocumentLimits.maxKeyBytes) bytes", at: start) }
            segments += 1
            try nesting(segments)
            skipBlank()
            guard at(".") else { return segments }
            i += 1
        }
    }

    private func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
    }

    private enum Frame {
        case array(depth: Int, items: Int)
        case table(depth: Int)
    }

    /// One value at `depth`, containers included, without recursion.
    private mutating func value(depth: Int) throws(Failure) {
        var stack: [Frame] = []
        var expectValue = true
        var valueDepth = depth
        while true {
            if expectValue {
                if case .array = stack.last { try skipSpaceAndComments() }
                guard !atEnd else { throw fail("expected a value") }
                switch b[i] {
                case UInt8(ascii: "["):
                    try nesting(valueDepth + 1)
                    i += 1
                    stack.append(.array(depth: valueDepth + 1, items: 0))
                    try skipSpaceAndComments()
                    if at("]") {
                        i += 1
                        stack.removeLast()
                        expectValue = false
                    } else {
                        valueDepth += 1
                    }
                    continue
                case UInt8(ascii: "{"):
                    try nesting(valueDepth + 1)
                    i += 1
                    stack.append(.table(depth: valueDepth + 1))
                    skipBlank()
                    if at("}") {
                        i += 1
                        stack.removeLast()
                        expectValue = false
                        continue
                    }
                    valueDepth = try inlineKey(tableDepth: valueDepth + 1)
                    continue
                case UInt8(ascii: "\""): try basicString(multiline: startsTriple("\""))
                case UInt8(ascii: "'"): try literalString(multiline: startsTriple("'"))
                default: try bareValue()
                }
                expectValue = false
            }
            // A value ended: what contains it decides what comes next.
            guard let top = stack.last else { return }
            switch top {
            case .array(let d, let items):
                try skipSpaceAndComments()
                guard items + 1 <= DocumentLimits.maxItems else { throw fail("an array with more than \(DocumentLimits.maxItems) elements") }
                stack[stack.count - 1] = .array(depth: d, items: items + 1)
                if at(",") {
                    i += 1
                    try skipSpaceAndComments()
                    if at("]") {
                        i += 1
                        stack.removeLast()
                    } else {
                        valueDepth = d
                        expectValue = true
                    }
                } else if at("]") {
                    i += 1
                    stack.removeLast()
                } else {
                    throw fail("expected ',' or ']' in the array")
                }
            case .table(let d):
                skipBlank()
                if at(",") {
                    i += 1
                    valueDepth = try inlineKey(tableDepth: d)
                    expectValue = true
                } else if at("}") {
                    i += 1
                    stack.removeLast()
                } else {
                    throw fail("expected ',' or '}' in the inline table")
                }
            }
        }
    }

    /// `key =` inside an inline table; returns the depth of its value.
    private mutating func inlineKey(tableDepth: Int) throws(Failure) -> Int {
        let segments = try key()
        try nesting(tableDepth + segments)
        skipBlank()
        guard at("=") else { throw fail("expected '=' after the key") }
        i += 1
        skipBlank()
        return tableDepth + segments - 1
    }

    private func startsTriple(_ q: Unicode.Scalar) -> Bool {
        i + 2 < b.count && b[i + 1] == UInt8(ascii: q) && b[i + 2] == UInt8(ascii: q)
    }

    /// A number, boolean or date: up to the next delimiter.
    private mutating func bareValue() throws(Failure) {
        let start = i
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#") || c == 0x0a || c == 0x0d { break }
            try checkText(c)
            i += 1
        }
        // A date and time may hold one space; trailing blanks belong to the line.
        while i > start, b[i - 1] == 0x20 || b[i - 1] == 0x09 { i -= 1 }
        guard i > start else { throw fail("expected a value") }
        guard i - start <= 128 else { throw fail("a value longer than 128 characters (quote strings)", at: start) }
        try bareValueShape(b[start..<i], at: start)
    }

    /// Numbers, booleans, dates and times are ASCII without blanks, except
    /// the one space TOML allows between a date and its time. Anything else
    /// is refused here: toml++ 3.4 asserts (aborting the process, or
    /// undefined behaviour where assertions are off) on a date, a space and
    /// one digit before a terminator (`a = 1979-05-27 1`), and treats
    /// Unicode blanks as terminators in the same scan.
    private func bareValueShape(_ value: ArraySlice<UInt8>, at start: Int) throws(Failure) {
        let digit = { (c: UInt8) in c >= 0x30 && c <= 0x39 }
        var spaced = false
        for (k, c) in zip(value.indices, value) {
            if c >= 0x80 { throw fail("a non-ASCII character in a number, boolean or date (quote strings)", at: k) }
            guard c == 0x20 || c == 0x09 else { continue }
            // `YYYY-MM-DD HH:MM`: the blank is a space, ten characters in, with a time after it.
            let date = value[start..<k]
            let isDate =
                date.count == 10
                && zip(date.indices, date).allSatisfy { j, d in
                    let o = j - start
                    return o == 4 || o == 7 ? d == UInt8(ascii: "-") : digit(d)
                }
            let time = value[(k + 1)...].prefix(3)
            guard c == 0x20, !spaced, isDate, time.count == 3, digit(time[time.startIndex]), digit(time[time.startIndex + 1]), time.last == UInt8(ascii: ":") else {
                throw fail("unexpected text after the value (one key = value per line; a date and time take one space, as in 1979-05-27 07:32:00)", at: k)
            }
            spaced = true
        }
    }

    /// A string's raw length bounds its decoded length (escapes only shrink).
    private func checkLength(from start: Int) throws(Failure) {
        guard i - start <= DocumentLimits.maxStringBytes + 6 else { throw fail("a string longer than \(DocumentLimits.maxStringBytes) bytes", at: start) }
    }

    private mutating func basicString(multiline: Bool) throws(Failure) { try string(quote: UInt8(ascii: "\""), escapes: true, multiline: multiline) }

    private mutating func literalString(multiline: Bool) throws(Failure) { try string(quote: UInt8(ascii: "'"), escapes: false, multiline: multiline) }

    /// A string at `i`: basic ("…", with escapes) or literal ('…'), on one
    /// line or (tripled quotes) several.
    private mutating func string(quote: UInt8, escapes: Bool, multiline: Bool) throws(Failure) {
        let start = i
        i += multiline ? 3 : 1
        while true {
            guard i < b.count else { throw fail("unterminated string", at: start) }
            let c = b[i]
            if c == quote {
                if !multiline {
                    i += 1
                    return try checkLength(from: start)
                }
                // Up to two quotes of the content may come right before the closing three.
                var quotes = 0
                while i < b.count, b[i] == quote, quotes < 6 {
                    quotes += 1
                    i += 1
                }
                if quotes >= 3 {
                    guard quotes <= 5 else { throw fail("too many quotes closing a multi-line string") }
                    return try checkLength(from: start)
                }
                continue
            }
            if escapes && c == UInt8(ascii: "\\") {
                try escape(multiline: multiline)
                continue
            }
            if c == 0x0a || c == 0x0d {
                guard multiline else { throw fail("unterminated string (a line end inside a one-line string)", at: start) }
                if c == 0x0d {
                    guard i + 1 < b.count, b[i + 1] == 0x0a else { throw fail("a carriage return without a line feed") }
                    i += 1
                }
                i += 1
                continue
            }
            try checkText(c)
            i += 1
        }
    }

    /// An escape in a basic string; a NUL, however written, is refused.
    private mutating func escape(multiline: Bool) throws(Failure) {
        let start = i
        i += 1
        guard i < b.count else { throw fail("truncated escape") }
        let e = b[i]
        i += 1
        let digits: Int
        switch e {
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        case UInt8(ascii: "x"): digits = 2
        case UInt8(ascii: "b"), UInt8(ascii: "t"), UInt8(ascii: "n"), UInt8(ascii: "f"), UInt8(ascii: "r"), UInt8(ascii: "e"), UInt8(ascii: "\""), UInt8(ascii: "\\"):
            return
        case 0x20, 0x09, 0x0a, 0x0d:
            // A line-ending backslash: toml++ checks the rest of its form.
            guard multiline else { throw fail("an invalid escape", at: start) }
            i -= 1
            return
        default:
            throw fail("an invalid escape", at: start)
        }
        guard i + digits <= b.count else { throw fail("truncated escape", at: start) }
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let d = hexValue(b[i]) else { throw fail("an invalid escape", at: start) }
            value = value << 4 | d
            i += 1
        }
        if value == 0 { throw fail("a NUL character (\\u0000) in a string: no path, command, name or value may hold one", at: start) }
    }

    private func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }
}
