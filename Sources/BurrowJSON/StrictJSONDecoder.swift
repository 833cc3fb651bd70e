/// Why a document does not decode: where (`metadata.categories[2]`, empty
/// for the document itself) and what is wrong there.
package struct JSONDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    package var path: String
    package var message: String

    package init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    package var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A type made straight from a parsed value, without a Decoder's calls
/// (a generic JSON tree: probing it type by type through Codable costs a
/// thrown error per probe and node).
package protocol JSONTreeDecodable: Decodable {
    init(json: JSON, path: String) throws(JSONDecodeError)
}

/// Decodes a `Decodable` type from a caller's JSON, strictly: the text goes
/// through `JSONParser` (limits, duplicate keys refused), a field of the
/// wrong type is an error (no number for a string, no 1.5 for an integer,
/// no out-of-range integer), and a field the type does not read is an error
/// with the closest known name suggested, as the profile reader does for
/// TOML keys: a misspelt `rateLimits` must not register a tool without
/// limits. `null` reads as an absent optional field.
package struct StrictJSONDecoder: Sendable {
    package var limits: JSONLimits

    package init(limits: JSONLimits = .standard) {
        self.limits = limits
    }

    package func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(JSONDecodeError) -> T {
        try bytes.withUnsafeBytes { buffer in Result { () throws(JSONDecodeError) in try decode(type, from: buffer) } }.get()
    }

    package func decode<T: Decodable>(_ type: T.Type, from buffer: UnsafeRawBufferPointer) throws(JSONDecodeError) -> T {
        let value: JSON
        do {
            value = try JSONParser.parse(buffer, limits: limits)
        } catch {
            throw JSONDecodeError(path: "", message: "not valid JSON: \(error)")
        }
        return try decode(type, from: value)
    }

    /// Decodes an already parsed value (which was bounded when it was parsed).
    package func decode<T: Decodable>(_ type: T.Type, from value: JSON) throws(JSONDecodeError) -> T {
        let ledger = FieldLedger()
        let result: T
        do {
            result = try ValueDecoder(value: value, codingPath: [], ledger: ledger).make(T.self)
        } catch let error as JSONDecodeError {
            throw error
        } catch let error as DecodingError {
            throw JSONDecodeError(decoding: error)
        } catch {
            throw JSONDecodeError(path: "", message: "\(error)")
        }
        try ledger.checkAllRead()
        return result
    }
}

extension JSONDecodeError {
    /// A `DecodingError` a type's own `init(from:)` threw (an enum's unknown raw value, say).
    init(decoding error: DecodingError) {
        switch error {
        case .dataCorrupted(let c): self.init(path: renderPath(c.codingPath), message: c.debugDescription)
        case .keyNotFound(let key, let c): self.init(path: renderPath(c.codingPath), message: "missing field '\(key.stringValue)'")
        case .typeMismatch(let t, let c): self.init(path: renderPath(c.codingPath), message: "expected \(t): \(c.debugDescription)")
        case .valueNotFound(let t, let c): self.init(path: renderPath(c.codingPath), message: "expected \(t), found null")
        @unknown default: self.init(path: "", message: "\(error)")
        }
    }
}

/// `a.b[2].c`.
func renderPath(_ path: [any CodingKey]) -> String {
    var out = ""
    for key in path {
        if let i = key.intValue, key.stringValue.isEmpty || key.stringValue == "Index \(i)" {
            out += "[\(i)]"
        } else {
            out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return out
}

/// Which fields of each object the decoded type asked for. One decode runs
/// on one thread; the ledger lives only for that call.
final class FieldLedger {
    struct Entry {
        var members: [String: JSON]
        var asked: Set<String> = []
        /// A dictionary-like type read every key (`allKeys`).
        var all = false
    }
    private var objects: [String: Entry] = [:]

    func register(_ path: String, _ members: [String: JSON]) {
        if objects[path] == nil { objects[path] = Entry(members: members) }
    }

    func asked(_ path: String, _ key: String) { objects[path]?.asked.insert(key) }

    func readAll(_ path: String) { objects[path]?.all = true }

    /// The first field (by path) no type asked for.
    func checkAllRead() throws(JSONDecodeError) {
        for (path, entry) in objects.sorted(by: { $0.key < $1.key }) where !entry.all {
            guard let unknown = entry.members.keys.filter({ !entry.asked.contains($0) }).min() else { continue }
            let hint = closest(to: unknown, in: entry.asked).map { " (did you mean '\($0)'?)" } ?? ""
            let known = entry.asked.sorted().joined(separator: ", ")
            throw JSONDecodeError(
                path: path, message: "unknown field \(JSON.quote(String(unknown.prefix(80))))\(hint); known fields here: \(known.isEmpty ? "none" : known)")
        }
    }
}

private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "" }
    init(_ i: Int) { intValue = i }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

private struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private struct ValueDecoder: Decoder {
    let value: JSON
    let codingPath: [any CodingKey]
    let ledger: FieldLedger
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var path: String { renderPath(codingPath) }

    func fail(_ message: String) -> JSONDecodeError { JSONDecodeError(path: path, message: message) }

    func mismatch(_ expected: String) -> JSONDecodeError { fail("expected \(expected), found \(value.describedType)") }

    func child(_ value: JSON, _ key: any CodingKey) -> ValueDecoder { ValueDecoder(value: value, codingPath: codingPath + [key], ledger: ledger) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw mismatch("an object") }
        ledger.register(path, members)
        return KeyedDecodingContainer(Keyed<Key>(decoder: self, members: members))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return Unkeyed(decoder: self, items: items)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
}

extension ValueDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch("true or false") }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch("a string") }
        return s
    }

    func floating<F: BinaryFloatingPoint & LosslessStringConvertible>(_ type: F.Type) throws -> F {
        guard case .number(let n) = value else { throw mismatch("a number") }
        guard let v = F(n), v.isFinite else { throw fail("\(n) is out of range") }
        return v
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        guard case .number(let n) = value else { throw mismatch("an integer") }
        guard JSON.isIntegerText(n) else { throw fail("expected an integer, found \(n)") }
        guard let v = I(n) else { throw fail("\(n) is out of range (\(I.min) to \(I.max))") }
        return v
    }

    func decode(_ type: Double.Type) throws -> Double { try floating(type) }
    func decode(_ type: Float.Type) throws -> Float { try floating(type) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try make(type) }

    /// `T` from this value: directly when it is a JSON tree type, else through its `init(from:)`.
    func make<T: Decodable>(_ type: T.Type) throws -> T {
        if let tree = type as? any JSONTreeDecodable.Type, let value = try tree.init(json: value, path: path) as? T { return value }
        return try T(from: self)
    }
}

private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecoder
    let members: [String: JSON]

    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        decoder.ledger.readAll(decoder.path)
        return members.keys.compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        decoder.ledger.asked(decoder.path, key.stringValue)
        return members[key.stringValue] != nil
    }

    private func field(_ key: Key) throws -> ValueDecoder {
        decoder.ledger.asked(decoder.path, key.stringValue)
        guard let value = members[key.stringValue] else { throw decoder.fail("missing field '\(key.stringValue)'") }
        return decoder.child(value, key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try field(key).decodeNil() }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try field(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try field(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try field(key).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try field(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try field(key).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try field(key).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try field(key).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try field(key).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try field(key).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try field(key).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try field(key).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try field(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try field(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try field(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try field(key).make(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try field(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try field(key).unkeyedContainer() }

    func superDecoder() throws -> any Decoder {
        decoder.ledger.asked(decoder.path, "super")
        return decoder.child(members["super"] ?? .null, NameKey("super"))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder { try field(key) }
}

private struct Unkeyed: UnkeyedDecodingContainer {
    let decoder: ValueDecoder
    let items: [JSON]
    var currentIndex = 0

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else { throw decoder.fail("expected more than \(items.count) elements") }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], IndexKey(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next().decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next().decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().decode(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().make(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }

    mutating func superDecoder() throws -> any Decoder { try next() }
}
