package import BurrowJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Keeps secrets out of the audit database. Every string in an event's
/// details passes through it before the event is hashed and stored:
/// - matches of the secret patterns (built-in and the host policy's
///   `[audit] redact`) are replaced by `[REDACTED]`: only the last capture
///   group that took part in the match when the pattern has groups, else the whole match;
/// - in a list of strings (an argv), the element after a secret-naming
///   flag (`--password`, `-token`, `--api-key` …) is replaced whole;
/// - literal values (the environment a tool receives) are replaced wherever they occur;
/// - a string longer than `maxStringBytes` keeps its head and says how long it was.
///
/// Patterns are POSIX extended regular expressions (as `grep -E`, with GNU
/// `\s \S \w \W`), matched on bytes; a leading `(?i)` makes one case-insensitive.
/// glibc matches by backtracking over start positions: a pattern should
/// begin with a literal, not a repeated class (`[a-z]+://` is quadratic on long input).
package final class Redactor: @unchecked Sendable {
    package static let marker = "[REDACTED]"
    /// The longest string stored whole (64 KiB of UTF-8).
    package static let maxStringBytes = 64 * 1024

    /// Shapes of credentials that are never meant to be logged.
    package static var builtInPatterns: [String] { builtIns.map(\.pattern) }

    /// Each built-in pattern with the literals one of which any match must
    /// contain (`caseless`: in either case). A string holding none of them
    /// cannot match, so the pattern is not run on it: glibc's regexec costs
    /// far more than a byte scan, and every string of every event passes here.
    static let builtIns: [(pattern: String, needs: [String], caseless: Bool)] = [
        // key=value and key: value, for names that say "secret".
        (
            #"(?i)(passw(or)?d|passwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|auth[-_]?token|authorization|credentials?)[A-Za-z0-9_-]*["']?[=:][ ]*["']?((bearer|basic|token)[ ]+)?([^[:space:]"'&,;]+)"#,
            ["=", ":"], false
        ),
        // Credentials inside URLs: scheme://user:password@host. (No leading
        // scheme class: glibc would rescan from every letter, quadratically.)
        (#"://[^/[:space:]:@]*:([^/[:space:]@]+)@"#, ["://"], false),
        (#"(?i)bearer[ ]+([A-Za-z0-9._~+/=-]{8,})"#, ["bearer"], true),
        (#"sk-[A-Za-z0-9_-]{16,}"#, ["sk-"], false),
        (#"gh[pousr]_[A-Za-z0-9]{30,}"#, ["gh"], false),
        (#"github_pat_[A-Za-z0-9_]{30,}"#, ["github_pat_"], false),
        (#"xox[abprs]-[A-Za-z0-9-]{10,}"#, ["xox"], false),
        (#"AKIA[0-9A-Z]{16}"#, ["AKIA"], false),
        (#"-----BEGIN [A-Z ]*PRIVATE KEY-----"#, ["-----BEGIN "], false),
    ]

    /// Flags whose next argument is a secret.
    static let secretFlag = #"^--?(passw(or)?d|passwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|auth(-token)?|credentials?|client[-_]secret)$"#

    /// A compiled pattern and, for a built-in one, the literals a match needs
    /// (nil: always run, as every operator pattern is).
    private struct Compiled {
        var regex: UnsafeMutablePointer<regex_t>
        var needs: [[UInt8]]?
        var caseless: Bool
    }
    private var compiled: [Compiled] = []
    private let flagPattern: UnsafeMutablePointer<regex_t>

    /// - Parameters:
    ///   - patterns: the operator's patterns, checked after the built-in ones.
    ///   - prefilter: skip a built-in pattern on strings without its literals
    ///     (off only to test that skipping changes nothing).
    /// - Throws: `RedactorError` naming the first pattern that does not compile.
    package init(patterns: [String] = [], prefilter: Bool = true) throws(RedactorError) {
        flagPattern = try Redactor.compile(Redactor.secretFlag, index: nil, extraFlags: REG_ICASE | REG_NOSUB)
        // A throw from here on still runs deinit, which frees what was compiled.
        for b in Redactor.builtIns {
            let needs = prefilter ? b.needs.map { Array(b.caseless ? $0.lowercased().utf8 : $0.utf8) } : nil
            compiled.append(Compiled(regex: try Redactor.compile(b.pattern, index: nil), needs: needs, caseless: b.caseless))
        }
        for (i, p) in patterns.enumerated() { compiled.append(Compiled(regex: try Redactor.compile(p, index: i), needs: nil, caseless: false)) }
    }

    deinit {
        for r in compiled.map(\.regex) + [flagPattern] {
            regfree(r)
            r.deallocate()
        }
    }

    /// Whether `piece` holds one of `needs` (ASCII case folded when `caseless`; needles are lower case then).
    private static func mayMatch(_ piece: [UInt8], _ needs: [[UInt8]], caseless: Bool) -> Bool {
        piece.withUnsafeBufferPointer { bytes in
            needs.contains { needle in
                guard let first = needle.first, bytes.count >= needle.count else { return false }
                var i = 0
                while i + needle.count <= bytes.count {
                    let b = caseless ? lower(bytes[i]) : bytes[i]
                    if b == first {
                        var j = 1
                        while j < needle.count && (caseless ? lower(bytes[i + j]) : bytes[i + j]) == needle[j] { j += 1 }
                        if j == needle.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    private static func compile(_ pattern: String, index: Int?, extraFlags: Int32 = 0) throws(RedactorError) -> UnsafeMutablePointer<regex_t> {
        var text = pattern
        var flags = REG_EXTENDED | extraFlags
        if text.hasPrefix("(?i)") {
            text.removeFirst(4)
            flags |= REG_ICASE
        }
        let r = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let rc = regcomp(r, text, flags)
        guard rc == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(rc, r, &buffer, buffer.count)
            r.deallocate()
            throw RedactorError(index: index, pattern: pattern, message: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return r
    }

    /// `value` with every secret replaced; `secrets` are literal values to remove too.
    package func redact(_ value: JSON, secrets: [String] = []) -> JSON {
        let literals = secrets.filter { $0.utf8.count >= 6 }.sorted { $0.utf8.count > $1.utf8.count }
        return walk(value, literals)
    }

    private func walk(_ value: JSON, _ literals: [String]) -> JSON {
        switch value {
        case .string(let s): return .string(redact(s, literals))
        case .object(let o): return .object(o.mapValues { walk($0, literals) })
        case .array(let a):
            var out: [JSON] = []
            out.reserveCapacity(a.count)
            var hideNext = false
            for element in a {
                if case .string(let s) = element {
                    out.append(.string(hideNext ? Redactor.marker : redact(s, literals)))
                    hideNext = isSecretFlag(s)
                } else {
                    out.append(walk(element, literals))
                    hideNext = false
                }
            }
            return .array(out)
        default: return value
        }
    }

    func isSecretFlag(_ s: String) -> Bool {
        // The pattern is anchored at a leading '-'.
        s.utf8.first == UInt8(ascii: "-") && s.utf8.count < 64 && !s.utf8.contains(0) && regexec(flagPattern, s, 0, nil, 0) == 0
    }

    /// One string: truncated first (scanning a little past the cut, so a
    /// secret straddling it is still found), then every pattern and literal.
    package func redact(_ s: String, _ literals: [String] = []) -> String {
        var bytes = Array(s.utf8)
        let total = bytes.count
        let truncated = total > Redactor.maxStringBytes
        if truncated { bytes = Array(bytes.prefix(Redactor.maxStringBytes + 1024)) }
        for literal in literals { bytes = replace(Array(literal.utf8), in: bytes) }
        // Split at NUL bytes: regexec stops at the first one.
        var pieces = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
        for r in compiled {
            for i in pieces.indices where !pieces[i].isEmpty {
                if let needs = r.needs, !Self.mayMatch(pieces[i], needs, caseless: r.caseless) { continue }
                pieces[i] = apply(r.regex, to: pieces[i])
            }
        }
        bytes = Array(pieces.joined(separator: [0]))
        if truncated {
            var cut = min(bytes.count, Redactor.maxStringBytes)
            while cut > 0 && cut < bytes.count && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }  // not inside a character
            return String(decoding: bytes[..<cut], as: UTF8.self) + "…[truncated: \(total) bytes in all]"
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func apply(_ r: UnsafeMutablePointer<regex_t>, to piece: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var matches = [regmatch_t](repeating: regmatch_t(), count: 10)
        var start = 0
        let groups = Int(r.pointee.re_nsub)
        // regexec needs a C string.
        let cString = piece.map { CChar(bitPattern: $0) } + [0]
        var changed = false
        while start < piece.count {
            let rc = cString.withUnsafeBufferPointer { buffer in
                regexec(r, buffer.baseAddress.map { $0 + start }, matches.count, &matches, start > 0 ? REG_NOTBOL : 0)
            }
            guard rc == 0 else { break }
            let wholeStart = start + Int(matches[0].rm_so)
            let wholeEnd = start + Int(matches[0].rm_eo)
            guard wholeEnd > wholeStart else {
                // An empty match: keep one byte and look further.
                out += piece[start..<min(piece.count, wholeEnd + 1)]
                start = wholeEnd + 1
                continue
            }
            // The secret is the last capture group that took part; else the whole match.
            var from = wholeStart
            var to = wholeEnd
            for g in stride(from: min(groups, matches.count - 1), through: 1, by: -1) where matches[g].rm_so >= 0 {
                from = start + Int(matches[g].rm_so)
                to = start + Int(matches[g].rm_eo)
                break
            }
            out += piece[start..<from]
            out += Array(Redactor.marker.utf8)
            out += piece[to..<wholeEnd]
            changed = true
            start = wholeEnd
        }
        guard changed else { return piece }
        if start < piece.count { out += piece[start...] }
        return out
    }

    private func replace(_ needle: [UInt8], in haystack: [UInt8]) -> [UInt8] {
        guard !needle.isEmpty, haystack.count >= needle.count else { return haystack }
        var out: [UInt8] = []
        var i = 0
        var changed = false
        while i < haystack.count {
            if haystack[i] == needle[0], i + needle.count <= haystack.count, haystack[i..<(i + needle.count)].elementsEqual(needle) {
                out += Array(Redactor.marker.utf8)
                i += needle.count
                changed = true
            } else {
                out.append(haystack[i])
                i += 1
            }
        }
        return changed ? out : haystack
    }
}

/// A secret pattern that does not compile.
package struct RedactorError: Error, Sendable, CustomStringConvertible {
    /// Its index in the operator's list (nil: a built-in pattern).
    package var index: Int?
    package var pattern: String
    package var message: String

    package var description: String {
        "redact pattern \(index.map { "#\($0 + 1) " } ?? "(built-in) ")\(pattern): \(message)"
    }
}
