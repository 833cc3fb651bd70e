import BurrowJSON

extension TableReader {
    /// A string naming a case of `E` (its raw value); lists the choices when wrong.
    mutating func enumValue<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) -> E?
    where E.RawValue == String {
        guard let text = string(key) else { return nil }
        guard let value = E(rawValue: text) else {
            let choices = E.allCases.map(\.rawValue).joined(separator: ", ")
            let hint = closest(to: text, in: E.allCases.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
            log.error(keyPath(key), "unknown value '\(text)'\(hint); expected one of: \(choices)")
            return nil
        }
        return value
    }

    /// An integer greater than zero.
    mutating func positive(_ key: String) -> Int? {
        guard let v = integer(key) else { return nil }
        guard v > 0 else {
            log.error(keyPath(key), "must be greater than zero (found \(v))")
            return nil
        }
        return v
    }

    /// `512M`-style text or an integer of bytes, greater than zero.
    mutating func size(_ key: String) -> ByteSize? {
        guard let v = value(key) else { return nil }
        let parsed: ByteSize?
        switch v {
        case .string(let s): parsed = ByteSize(parsing: s)
        case .integer(let i) where i >= 0: parsed = ByteSize(bytes: UInt64(i))
        default: parsed = nil
        }
        guard let size = parsed else {
            log.error(keyPath(key), "expected a size such as \"512M\", \"2G\" or \"64K\", found \(v.display)")
            return nil
        }
        guard size.bytes > 0 else {
            log.error(keyPath(key), "must be greater than zero")
            return nil
        }
        return size
    }

    /// `30s`-style text or an integer of seconds, greater than zero.
    mutating func duration(_ key: String) -> Seconds? {
        guard let v = value(key) else { return nil }
        let parsed: Seconds?
        switch v {
        case .string(let s): parsed = Seconds(parsing: s)
        case .integer(let i) where i >= 0: parsed = .seconds(UInt64(i))
        default: parsed = nil
        }
        guard let duration = parsed else {
            log.error(keyPath(key), "expected a duration such as \"30s\", \"5m\", \"1h\" or \"250ms\", found \(v.display)")
            return nil
        }
        guard duration.milliseconds > 0 else {
            log.error(keyPath(key), "must be greater than zero")
            return nil
        }
        return duration
    }

    /// An array of strings, each parsed by `parse`; refused items are reported
    /// and dropped, exact duplicates are reported once. A list longer than
    /// `limit` is refused whole.
    mutating func list<T: Hashable>(_ key: String, limit: Int = DocumentLimits.maxListEntries, _ parse: (String) -> Result<T, PatternError>) -> [(T, String)]? {
        guard let items = strings(key) else { return nil }
        guard items.count <= limit else {
            log.error(keyPath(key), "\(items.count) entries, more than the \(limit) a profile may list here")
            return nil
        }
        var out: [(T, String)] = []
        var firstSeen: [T: String] = [:]
        for (text, path) in items {
            switch parse(text) {
            case .failure(let e):
                log.error(path, e.message)
            case .success(let v):
                if let earlier = firstSeen[v] {
                    log.error(path, "duplicate grant '\(text)' (already at \(earlier))")
                } else {
                    firstSeen[v] = path
                    out.append((v, path))
                }
            }
        }
        return out
    }
}

extension ConfigValue {
    /// A short rendering for messages.
    var display: String {
        switch self {
        case .string(let s): s.count > 80 ? "\"\(s.prefix(80))…\" (\(s.utf8.count) bytes)" : "\"\(s)\""
        case .integer(let i): "\(i)"
        case .float(let d): "\(d)"
        case .bool(let b): "\(b)"
        case .date(let d): d
        case .array, .table: typeName
        }
    }
}
