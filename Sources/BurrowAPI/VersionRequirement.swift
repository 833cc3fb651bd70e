/// Orders versions the way people read them: dot- and dash-separated parts,
/// numbers numerically ("1.10" > "1.9"), others as text.
package enum VersionOrder {
    package static func less(_ a: String, _ b: String) -> Bool {
        let pa = a.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" })
        let pb = b.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" })
        for (x, y) in zip(pa, pb) where x != y {
            if let nx = Int(x), let ny = Int(y) { return nx < ny }
            return x < y
        }
        return pa.count < pb.count
    }
}

/// A dependency's version requirement, the semver range forms: `*` (any),
/// a version (that one), comparators `>=1.2`, `>1`, `<2.0.0`, `<=1.4`,
/// `=1.0.0`, `^1.2.3` (same major; same minor when the major is 0), `~1.2.3`
/// (same minor), several separated by spaces (all must hold), and
/// alternatives separated by `||`. Versions compare as `VersionOrder` does.
package struct VersionRequirement: Sendable, Equatable, CustomStringConvertible {
    struct Comparator: Sendable, Equatable {
        enum Op: String, Sendable {
            case eq = "="
            case gt = ">"
            case ge = ">="
            case lt = "<"
            case le = "<="
        }
        var op: Op
        var version: String

        func holds(_ v: String) -> Bool {
            switch op {
            case .eq: !VersionOrder.less(v, version) && !VersionOrder.less(version, v)
            case .gt: VersionOrder.less(version, v)
            case .ge: !VersionOrder.less(v, version)
            case .lt: VersionOrder.less(v, version)
            case .le: !VersionOrder.less(version, v)
            }
        }
    }

    /// Alternatives, each a conjunction of comparators (an empty one: any version).
    let alternatives: [[Comparator]]
    package let description: String

    /// Nil unless `text` is a requirement.
    package init?(_ text: String) {
        let trimmed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        guard !trimmed.isEmpty, trimmed.utf8.count <= 256 else { return nil }
        var alternatives: [[Comparator]] = []
        for alternative in trimmed.split(separator: "||", omittingEmptySubsequences: false) {
            var all: [Comparator] = []
            let words = alternative.split(separator: " ")
            guard !words.isEmpty else { return nil }
            for word in words {
                guard let comparators = Self.comparators(String(word)) else { return nil }
                all += comparators
            }
            alternatives.append(all)
        }
        self.alternatives = alternatives
        description = trimmed
    }

    /// Whether `version` satisfies it.
    package func satisfied(by version: String) -> Bool {
        alternatives.contains { $0.allSatisfy { $0.holds(version) } }
    }

    private static func comparators(_ word: String) -> [Comparator]? {
        if word == "*" || word == "x" { return [] }
        for (prefix, op) in [(">=", Comparator.Op.ge), ("<=", .le), (">", .gt), ("<", .lt), ("=", .eq)] where word.hasPrefix(prefix) {
            let version = String(word.dropFirst(prefix.count))
            return isVersion(version) ? [Comparator(op: op, version: version)] : nil
        }
        if word.hasPrefix("^") || word.hasPrefix("~") {
            let version = String(word.dropFirst())
            // Parts of at most 9 digits: the bound above is one more, and never overflows.
            let parts = version.split(separator: ".").map { $0.count <= 9 ? Int($0) : nil }
            guard isVersion(version), !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
            let numbers = parts.compactMap { $0 }
            let upper: String
            if word.hasPrefix("~") {
                upper = numbers.count >= 2 ? "\(numbers[0]).\(numbers[1] + 1)" : "\(numbers[0] + 1)"
            } else if numbers[0] > 0 || numbers.count == 1 {
                upper = "\(numbers[0] + 1)"
            } else {
                upper = numbers.count >= 3 && numbers[1] == 0 ? "0.0.\(numbers[2] + 1)" : "0.\(numbers.count >= 2 ? numbers[1] + 1 : 1)"
            }
            return [Comparator(op: .ge, version: version), Comparator(op: .lt, version: upper)]
        }
        return isVersion(word) ? [Comparator(op: .eq, version: word)] : nil
    }

    /// A version as registrations write them: 1 to 128 letters, digits, '.', '_', '-', starting with a digit.
    private static func isVersion(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, (48...57).contains(first.value), text.utf8.count <= 128 else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0)) }
    }
}
