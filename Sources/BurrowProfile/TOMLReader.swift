/// Reads a TOML 1.0 document into a `ConfigValue`, within `DocumentLimits`.
///
/// Profiles and requests to burrowd are hostile input, so this reader is
/// written to be bounded: one pass over the bytes, recursion only into
/// arrays and inline tables and never deeper than `DocumentLimits.maxDepth`
/// (tables, dotted keys and arrays count), every string, key, array and the
/// document itself within its limit, and no NUL however it is written (a
/// path cut at a NUL would name another file). Errors name the line and
/// column (in characters, counted from 1).
///
/// It replaced TOMLKit (toml++ 3.4), which leaked every parsed document (its
/// table wrapper never frees the C++ table: about 700 bytes for a two-line
/// document, per parse, in a daemon that parses profiles on requests), and
/// asserted (aborting the process) on `a = 1979-05-27 1`.
///
/// What TOML allows and a profile never needs is still read correctly (dates
/// and times are kept as their text, `.date`); what it forbids is refused:
/// redefined keys and tables, a dotted key or header reaching into an inline
/// table or a static array, leading zeros, stray underscores, integers out
/// of range, invalid dates, escapes other than TOML 1.0's.
struct TOMLReader {
    struct Failure: Error, Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    static func parse(_ text: String) throws(Failure) -> ConfigValue {
        var reader = TOMLReader(Array(text.utf8))
        return try reader.document()
    }

    /// A table while the document is read: how it came to be decides what
    /// may still add to it.
    private final class Table {
        enum Origin {
            /// A parent named by a header (`[a.b]` makes `a`): a header may still define it.
            case implicit
            /// Defined by its own header.
            case header
            /// Made by a dotted key (`a.b = 1` makes `a`): only dotted keys of its section add to it.
            case dotted
        }

        var origin: Origin
        var entries: [String: Node] = [:]

        init(_ origin: Origin) { self.origin = origin }

        var value: ConfigValue {
            .table(
                entries.mapValues { node in
                    switch node {
                    case .value(let v): v
                    case .table(let t): t.value
                    case .tables(let array): .array(array.tables.map(\.value))
                    }
                })
        }
    }

    /// An array of tables (`[[a]]`), appended to in place.
    private final class TableArray {
        var tables: [Table]
        init(_ first: Table) { tables = [first] }
    }

    private enum Node {
        /// A finished value: inline tables and arrays cannot be added to.
        case value(ConfigValue)
        case table(Table)
        case tables(TableArray)
    }

    private let b: [UInt8]
    private var i = 0
    private let root = Table(.header)
    private var current: Table
    /// Key segments of the current [table] or [[array]] header (an array of tables counts one more).
    private var headerDepth = 0

    private init(_ bytes: [UInt8]) {
        b = bytes
        current = root
    }

    // MARK: errors and positions

    private func fail(_ message: String, at offset: Int? = nil) -> Failure {
        let at = min(offset ?? i, b.count)
        var line = 1
        var lineStart = 0
        for k in 0..<at where b[k] == 0x0a {
            line += 1
            lineStart = k + 1
        }
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

    private func nesting(_ depth: Int) throws(Failure) {
        guard depth <= DocumentLimits.maxDepth else { throw fail("nested deeper than \(DocumentLimits.maxDepth) levels (tables, dotted keys and arrays count)") }
    }

    // MARK: blanks, comments, line ends

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
        if at("\r") {
            i += 1
            guard at("\n") else { throw fail("a carriage return without a line feed") }
        }
        guard at("\n") else { throw fail("unexpected text after the value (one key = value per line)") }
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
            } else if at("\r") {
                throw fail("a carriage return without a line feed")
            } else {
                return
            }
        }
    }

    // MARK: document, headers, key/value pairs

    private mutating func document() throws(Failure) -> ConfigValue {
        guard b.count <= DocumentLimits.maxBytes else {
            throw Failure(line: 1, column: 1, message: "the document is \(b.count) bytes, more than the \(DocumentLimits.maxBytes) allowed")
        }
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }  // a UTF-8 byte order mark
        while true {
            skipBlank()
            if atEnd { return root.value }
            if at("#") || at("\r") || at("\n") {
                try lineEnd()
            } else if at("[") {
                try header()
                try lineEnd()
            } else {
                try keyValue(into: current, depth: headerDepth)
                try lineEnd()
            }
        }
    }

    private static func name(_ keys: [String]) -> String { keys.map { $0.isEmpty ? "\"\"" : $0 }.joined(separator: ".") }

    private mutating func header() throws(Failure) {
        let start = i
        i += 1
        let isArray = at("[")
        if isArray { i += 1 }
        skipBlank()
        let keys = try key()
        skipBlank()
        guard at("]") else { throw fail("expected ']' to close the table header") }
        i += 1
        if isArray {
            guard at("]") else { throw fail("expected ']]' to close the array of tables header") }
            i += 1
        }
        // An array of tables is two levels (the array, its table), on the way or at the end.
        var depth = keys.count + (isArray ? 1 : 0)
        try nesting(depth)
        var table = root
        for (n, k) in keys.dropLast().enumerated() {
            switch table.entries[k] {
            case nil:
                let made = Table(.implicit)
                table.entries[k] = .table(made)
                table = made
            case .table(let t): table = t
            case .tables(let array):
                depth += 1
                try nesting(depth)
                table = array.tables[array.tables.count - 1]
            case .value:
                throw fail("'\(Self.name(Array(keys[...n])))' is already a value, so [\(Self.name(keys))] cannot be a table inside it", at: start)
            }
        }
        headerDepth = depth
        let last = keys[keys.count - 1]
        let made = Table(.header)
        if isArray {
            switch table.entries[last] {
            case nil: table.entries[last] = .tables(TableArray(made))
            case .tables(let array):
                guard array.tables.count < DocumentLimits.maxItems else { throw fail("an array with more than \(DocumentLimits.maxItems) elements", at: start) }
                array.tables.append(made)
            case .table, .value:
                throw fail("[[\(Self.name(keys))]]: '\(Self.name(keys))' is already defined, and not as an array of tables", at: start)
            }
            current = made
            return
        }
        switch table.entries[last] {
        case nil:
            table.entries[last] = .table(made)
            current = made
        case .table(let t) where t.origin == .implicit:
            t.origin = .header
            current = t
        case .table(let t):
            throw fail(
                t.origin == .dotted ? "[\(Self.name(keys))]: the table was already defined by dotted keys" : "table [\(Self.name(keys))] is defined twice", at: start)
        case .tables:
            throw fail("[\(Self.name(keys))] is an array of tables: add to it with [[\(Self.name(keys))]]", at: start)
        case .value:
            throw fail("'\(Self.name(keys))' is already a value, so [\(Self.name(keys))] cannot define it as a table", at: start)
        }
    }

    /// `key = value` into `table`, whose key path is `depth` segments deep.
    private mutating func keyValue(into table: Table, depth: Int) throws(Failure) {
        let start = i
        let keys = try key()
        try nesting(depth + keys.count)
        skipBlank()
        guard at("=") else { throw fail(atEnd || at("\n") || at("\r") ? "expected '=' after the key" : "expected '=' after the key (quote a key with other characters)") }
        i += 1
        skipBlank()
        let value = try value(depth: depth + keys.count)
        var target = table
        for (n, k) in keys.dropLast().enumerated() {
            switch target.entries[k] {
            case nil:
                let made = Table(.dotted)
                target.entries[k] = .table(made)
                target = made
            case .table(let t) where t.origin == .dotted || t.origin == .implicit:
                // A header's parent no header defined yet: dotted keys may add to it, and then no header may.
                t.origin = .dotted
                target = t
            default:
                throw fail("'\(Self.name(Array(keys[...n])))' is already defined, so the dotted key \(Self.name(keys)) cannot add to it", at: start)
            }
        }
        let last = keys[keys.count - 1]
        guard target.entries[last] == nil else { throw fail("'\(Self.name(keys))' is defined twice", at: start) }
        target.entries[last] = .value(value)
    }

    /// A key, dotted or not: its segments.
    private mutating func key() throws(Failure) -> [String] {
        var segments: [String] = []
        while true {
            skipBlank()
            let start = i
            let segment: String
            if at("\"") {
                if startsTriple("\"") { throw fail("a multi-line string cannot be a key") }
                segment = try basicString(multiline: false)
            } else if at("'") {
                if startsTriple("'") { throw fail("a multi-line string cannot be a key") }
                segment = try literalString(multiline: false)
            } else {
                while i < b.count, isBareKeyByte(b[i]) { i += 1 }
                guard i > start else {
                    if !atEnd { try checkText(b[i]) }
                    throw fail(atEnd ? "expected a key" : "expected a key (letters, digits, '_' and '-', or a quoted key)")
                }
                segment = String(decoding: b[start..<i], as: UTF8.self)
            }
            guard i - start <= DocumentLimits.maxKeyBytes + 2 else { throw fail("a key longer than \(DocumentLimits.maxKeyBytes) bytes", at: start) }
            segments.append(segment)
            try nesting(segments.count)
            skipBlank()
            guard at(".") else { return segments }
            i += 1
        }
    }

    private func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
    }

    // MARK: values

    /// One value whose key path is `depth` deep; arrays and inline tables
    /// recurse, each level checked against the depth limit first.
    private mutating func value(depth: Int) throws(Failure) -> ConfigValue {
        guard !atEnd else { throw fail("expected a value") }
        switch b[i] {
        case UInt8(ascii: "["):
            try nesting(depth + 1)
            i += 1
            var items: [ConfigValue] = []
            while true {
                try skipSpaceAndComments()
                if at("]") {
                    i += 1
                    return .array(items)
                }
                guard items.count < DocumentLimits.maxItems else { throw fail("an array with more than \(DocumentLimits.maxItems) elements") }
                items.append(try value(depth: depth + 1))
                try skipSpaceAndComments()
                if at(",") {
                    i += 1
                } else if !at("]") {
                    throw fail("expected ',' or ']' in the array")
                }
            }
        case UInt8(ascii: "{"):
            try nesting(depth + 1)
            i += 1
            let table = Table(.dotted)
            skipBlank()
            if at("}") {
                i += 1
                return table.value
            }
            while true {
                // An inline table's keys are one level in; a dotted key adds its own.
                try keyValue(into: table, depth: depth)
                skipBlank()
                if at("}") {
                    i += 1
                    return table.value
                }
                guard at(",") else { throw fail("expected ',' or '}' in the inline table (which stays on one line)") }
                i += 1
                skipBlank()
                if at("}") { throw fail("a comma before '}' (an inline table takes none)") }
            }
        case UInt8(ascii: "\""): return .string(try basicString(multiline: startsTriple("\"")))
        case UInt8(ascii: "'"): return .string(try literalString(multiline: startsTriple("'")))
        default: return try bareValue()
        }
    }

    private func startsTriple(_ q: Unicode.Scalar) -> Bool {
        i + 2 < b.count && b[i] == UInt8(ascii: q) && b[i + 1] == UInt8(ascii: q) && b[i + 2] == UInt8(ascii: q)
    }

    // MARK: strings

    private mutating func basicString(multiline: Bool) throws(Failure) -> String { try string(quote: UInt8(ascii: "\""), escapes: true, multiline: multiline) }

    private mutating func literalString(multiline: Bool) throws(Failure) -> String { try string(quote: UInt8(ascii: "'"), escapes: false, multiline: multiline) }

    /// A string at `i`: basic ("…", with escapes) or literal ('…'), on one
    /// line or (tripled quotes) several, a newline right after the opening
    /// quotes dropped.
    private mutating func string(quote: UInt8, escapes: Bool, multiline: Bool) throws(Failure) -> String {
        let start = i
        i += multiline ? 3 : 1
        var out: [UInt8] = []
        if multiline {
            if at("\n") {
                i += 1
            } else if at("\r") && i + 1 < b.count && b[i + 1] == 0x0a {
                i += 2
            }
        }
        while true {
            guard i < b.count else { throw fail("unterminated string", at: start) }
            let c = b[i]
            if c == quote {
                if !multiline {
                    i += 1
                    return try finish(out, from: start)
                }
                // Up to two quotes of the content may come right before the closing three.
                var quotes = 0
                while i < b.count, b[i] == quote, quotes < 6 {
                    quotes += 1
                    i += 1
                }
                if quotes >= 3 {
                    guard quotes <= 5 else { throw fail("too many quotes closing a multi-line string") }
                    out += repeatElement(quote, count: quotes - 3)
                    return try finish(out, from: start)
                }
                out += repeatElement(quote, count: quotes)
                continue
            }
            if escapes && c == UInt8(ascii: "\\") {
                try escape(into: &out, multiline: multiline)
                continue
            }
            if c == 0x0a || c == 0x0d {
                guard multiline else { throw fail("unterminated string (a line end inside a one-line string)", at: start) }
                if c == 0x0d {
                    guard i + 1 < b.count, b[i + 1] == 0x0a else { throw fail("a carriage return without a line feed") }
                    i += 1
                }
                out.append(0x0a)
                i += 1
                continue
            }
            try checkText(c)
            out.append(c)
            i += 1
        }
    }

    private func finish(_ bytes: [UInt8], from start: Int) throws(Failure) -> String {
        guard bytes.count <= DocumentLimits.maxStringBytes else { throw fail("a string longer than \(DocumentLimits.maxStringBytes) bytes", at: start) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// An escape in a basic string; a NUL, however written, is refused.
    private mutating func escape(into out: inout [UInt8], multiline: Bool) throws(Failure) {
        let start = i
        i += 1
        guard i < b.count else { throw fail("truncated escape", at: start) }
        let e = b[i]
        i += 1
        let digits: Int
        switch e {
        case UInt8(ascii: "b"): return out.append(0x08)
        case UInt8(ascii: "t"): return out.append(0x09)
        case UInt8(ascii: "n"): return out.append(0x0a)
        case UInt8(ascii: "f"): return out.append(0x0c)
        case UInt8(ascii: "r"): return out.append(0x0d)
        case UInt8(ascii: "\""): return out.append(0x22)
        case UInt8(ascii: "\\"): return out.append(0x5c)
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        case 0x20, 0x09, 0x0a, 0x0d:
            // A line-ending backslash: blanks up to the line end, then every
            // blank and line end up to the next text, are dropped.
            guard multiline else { throw fail("an invalid escape", at: start) }
            i -= 1
            skipBlank()
            guard at("\n") || (at("\r") && i + 1 < b.count && b[i + 1] == 0x0a) else { throw fail("an invalid escape (only blanks may follow a line-ending backslash)", at: start) }
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0a || (b[i] == 0x0d && i + 1 < b.count && b[i + 1] == 0x0a) { i += 1 }
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
        guard let scalar = Unicode.Scalar(value) else { throw fail("an escape that names no Unicode scalar value", at: start) }
        out += Array(String(Character(scalar)).utf8)
    }

    private func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }

    // MARK: numbers, booleans, dates and times

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// A number, boolean, date or time: ASCII up to a blank or a delimiter,
    /// except the one space TOML allows between a date and its time.
    private mutating func bareValue() throws(Failure) -> ConfigValue {
        let start = i
        func ends(_ c: UInt8) -> Bool {
            c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}")
                || c == UInt8(ascii: "#")
        }
        while i < b.count, !ends(b[i]) {
            if b[i] >= 0x80 { throw fail("a non-ASCII character in a number, boolean or date (quote strings)") }
            try checkText(b[i])
            i += 1
            // `1979-05-27 07:32:00`: a date, one space, a time.
            if i - start == 10, i + 3 < b.count, b[i] == 0x20, Self.isDigit(b[i + 1]), Self.isDigit(b[i + 2]), b[i + 3] == UInt8(ascii: ":"),
                Self.isDate(b[start..<i])
            {
                i += 1
            }
        }
        guard i > start else { throw fail("expected a value") }
        guard i - start <= 128 else { throw fail("a value longer than 128 characters (quote strings)", at: start) }
        let token = Array(b[start..<i])
        let text = String(decoding: token, as: UTF8.self)
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        // `HH:` or `YYYY-` (a float such as 100e-100 has a '-' at 4 too, after a letter).
        if token.count >= 8,
            (token[0..<2].allSatisfy(Self.isDigit) && token[2] == UInt8(ascii: ":")) || (token[0..<4].allSatisfy(Self.isDigit) && token[4] == UInt8(ascii: "-"))
        {
            guard Self.isDateTime(token) else { throw fail("'\(text)' is not a valid date or time (YYYY-MM-DD, HH:MM:SS, or both)", at: start) }
            return .date(text)
        }
        if let integer = try integer(token, text: text, at: start) { return .integer(integer) }
        if let float = Self.float(token) {
            guard float.isFinite else { throw fail("'\(text)' is out of range for a 64-bit float", at: start) }
            return .float(float)
        }
        throw fail("'\(text)' is not a value (quote strings; numbers, true, false, dates and times go bare)", at: start)
    }

    /// An integer: decimal (signed, no leading zero), or 0x, 0o, 0b; `_`
    /// only between digits. Nil when the token is not one (it may be a float).
    private func integer(_ t: [UInt8], text: String, at start: Int) throws(Failure) -> Int? {
        var radix = 10
        var digits = t[...]
        if t.count > 2, t[0] == UInt8(ascii: "0"), let r = [UInt8(ascii: "x"): 16, UInt8(ascii: "o"): 8, UInt8(ascii: "b"): 2][t[1]] {
            radix = r
            digits = t[2...]
        } else {
            if let first = digits.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { digits = digits.dropFirst() }
            guard let first = digits.first, Self.isDigit(first) else { return nil }
            if first == UInt8(ascii: "0") && digits.count > 1 {
                guard digits.allSatisfy({ Self.isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
                throw fail("'\(text)': a leading zero (TOML allows none in decimal integers)", at: start)
            }
        }
        guard Self.underscoresBetweenDigits(digits, radix: radix) else { return nil }
        let plain = String(decoding: t.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        let body = radix == 10 ? plain : String(plain.dropFirst(2))
        guard let value = Int(body, radix: radix) else { throw fail("'\(text)' is out of range for a 64-bit integer", at: start) }
        return value
    }

    /// Digits of `radix`, each `_` between two of them; at least one digit.
    private static func underscoresBetweenDigits(_ s: ArraySlice<UInt8>, radix: Int) -> Bool {
        func isDigit(_ c: UInt8) -> Bool {
            switch radix {
            case 16: (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
            case 8: c >= 0x30 && c <= 0x37
            case 2: c == 0x30 || c == 0x31
            default: c >= 0x30 && c <= 0x39
            }
        }
        guard let first = s.first, let last = s.last, isDigit(first), isDigit(last) else { return false }
        var previous = first
        for c in s.dropFirst() {
            if c == UInt8(ascii: "_") {
                guard previous != UInt8(ascii: "_") else { return false }
            } else if !isDigit(c) {
                return false
            }
            previous = c
        }
        return true
    }

    /// A float: a decimal integer part, then a fraction, an exponent or both.
    private static func float(_ t: [UInt8]) -> Double? {
        var rest = t[...]
        if let first = rest.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { rest = rest.dropFirst() }
        let dot = rest.firstIndex(of: UInt8(ascii: "."))
        let exponent = rest.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        guard dot != nil || exponent != nil else { return nil }
        let integerEnd = dot ?? exponent ?? rest.endIndex
        let integerPart = rest[rest.startIndex..<integerEnd]
        guard underscoresBetweenDigits(integerPart, radix: 10) else { return nil }
        if integerPart.count > 1 && integerPart.first == UInt8(ascii: "0") { return nil }
        if let dot {
            let fractionEnd = exponent ?? rest.endIndex
            guard dot < fractionEnd, underscoresBetweenDigits(rest[(dot + 1)..<fractionEnd], radix: 10) else { return nil }
        }
        if let exponent {
            guard dot.map({ $0 < exponent }) ?? true else { return nil }
            var power = rest[(exponent + 1)...]
            if let sign = power.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { power = power.dropFirst() }
            guard underscoresBetweenDigits(power, radix: 10) else { return nil }
        }
        return Double(String(decoding: t.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self))
    }

    /// `YYYY-MM-DD` with a day the month has.
    private static func isDate(_ d: ArraySlice<UInt8>) -> Bool {
        let s = Array(d)
        guard s.count == 10, s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"), let year = number(s[0..<4]), let month = number(s[5..<7]),
            let day = number(s[8..<10])
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains(month) && day >= 1 && day <= days[month - 1]
    }

    /// `HH:MM:SS` with an optional fraction.
    private static func isTime(_ t: ArraySlice<UInt8>) -> Bool {
        let s = Array(t)
        guard s.count >= 8, s[2] == UInt8(ascii: ":"), s[5] == UInt8(ascii: ":"), let h = number(s[0..<2]), let m = number(s[3..<5]), let sec = number(s[6..<8]),
            h < 24, m < 60, sec <= 60
        else { return false }
        if s.count == 8 { return true }
        return s[8] == UInt8(ascii: ".") && s.count > 9 && s[9...].allSatisfy(isDigit)
    }

    /// A date, a time, or a date and a time (`T`, `t` or a space between) with
    /// an optional offset (`Z` or `±HH:MM`).
    private static func isDateTime(_ t: [UInt8]) -> Bool {
        if t.count >= 8, t[2] == UInt8(ascii: ":") { return isTime(t[...]) }
        guard isDate(t[0..<min(10, t.count)]) else { return false }
        if t.count == 10 { return true }
        guard [UInt8(ascii: "T"), UInt8(ascii: "t"), 0x20].contains(t[10]) else { return false }
        var time = t[11...]
        if let last = time.last, last == UInt8(ascii: "Z") || last == UInt8(ascii: "z") {
            time = time.dropLast()
        } else if time.count >= 14, let sign = time.dropLast(5).last, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            let offset = Array(time.suffix(5))
            guard offset[2] == UInt8(ascii: ":"), let h = number(offset[0..<2]), let m = number(offset[3..<5]), h < 24, m < 60 else { return false }
            time = time.dropLast(6)
        }
        return isTime(time)
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}
