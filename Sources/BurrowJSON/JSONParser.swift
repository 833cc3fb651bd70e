/// The bounds a document is read within, each checked before the parser
/// descends or allocates, and each named in the error that refuses it.
package struct JSONLimits: Sendable, Equatable {
    /// Arrays and objects inside one another.
    package var maxDepth: Int
    /// One object key, in bytes (UTF-8, after unescaping).
    package var maxKeyBytes: Int
    /// One string value, in bytes (UTF-8, after unescaping).
    package var maxStringBytes: Int
    /// Elements of one array or members of one object.
    package var maxItems: Int
    /// The whole document, in bytes.
    package var maxBytes: Int

    package init(maxDepth: Int = 64, maxKeyBytes: Int = 1024, maxStringBytes: Int = 1 << 20, maxItems: Int = 100_000, maxBytes: Int = 4 << 20) {
        self.maxDepth = maxDepth
        self.maxKeyBytes = maxKeyBytes
        self.maxStringBytes = maxStringBytes
        self.maxItems = maxItems
        self.maxBytes = maxBytes
    }

    /// The bounds of an API body, a profile document and an MCP message
    /// unless the caller says otherwise.
    package static let standard = JSONLimits()
}

/// Why a document is not acceptable JSON: what, and the byte offset where
/// the parser stopped.
package struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal: text that is not JSON at all is one thing; JSON
    /// that parsers could read differently (duplicate keys, bad UTF-8, a lone
    /// surrogate) or that breaks a bound is another.
    package enum Kind: Sendable, Equatable {
        case syntax
        case limit
        case duplicateKey
        case encoding
    }

    package var message: String
    /// Byte offset into the document.
    package var offset: Int
    package var kind: Kind

    package init(_ message: String, offset: Int, kind: Kind = .syntax) {
        self.message = message
        self.offset = offset
        self.kind = kind
    }

    package var description: String { "\(message) at byte \(offset)" }
}

/// A strict RFC 8259 parser for input from callers: one value with nothing
/// after it, UTF-8 validated, no duplicate object keys (parsers disagree on
/// which one wins, and Burrow must judge the very value the other side acts
/// on), and every `JSONLimits` bound checked before recursing or growing a
/// container. Recursion is as deep as the document's nesting, which is at
/// most `maxDepth`.
package struct JSONParser {
    /// Parses `bytes` as one JSON value.
    package static func parse(_ bytes: [UInt8], limits: JSONLimits = .standard) throws(JSONError) -> JSON {
        try bytes.withUnsafeBytes { buffer in Result { () throws(JSONError) in try parse(buffer, limits: limits) } }.get()
    }

    /// Parses the bytes of `text` as one JSON value.
    package static func parse(_ text: String, limits: JSONLimits = .standard) throws(JSONError) -> JSON {
        try parse(Array(text.utf8), limits: limits)
    }

    /// Parses the bytes at `buffer` (which must stay valid during the call).
    package static func parse(_ buffer: UnsafeRawBufferPointer, limits: JSONLimits = .standard) throws(JSONError) -> JSON {
        guard buffer.count <= limits.maxBytes else { throw JSONError("the document is \(buffer.count) bytes, more than the \(limits.maxBytes) allowed", offset: 0, kind: .limit) }
        var p = JSONParser(bytes: buffer.bindMemory(to: UInt8.self), limits: limits)
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == buffer.count else { throw p.error("unexpected text after the value") }
        return value
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private let limits: JSONLimits
    private var i = 0

    private init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    private func error(_ why: String, _ kind: JSONError.Kind = .syntax) -> JSONError { JSONError(why, offset: i, kind: kind) }

    private var atEnd: Bool { i >= bytes.count }

    private func peek(_ c: Unicode.Scalar) -> Bool { i < bytes.count && bytes[i] == UInt8(ascii: c) }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0a || bytes[i] == 0x0d { i += 1 }
    }

    private mutating func literal(_ text: StaticString, _ value: JSON) throws(JSONError) -> JSON {
        let n = text.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw error("truncated literal") }
        for k in 0..<n where bytes[i + k] != text.utf8Start[k] { throw error("invalid literal") }
        i += n
        return value
    }

    private mutating func value(depth: Int) throws(JSONError) -> JSON {
        guard !atEnd else { throw error("unexpected end of the document") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string(limit: limits.maxStringBytes, what: "a string"))
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("expected a value")
        }
    }

    private mutating func object(depth: Int) throws(JSONError) -> JSON {
        guard depth <= limits.maxDepth else { throw error("nested deeper than \(limits.maxDepth) levels", .limit) }
        i += 1
        var members: [String: JSON] = [:]
        skipSpace()
        if peek("}") {
            i += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard peek("\"") else { throw error("expected a key (a string)") }
            let keyAt = i
            let key = try string(limit: limits.maxKeyBytes, what: "a key")
            skipSpace()
            guard peek(":") else { throw error("expected ':'") }
            i += 1
            skipSpace()
            let v = try value(depth: depth)
            guard members.updateValue(v, forKey: key) == nil else { throw JSONError("duplicate key \(JSON.quote(key))", offset: keyAt, kind: .duplicateKey) }
            guard members.count <= limits.maxItems else { throw error("an object with more than \(limits.maxItems) members", .limit) }
            skipSpace()
            if peek(",") {
                i += 1
                continue
            }
            guard peek("}") else { throw error(atEnd ? "unexpected end of the document" : "expected ',' or '}'") }
            i += 1
            return .object(members)
        }
    }

    private mutating func array(depth: Int) throws(JSONError) -> JSON {
        guard depth <= limits.maxDepth else { throw error("nested deeper than \(limits.maxDepth) levels", .limit) }
        i += 1
        var items: [JSON] = []
        skipSpace()
        if peek("]") {
            i += 1
            return .array(items)
        }
        while true {
            skipSpace()
            guard items.count < limits.maxItems else { throw error("an array with more than \(limits.maxItems) elements", .limit) }
            items.append(try value(depth: depth))
            skipSpace()
            if peek(",") {
                i += 1
                continue
            }
            guard peek("]") else { throw error(atEnd ? "unexpected end of the document" : "expected ',' or ']'") }
            i += 1
            return .array(items)
        }
    }

    private mutating func number() throws(JSONError) -> JSON {
        let start = i
        if peek("-") { i += 1 }
        let intStart = i
        guard digits() > 0 else { throw error("invalid number") }
        if bytes[intStart] == 0x30, i - intStart > 1 { throw JSONError("a number with a leading zero", offset: intStart) }
        if peek(".") {
            i += 1
            guard digits() > 0 else { throw error("invalid fraction") }
        }
        if peek("e") || peek("E") {
            i += 1
            if peek("+") || peek("-") { i += 1 }
            guard digits() > 0 else { throw error("invalid exponent") }
        }
        // Numbers are kept as written; a 1 MiB run of digits is no number anyone sends.
        guard i - start <= 512 else { throw JSONError("a number longer than 512 characters", offset: start, kind: .limit) }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
    }

    private mutating func digits() -> Int {
        let s = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        return i - s
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// A string at `i` (its opening quote), at most `limit` bytes once unescaped.
    private mutating func string(limit: Int, what: String) throws(JSONError) -> String {
        let opening = i
        i += 1
        var out: [UInt8] = []
        var start = i
        func tooLong() -> JSONError { JSONError("\(what) longer than \(limit) bytes", offset: opening, kind: .limit) }
        while true {
            guard i < bytes.count else { throw JSONError("unterminated string", offset: opening) }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                guard out.count + (i - start) <= limit else { throw tooLong() }
                out += UnsafeBufferPointer(rebasing: bytes[start..<i])
                i += 1
                break
            }
            if b < 0x20 { throw error("a control character in a string (escape it)") }
            if b != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            guard out.count + (i - start) <= limit else { throw tooLong() }
            out += UnsafeBufferPointer(rebasing: bytes[start..<i])
            i += 1
            guard i < bytes.count else { throw error("truncated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw error("a lone surrogate in a \\u escape", .encoding) }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("a lone surrogate in a \\u escape", .encoding) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("a lone surrogate in a \\u escape", .encoding)
                }
                guard let s = Unicode.Scalar(scalar) else { throw error("an invalid code point") }
                out.append(contentsOf: String(s).utf8)
            default: throw error("an invalid escape")
            }
            start = i
        }
        guard out.count <= limit else { throw tooLong() }
        guard let text = String(validating: out, as: UTF8.self) else { throw JSONError("invalid UTF-8 in a string", offset: opening, kind: .encoding) }
        return text
    }
}
